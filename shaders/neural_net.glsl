// neural_net: the model's input values from a picture (reference: nodes/neural_net.py)
vec4 fg_normalize(vec4 c, bool bgr, vec3 scale, vec3 offset) {
    vec3 rgb = bgr ? c.bgr : c.rgb;
    return vec4(rgb * scale + offset, 1.0);
}

// backend gl: the mask from the network's output tensor of at most four channels (one texel):
// channel `ch` of `count`, activation 0 none, 1 sigmoid, 2 softmax over the channels
float fg_nn_pick(vec4 t, int ch, int count, int act) {
    float v = t[ch];
    if (act == 1) v = 1.0 / (1.0 + exp(-v));
    if (act == 2) {
        float m = t.x;
        for (int i = 1; i < count; i++) m = max(m, t[i]);
        float sum = 0.0;
        for (int i = 0; i < count; i++) sum += exp(t[i] - m);
        v = exp(v - m) / sum;
    }
    return clamp(v, 0.0, 1.0);
}
