// neural_net: the model's input values from a picture (reference: nodes/neural_net.py)
vec4 fg_normalize(vec4 c, bool bgr, vec3 scale, vec3 offset) {
    vec3 rgb = bgr ? c.bgr : c.rgb;
    return vec4(rgb * scale + offset, 1.0);
}
