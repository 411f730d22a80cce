// color: brightness, contrast, saturation, gamma (reference: nodes/color.py)
vec4 fg_color(vec4 c, float brightness, float contrast, float saturation, float gamma) {
    vec3 rgb = (c.rgb + brightness - 0.5) * contrast + 0.5;
    float y = dot(rgb, vec3(0.2126, 0.7152, 0.0722));
    rgb = y + (rgb - y) * saturation;
    return vec4(pow(clamp(rgb, 0.0, 1.0), vec3(1.0 / gamma)), c.a);
}
