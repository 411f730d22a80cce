// color: brightness, contrast, saturation, gamma (reference: nodes/color.py)
vec4 fg_color(vec4 c, float brightness, float contrast, float saturation, float gamma) {
    vec3 rgb = (c.rgb + brightness - 0.5) * contrast + 0.5;
    float y = dot(rgb, vec3(0.2126, 0.7152, 0.0722));
    rgb = y + (rgb - y) * saturation;
    rgb = clamp(rgb, 0.0, 1.0);
    if (gamma != 1.0)  // a uniform branch: pow is costly on software GL
        rgb = pow(rgb, vec3(1.0 / gamma));
    return vec4(rgb, c.a);
}
