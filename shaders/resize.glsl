// resize: bilinear (0), nearest (1), area mean (2) (reference: nodes/resize.py)

// Bilinear from four texel reads in float: exact on any driver (a sampler may filter an
// 8-bit texture with 8-bit weights, which is 1.5/255 off the float result).
vec4 fg_bilinear(sampler2D src, vec2 c) {
    ivec2 last = textureSize(src, 0) - 1;
    vec2 x = c - 0.5;
    ivec2 i = ivec2(floor(x));
    vec2 f = x - vec2(i);
    vec4 a = texelFetch(src, clamp(i, ivec2(0), last), 0);
    vec4 b = texelFetch(src, clamp(i + ivec2(1, 0), ivec2(0), last), 0);
    vec4 c0 = texelFetch(src, clamp(i + ivec2(0, 1), ivec2(0), last), 0);
    vec4 d = texelFetch(src, clamp(i + ivec2(1, 1), ivec2(0), last), 0);
    return mix(mix(a, b, f.x), mix(c0, d, f.x), f.y);
}
vec4 fg_resize(sampler2D src, ivec2 p, int mode) {
    ivec2 isz = textureSize(src, 0);
    vec2 ratio = vec2(isz) / fg_size;
    if (mode == 1)
        return texelFetch(src, min(ivec2(floor((vec2(p) + 0.5) * ratio)), isz - 1), 0);
    if (mode == 2 && ratio.x >= 1.0 && ratio.y >= 1.0) {
        ivec2 lo = ivec2(floor(vec2(p) * ratio));
        ivec2 hi = min(max(lo + 1, ivec2(floor(vec2(p + 1) * ratio))), lo + 16);
        vec4 acc = vec4(0.0);
        for (int y = lo.y; y < hi.y; y++)
            for (int x = lo.x; x < hi.x; x++)
                acc += texelFetch(src, ivec2(x, y), 0);
        return acc / float((hi.x - lo.x) * (hi.y - lo.y));
    }
    return fg_bilinear(src, (vec2(p) + 0.5) * ratio);
}

// The area mean at a whole ratio (kx by ky texels per output texel, as literals): the same sum
// as fg_resize's area mode in the same order, with constant bounds, so the loops unroll
// (software GL runs them about three times as fast as fg_resize's bounds).
vec4 fg_resize_box(sampler2D src, ivec2 p, int kx, int ky) {
    ivec2 lo = p * ivec2(kx, ky);
    vec4 acc = vec4(0.0);
    for (int y = 0; y < ky; y++)
        for (int x = 0; x < kx; x++)
            acc += texelFetch(src, lo + ivec2(x, y), 0);
    return acc / float(kx * ky);
}
