// video_denoise: motion-compensated recursive filter with a noise level estimated from the frames
// (reference: nodes/video_denoise.py). prev is the node's own output of the last frame
// (GpuStage.feedback); a fresh state reads -1. Luma here is (R + 2G + B) / 4 (YCoCg), whose
// sums of 8-bit values stay exact in float, so GPU and reference take the same decisions.

const vec3 FG_DN_LUMA = vec3(0.25, 0.5, 0.25);

// Quarter size: the 4x4 mean luma of the frame (.r) and of the last output (.g, = .r on a fresh
// state), .b = 1 on a fresh state. A 1/128-level offset keeps the 8-bit rounding off exact ties.
vec4 fg_denoise_lowres(sampler2D cur, sampler2D prev, ivec2 p) {
    ivec2 size = textureSize(cur, 0), last = size - 1;
    bool fresh = texelFetch(prev, ivec2(0), 0).a < 0.0;
    vec3 a = vec3(0.0), b = vec3(0.0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            a += texelFetch(cur, min(p * 4 + ivec2(x, y), last), 0).rgb;
    // the state: 4 bilinear taps, each the mean of 2x2 texels (half weights, exact on a float
    // texture; clamped at the edge like the fetches)
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            b += texture(prev, vec2(min(p * 4 + ivec2(x, y) * 2 + 1, size)) / vec2(size)).rgb * 4.0;
    float bias = 1.0 / (128.0 * 255.0);
    float yc = dot(a, FG_DN_LUMA) / 16.0 + bias;
    float yp = fresh ? yc : dot(b, FG_DN_LUMA) / 16.0 + bias;
    return vec4(yc, yp, fresh ? 1.0 : 0.0, 1.0);
}

// Noise statistics, one pair of texels per 16x16 block (even x: noise, odd x: mean colour).
// 16 cells of 2x2 pixels on a 4-pixel grid; in each, (a - b - c + d) / 2 per channel has the
// noise's deviation and no response to a flat or sloped surface. Even texels store
// sqrt(2 * mean |.|) per channel (sqrt: finer steps at low noise), odd ones the block's mean.
vec4 fg_denoise_stats(sampler2D cur, ivec2 p) {
    ivec2 last = textureSize(cur, 0) - 1;
    ivec2 base = ivec2(p.x / 2, p.y) * 16;
    vec3 hp = vec3(0.0), mean = vec3(0.0);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) {
            ivec2 q = base + ivec2(i, j) * 4;
            vec3 a = texelFetch(cur, min(q, last), 0).rgb;
            vec3 b = texelFetch(cur, min(q + ivec2(1, 0), last), 0).rgb;
            vec3 c = texelFetch(cur, min(q + ivec2(0, 1), last), 0).rgb;
            vec3 d = texelFetch(cur, min(q + ivec2(1, 1), last), 0).rgb;
            hp += abs(a - b - c + d) * 0.5;
            mean += a + b + c + d;
        }
    // (the mean is a multiple of 1/64 level: a 1/128-level offset keeps its rounding off ties)
    return (p.x & 1) == 0 ? vec4(sqrt(min(hp / 8.0, 1.0)), 1.0) : vec4(mean / 64.0 + 1.0 / (128.0 * 255.0), 1.0);
}

// One texel per 16x16 block: the noise level function (NBINS texels of sqrt(sigma / 64 levels)
// per channel over the channel's brightness, linearly interpolated) at the block's mean colour,
// stored the same way.
vec4 fg_denoise_sigma(sampler2D stats, sampler2D nlf, ivec2 p) {
    vec3 v = texelFetch(stats, ivec2(p.x * 2 + 1, p.y), 0).rgb;
    int n = textureSize(nlf, 0).x;
    vec3 x = clamp(v * float(n) - 0.5, 0.0, float(n - 1));
    ivec3 i0 = ivec3(floor(x));
    ivec3 i1 = min(i0 + 1, n - 1);
    vec3 f = x - vec3(i0);
    vec3 s;
    for (int c = 0; c < 3; c++) {
        float a = texelFetch(nlf, ivec2(i0[c], 0), 0)[c], b = texelFetch(nlf, ivec2(i1[c], 0), 0)[c];
        s[c] = sqrt(mix(a * a, b * b, f[c]));
    }
    return vec4(s, 1.0);
}

// A block's noise level (sigma map texel) -> the deviation of the quarter-size luma's noise,
// in 8-bit levels: (R + 2G + B) / 4, then a 4x4 mean (a quarter).
float fg_dn_luma_q(vec4 sm) {
    vec3 s = sm.rgb * sm.rgb * 64.0;
    return sqrt(dot(s * s, vec3(1.0, 4.0, 1.0))) / 16.0;
}

