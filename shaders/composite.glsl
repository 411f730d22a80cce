// composite: fg over bg through a mask (reference: nodes/composite.py)
vec3 fg_blend(vec3 f, vec3 b, int mode) {
    if (mode == 1) return min(f + b, 1.0);
    if (mode == 2) return f * b;
    if (mode == 3) return 1.0 - (1.0 - f) * (1.0 - b);
    return f;
}

vec4 fg_composite(vec4 f, vec4 b, float m, int mode, float opacity, vec2 edge, float light_wrap) {
    m = clamp((m - edge.x) / (edge.y - edge.x), 0.0, 1.0);  // choke and feather
    vec3 front = mix(f.rgb, b.rgb, light_wrap * 4.0 * m * (1.0 - m));  // light wrap at the edge
    float a = clamp(m * opacity, 0.0, 1.0);
    return vec4(mix(b.rgb, fg_blend(front, b.rgb, mode), a), b.a);
}

vec4 fg_composite_alpha(vec4 f, vec4 b, int mode, float opacity, vec2 edge, float light_wrap) {
    return fg_composite(f, b, f.a, mode, opacity, edge, light_wrap);
}
