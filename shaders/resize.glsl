// resize: bilinear (0), nearest (1), area mean (2) (reference: nodes/resize.py)
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
    return texture(src, (vec2(p) + 0.5) / fg_size);
}