// Sum of squared differences (in 8-bit levels) between a 4x4 block of the frame's quarter-size
// luma and the last output's, displaced by v.
float fg_dn_ssd(sampler2D lo, ivec2 base, ivec2 v, ivec2 last, float c[16]) {
    float s = 0.0;
    for (int i = 0; i < 16; i++) {
        float d = c[i] - floor(texelFetch(lo, clamp(base + ivec2(i & 3, i >> 2) + v, ivec2(0), last), 0).g * 255.0 + 0.5);
        s += d * d;
    }
    return s;
}

// One motion vector per 16x16 pixels (a 4x4 block of the quarter-size luma): where in the last
// output the block was. Search +-5 quarter pixels (+-20 pixels): a grid of step 2, then the 8
// neighbours of the best. A displacement costs its SSD plus half the SSD the noise alone gives
// (N) per quarter pixel of length, so noise does not move still blocks. Sub-pixel from parabolas
// through the best and its neighbours, shrunk where their curvature is no more than noise.
// Stored with 12 bits per component: .r, .g the high 8 bits of x and y, .b the low 4 of each
// ((v + 8) * 256 in quarter pixels); .a: high 4 bits sqrt(rms difference / 64) at the sub-pixel
// match, low 4 bits how sure the vector is (2 log2(1 + curvature / N)).
vec4 fg_denoise_motion(sampler2D lo, sampler2D sigma, ivec2 p) {
    ivec2 last = textureSize(lo, 0) - 1;
    ivec2 base = p * 4;
    float c[16];
    for (int i = 0; i < 16; i++)
        c[i] = floor(texelFetch(lo, min(base + ivec2(i & 3, i >> 2), last), 0).r * 255.0 + 0.5);
    float sq = fg_dn_luma_q(texelFetch(sigma, p, 0));
    float noise = 16.0 * 1.2 * sq * sq + 16.0;  // the history holds some noise too; 8-bit rounding
    float lambda = 0.5 * noise;
    ivec2 best = ivec2(0);
    float bc = fg_dn_ssd(lo, base, ivec2(0), last, c);
    for (int vy = -4; vy <= 4; vy += 2)
        for (int vx = -4; vx <= 4; vx += 2) {
            float s = fg_dn_ssd(lo, base, ivec2(vx, vy), last, c) + lambda * float(abs(vx) + abs(vy));
            if (s < bc) { bc = s; best = ivec2(vx, vy); }
        }
    ivec2 mid = best;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            ivec2 v = mid + ivec2(dx, dy);
            if (dx == 0 && dy == 0) continue;
            float s = fg_dn_ssd(lo, base, v, last, c) + lambda * float(abs(v.x) + abs(v.y));
            if (s < bc) { bc = s; best = v; }
        }
    float s0 = fg_dn_ssd(lo, base, best, last, c);
    float xm = fg_dn_ssd(lo, base, best - ivec2(1, 0), last, c), xp = fg_dn_ssd(lo, base, best + ivec2(1, 0), last, c);
    float ym = fg_dn_ssd(lo, base, best - ivec2(0, 1), last, c), yp = fg_dn_ssd(lo, base, best + ivec2(0, 1), last, c);
    vec2 curv = vec2(xm + xp - 2.0 * s0, ym + yp - 2.0 * s0);
    vec2 sub = vec2(curv.x > 0.0 ? (xm - xp) / (2.0 * curv.x) : 0.0, curv.y > 0.0 ? (ym - yp) / (2.0 * curv.y) : 0.0);
    sub = clamp(sub, -0.5, 0.5);
    // the parabolas' value at the sub-pixel match: what a half-pixel pan leaves is no change
    float smin = max(s0 - 0.25 * (sub.x * (xm - xp) + sub.y * (ym - yp)), 0.0);
    sub *= max(curv, 0.0) / (max(curv, 0.0) + noise);
    vec2 v = vec2(best) + sub;
    ivec2 e = clamp(ivec2(floor((v + 8.0) * 256.0 + 0.5)), ivec2(0), ivec2(4095));
    int err = int(floor(sqrt(min(sqrt(smin / 16.0) / 64.0, 1.0)) * 15.0 + 0.5));
    int conf = int(clamp(floor(log2(1.0 + max(min(curv.x, curv.y), 0.0) / noise) * 2.0), 0.0, 15.0));
    return vec4(float(e.x >> 4), float(e.y >> 4), float(((e.x & 15) << 4) | (e.y & 15)), float(err * 16 + conf)) / 255.0;
}

// A motion texel's vector, in pixels of the frame (4x the quarter-size units).
vec2 fg_dn_vector(vec4 texel) {
    ivec3 t = ivec3(floor(texel.rgb * 255.0 + 0.5));
    ivec2 e = ivec2(t.r * 16 + (t.b >> 4), t.g * 16 + (t.b & 15));
    return (vec2(e) / 256.0 - 8.0) * 4.0;
}

// The smoothing's weight of a neighbour q = sum over channels of (difference / 6 sigma)^2 away:
// exp(-0.5) (1 - q/8)^8: exp(-0.5 - q) within 2% up to q = 1/2 (noise alone gives q ~ 1/6), half
// of it at q = 3, 0 from q = 8 on; three squarings instead of an exp (the 4 exps a pixel cost ~7%
// of this pass).
float fg_dn_falloff(float q) {
    float t = max(1.0 - q * 0.125, 0.0);
    t *= t;
    t *= t;
    return 0.60653066 * t * t;
}

