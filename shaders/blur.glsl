// blur: box downsample and one separable Gaussian row (reference: nodes/blur.py)
// f and r come as literals so the loops unroll (software GL runs them about twice as fast).
vec4 fg_box_down(sampler2D src, ivec2 p, int f) {
    ivec2 last = textureSize(src, 0) - 1;
    vec4 acc = vec4(0.0);
    for (int y = 0; y < f; y++)
        for (int x = 0; x < f; x++)
            acc += texelFetch(src, min(p * f + ivec2(x, y), last), 0);
    return acc / float(f * f);
}

vec4 fg_blur(sampler2D src, ivec2 p, int r, ivec2 dir, float w[49]) {
    ivec2 last = textureSize(src, 0) - 1;
    vec4 acc = w[0] * texelFetch(src, p, 0);
    for (int k = 1; k <= r; k++) {
        acc += w[k] * (texelFetch(src, min(p + dir * k, last), 0) +
                       texelFetch(src, max(p - dir * k, ivec2(0)), 0));
    }
    return acc;
}
