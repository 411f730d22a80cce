// threshold: soft step around level (reference: nodes/threshold.py)
float fg_threshold(float v, float level, float softness, float invert) {
    float m = softness > 0.0 ? smoothstep(level - softness, level + softness, v) : step(level, v);
    return mix(m, 1.0 - m, invert);
}
