// threshold: soft step around level (reference: nodes/threshold.py)
float fg_threshold(float v, bool invert, float level, float softness) {
    float m = softness > 0.0 ? smoothstep(level - softness, level + softness, v) : step(level, v);
    return invert ? 1.0 - m : m;
}
