// Packed tensors of the network compiler (nodes/lib/nn): channels 4 per RGBA texel, a texture
// holds slice groups as tiles of w x h texels, `cols` tiles per row.
vec4 nn_at(sampler2D t, int g, ivec2 q, int w, int h, int cols) {
    ivec2 c = clamp(q, ivec2(0), ivec2(w - 1, h - 1));  // 1x1 tensors broadcast; resize clamps to the edge
    return texelFetch(t, ivec2((g % cols) * w + c.x, (g / cols) * h + c.y), 0);
}

bool nn_inside(ivec2 q, int w, int h) {
    return q.x >= 0 && q.y >= 0 && q.x < w && q.y < h;
}

vec4 nn_hardswish(vec4 x) { return x * clamp(x + 3.0, 0.0, 6.0) * (1.0 / 6.0); }
vec4 nn_sigmoid(vec4 x) { return 1.0 / (1.0 + exp(-x)); }
vec4 nn_tanh(vec4 x) { vec4 e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