// Full size, the node's state: an edge-preserving 5-tap smoothing whose range follows the noise
// level (per channel, the block's), then a blend with the last output fetched along the motion
// (bilinear), luma and chroma (Co, Cg) apart: each keeps up to `strength` (chroma a
// little more) of the history where the difference looks like noise (below 1 noise deviation,
// chroma 1.5) and none where it looks like a change (above 2, chroma 3). None on a restart.
vec4 fg_denoise_main(sampler2D cur, sampler2D prev, sampler2D motion, sampler2D sigma, ivec2 p,
                     float strength, float spatial) {
    ivec2 size = textureSize(cur, 0), last = size - 1;
    vec4 sm = texelFetch(sigma, p / 16, 0);
    vec3 sig = max(sm.rgb * sm.rgb * (64.0 / 255.0), vec3(0.25 / 255.0));
    vec3 inv = 1.0 / (36.0 * sig * sig);  // range: sqrt(6) = 2.45 noise deviations, over 3 channels
    // the pixel and its 4 nearest neighbours (the diagonals add cost, and on photos blur more)
    vec3 c0 = texelFetch(cur, p, 0).rgb;
    vec3 acc = c0;
    float wsum = 1.0;
    for (int i = 0; i < 4; i++) {
        ivec2 o = i < 2 ? ivec2(i * 2 - 1, 0) : ivec2(0, i * 2 - 5);
        vec3 q = texelFetch(cur, clamp(p + o, ivec2(0), last), 0).rgb;
        vec3 d = q - c0;
        float w = fg_dn_falloff(dot(d * d, inv));
        acc += w * q;
        wsum += w;
    }
    vec3 s = mix(c0, acc / wsum, spatial);
    ivec2 b = p / 16, r = p - b * 16;
    vec4 own = texelFetch(motion, b, 0);
    if (own.a > 0.5)  // a restart (fresh state or cut): every block says so
        return vec4(s, 1.0);
    // two candidates for the history: the block's vector and that of the neighbour across the
    // nearer block edge (an object's outline seldom follows the blocks); the one nearer wins.
    bool horizontal = abs(float(r.x) - 7.5) > abs(float(r.y) - 7.5);
    ivec2 nb = clamp(b + (horizontal ? ivec2(r.x < 8 ? -1 : 1, 0) : ivec2(0, r.y < 8 ? -1 : 1)),
                     ivec2(0), textureSize(motion, 0) - 1);
    // The neighbour's is fetched at the nearest texel (a second bilinear fetch of the half-float
    // state cost ~5% of this pass) and only taken where the two vectors differ by more than 1/16
    // pixel: where they agree (a still camera, a pan) the block's, filtered, is the history.
    vec2 v0 = fg_dn_vector(own), v1 = fg_dn_vector(texelFetch(motion, nb, 0));
    vec2 pc = vec2(p) + 0.5;
    vec3 h0 = texture(prev, (pc + v0) / vec2(size)).rgb;
    vec3 h1 = texelFetch(prev, clamp(ivec2(floor(pc + v1)), ivec2(0), last), 0).rgb;
    bool differ = any(greaterThan(abs(v1 - v0), vec2(0.0625)));
    vec3 h = differ && dot(abs(s - h1), vec3(1.0)) < dot(abs(s - h0), vec3(1.0)) ? h1 : h0;
    // YCoCg differences in units of their noise deviation
    vec3 d = s - h;
    float sy = sqrt(dot(sig * sig, vec3(1.0, 4.0, 1.0))) / 4.0;
    float sco = sqrt(sig.r * sig.r + sig.b * sig.b) / 2.0;
    float dy = abs(dot(d, FG_DN_LUMA)) / sy;
    float dc = length(vec2((d.r - d.b) * 0.5, dot(d, vec3(-0.25, 0.5, -0.25))) / vec2(sco, sy)) * 0.70710678;
    float ky = strength * (1.0 - smoothstep(1.0, 2.0, dy));
    float kc = min(strength + 0.05, 0.95) * (1.0 - smoothstep(1.5, 3.0, dc));
    vec3 ycc = vec3(dot(s, FG_DN_LUMA), (s.r - s.b) * 0.5, dot(s, vec3(-0.25, 0.5, -0.25)));
    vec3 hcc = vec3(dot(h, FG_DN_LUMA), (h.r - h.b) * 0.5, dot(h, vec3(-0.25, 0.5, -0.25)));
    vec3 o = mix(ycc, hcc, vec3(ky, kc, kc));
    float t = o.x - o.z;
    return vec4(t + o.y, o.x + o.z, t - o.y, 1.0);
}

// The node's output: the state (half float) as others see it (an 8-bit target when materialised).
vec4 fg_denoise_out(vec4 v) {
    return v;
}
