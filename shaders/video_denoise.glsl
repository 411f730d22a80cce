// video_denoise: motion-adaptive temporal recursive filter (reference: nodes/video_denoise.py)
// prev is the node's own output of the last frame (GpuStage.feedback); a fresh state reads -1.

// Half resolution: the mean absolute difference |cur - prev| over a 2x2 block and the RGB
// channels, in units of 4 sigma (clamped to 1). A fresh state counts as "everything changed".
vec4 fg_denoise_diff(sampler2D cur, sampler2D prev, ivec2 p, float inv_4sigma) {
    if (texelFetch(prev, ivec2(0), 0).a < 0.0)
        return vec4(1.0);
    ivec2 last = textureSize(cur, 0) - 1;
    vec3 acc = vec3(0.0);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++) {
            ivec2 q = min(p * 2 + ivec2(x, y), last);
            acc += abs(texelFetch(cur, q, 0).rgb - texelFetch(prev, q, 0).rgb);
        }
    return vec4(clamp(dot(acc, vec3(1.0)) / 12.0 * inv_4sigma, 0.0, 1.0));
}

// One texel per 32x32 pixels (16x16 of the half-size difference): the mean of an 8x8 grid of
// the difference in it. The CPU reads these few hundred bytes back to tell a cut.
vec4 fg_denoise_blocks(sampler2D diff, ivec2 p) {
    ivec2 last = textureSize(diff, 0) - 1;
    float acc = 0.0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            acc += texelFetch(diff, min(p * 16 + ivec2(x, y) * 2, last), 0).r;
    return vec4(acc / 64.0);
}

// Edge-preserving 3x3 smoothing (a small bilateral: space sigma 1 px, range sigma from the
// noise level), mixed into the pixel by `amount`.
vec4 fg_denoise_spatial(sampler2D src, ivec2 p, float amount, float range_k) {
    ivec2 last = textureSize(src, 0) - 1;
    vec4 c = texelFetch(src, p, 0);
    vec4 acc = vec4(0.0);
    float wsum = 0.0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            vec4 q = texelFetch(src, clamp(p + ivec2(dx, dy), ivec2(0), last), 0);
            vec3 d = q.rgb - c.rgb;
            float w = exp(-0.5 * float(dx * dx + dy * dy) - dot(d, d) * range_k);
            acc += w * q;
            wsum += w;
        }
    return mix(c, acc / wsum, amount);
}

// Per pixel: keep `k` of the last output where the (smoothed) difference looks like noise,
// none where it looks like motion (1 to 2 sigma), none at all on a cut. d is in units of 4 sigma.
vec4 fg_denoise_blend(vec4 cur, vec4 prev, float d, float cut, float strength) {
    float k = strength * (1.0 - smoothstep(1.0 / 4.0, 2.0 / 4.0, d)) * (1.0 - cut);
    return mix(cur, prev, k);
}

// The node's output: the state (half float) as others see it (an 8-bit target when materialised).
vec4 fg_denoise_out(vec4 v) {
    return v;
}
