// composite: fg over bg through a mask (reference: nodes/composite.py)
vec3 fg_blend(vec3 f, vec3 b, int mode) {
    if (mode == 1) return min(f + b, 1.0);
    if (mode == 2) return f * b;
    if (mode == 3) return 1.0 - (1.0 - f) * (1.0 - b);
    return f;
}

vec4 fg_composite(vec4 f, vec4 b, float m, int mode, float opacity) {
    float a = clamp(m * opacity, 0.0, 1.0);
    return vec4(mix(b.rgb, fg_blend(f.rgb, b.rgb, mode), a), b.a);
}

vec4 fg_composite_alpha(vec4 f, vec4 b, int mode, float opacity) {
    return fg_composite(f, b, f.a, mode, opacity);
}
