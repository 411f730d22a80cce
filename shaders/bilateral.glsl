// bilateral: joint bilateral upsampling of a mask with early-out tiles (reference: nodes/bilateral.py)

// Sure background (0), sure foreground (1) or border (0.5) for one tile x tile block of output
// pixels: the min and max of the mask over every texel the tile's pixels would read.
vec4 fg_bilateral_tiles(sampler2D mask, ivec2 t, int tile, int r, ivec2 span, float tolerance, vec2 out_size) {
    ivec2 msz = textureSize(mask, 0);
    vec2 ratio = vec2(msz) / out_size;
    ivec2 p0 = t * tile;
    ivec2 p1 = min(p0 + tile, ivec2(out_size)) - 1;
    ivec2 lo = ivec2(floor((vec2(p0) + 0.5) * ratio - 0.5 + 0.5)) - r;
    ivec2 hi = ivec2(floor((vec2(p1) + 0.5) * ratio - 0.5 + 0.5)) + r;
    lo = max(lo, ivec2(0));
    hi = min(hi, msz - 1);
    float mn = 1.0, mx = 0.0;
    for (int y = 0; y < span.y; y++)
        for (int x = 0; x < span.x; x++) {
            ivec2 q = lo + ivec2(x, y);
            if (q.x <= hi.x && q.y <= hi.y) {
                float m = texelFetch(mask, q, 0).r;
                mn = min(mn, m);
                mx = max(mx, m);
            }
        }
    float c = mx <= tolerance ? 0.0 : (mn >= 1.0 - tolerance ? 1.0 : 0.5);
    return vec4(c);
}

// The low guide (rgb) and the mask (alpha) on the mask's grid, for one fetch per tap.
vec4 fg_bilateral_pack(vec4 guide_low, float mask) {
    return vec4(guide_low.rgb, mask);
}

vec4 fg_bilateral_pack_mask(float mask) {  // no guide: the mask is its own guide
    return vec4(mask, 0.0, 0.0, mask);
}

vec4 fg_bilateral(sampler2D lowmask, sampler2D guide, ivec2 p, int r, float sigma_space, float sigma_color) {
    ivec2 msz = textureSize(lowmask, 0);
    vec2 pm = (vec2(p) + 0.5) * vec2(msz) / vec2(textureSize(guide, 0)) - 0.5;
    ivec2 c = ivec2(floor(pm + 0.5));
    vec3 g = texelFetch(guide, p, 0).rgb;
    float ks = -0.5 / (sigma_space * sigma_space);
    float kr = -0.5 / (sigma_color * sigma_color);
    float num = 0.0, den = 0.0;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            ivec2 q = c + ivec2(dx, dy);
            ivec2 qc = clamp(q, ivec2(0), msz - 1);
            vec2 d = vec2(q) - pm;
            vec4 t = texelFetch(lowmask, qc, 0);
            vec3 dg = g - t.rgb;
            float w = exp(max(ks * dot(d, d) + kr * dot(dg, dg), -80.0));  // never underflows to 0
            num += w * t.a;
            den += w;
        }
    return vec4(den > 1e-12 ? num / den : texelFetch(lowmask, clamp(c, ivec2(0), msz - 1), 0).a);
}


// The early-out: drawn as quads over the sure tiles, which take the tile's value, and over the
// border tiles (FG_BORDER_TILES), which take the full sum; see GpuStage.tiled_by.
vec4 fg_bilateral_tiled(sampler2D lowmask, sampler2D guide, sampler2D tiles, ivec2 p, int tile, int r,
                        float sigma_space, float sigma_color) {
#if defined(FG_BORDER_TILES)
    return fg_bilateral(lowmask, guide, p, r, sigma_space, sigma_color);
#elif defined(FG_TILED)
    return vec4(step(0.5, fg_tile));  // the tile's class, from the vertex shader: no fetch
#else
    return vec4(step(0.5, texelFetch(tiles, p / tile, 0).r));
#endif
}
