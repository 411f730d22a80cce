// color: brightness, contrast, saturation, gamma (reference: nodes/color.py)
vec4 fg_color(vec4 c, bool use_gamma, float brightness, float contrast, float saturation, float gamma) {
    vec3 rgb = (c.rgb + brightness - 0.5) * contrast + 0.5;
    float y = dot(rgb, vec3(0.2126, 0.7152, 0.0722));
    rgb = y + (rgb - y) * saturation;
    rgb = clamp(rgb, 0.0, 1.0);
    if (use_gamma)  // a literal: compiled out when gamma is 1
        rgb = pow(rgb, vec3(1.0 / gamma));
    return vec4(rgb, c.a);
}
