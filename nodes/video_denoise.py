"""video_denoise: camera-noise removal that needs no tuning: the noise level is measured from the
frames, motion is followed, cuts are told from noise.

Inputs:  in (video)
Outputs: out (video)
Params:  sigma ("auto": measured from the frames, per channel and brightness; or the noise's
         standard deviation in 8-bit units, the same everywhere), strength (the most of the
         motion-aligned history a pixel keeps, 0 = no temporal filtering), spatial (the share of an
         edge-preserving 5-tap smoothing, range from the noise level; 0 = none), cut (the share of the
         frame that the noise cannot explain, at once, that restarts the state)
Notes:   A causal, motion-compensated recursive filter; nothing to tune. Each frame: the noise
         level function (sigma per channel as a function of its brightness, so sensor noise that
         grows or falls with light is met) from 16 cells of 2x2 pixels per 16x16 block (a
         high-pass blind to slopes; the flattest quarter of the blocks of each brightness tells the
         noise, texture does not); a motion vector per 16x16 block, searched on quarter-size luma
         against the last output; the camera's motion (pan, zoom, turn) fitted to them and refined
         on the luma (Lucas-Kanade), which blocks that agree take; then one full-size pass: a 5-tap
         edge-preserving smoothing, the history fetched along the motion (the block's vector; where
         the neighbour's differs, its texel too, the nearer wins), and the blend, luma and chroma
         apart (chroma kept more), each weighted by how far the difference is from what the noise
         explains. A cut (most blocks' best match far beyond the noise) restarts the state.
         Stages: lowres (1/4 size), stats (1/16), noise (CPU: 29 KB read back at 720p, 8 texels
         up), sigma and motion (1/16), global (CPU: the quarter-size luma, the vectors and the
         noise map read back; the camera's motion and the cut), main (full size, the state:
         GpuStage.feedback, half float), out (thin: a copy of the state, 8-bit where it is a
         texture; what follows fuses into it).
"""
from __future__ import annotations

import math
from typing import Literal, Union

import numpy as np
from pydantic import Field, field_validator

from fusegraph.nodes.lib.reference import to_8bit
from fusegraph.nodes.contract import Body, CpuStage, GpuStage, NodeSpec, Params, Port, Uniform

GLSL = "video_denoise.glsl"
BLOCK = 16  # pixels per side of a motion / noise block
NBINS = 8  # brightness bins of the noise level function
PERCENTILE = 25.0  # of the blocks' noise estimates in a bin: the flat ones
BIAS = 0.868  # that percentile of a 16-cell estimate of a pure-noise block, in noise deviations
MIN_BLOCKS = 12  # blocks a brightness bin needs for an estimate of its own
SIGMA_FLOOR = 0.25  # 8-bit levels: a clean frame still has its rounding
GLOBAL_SCALE = 0.25  # quarter pixels: a block this far off the global fit weighs half (Cauchy)
GLOBAL_AGREE = 0.75  # quarter pixels: a block this near the global fit takes it
GLOBAL_TEXELS = 8000  # quarter-size texels the fine global fit looks at, about
LUMA = np.array([0.25, 0.5, 0.25])  # YCoCg luma: exact in float for sums of 8-bit values

Sigma = Union[Literal["auto"], float]


class VideoDenoiseParams(Params):
    sigma: Sigma = Field("auto", description='"auto" (measured) or the noise deviation in 8-bit units (0.5-64)')
    strength: float = Field(0.8, ge=0.0, le=0.95, description="temporal weight of a still pixel's history")
    spatial: float = Field(1.0, ge=0.0, le=1.0, description="edge-preserving 5-tap smoothing; 0 = none")
    cut: float = Field(0.6, gt=0.0, le=1.0, description="share of the frame changed beyond the noise that restarts")

    @field_validator("sigma", mode="before")
    @classmethod
    def _auto_or_level(cls, v):
        if isinstance(v, str) and v.strip() != "auto":  # the inspector's text field gives "12"
            try:
                v = float(v)
            except ValueError:
                pass
        if v == "auto" or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.5 <= v <= 64.0):
            return v
        raise ValueError('must be "auto" or a number from 0.5 to 64')


def quarter(size: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(size[0] / 4), math.ceil(size[1] / 4)


def blocks(size: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(size[0] / BLOCK), math.ceil(size[1] / BLOCK)


def build(p: VideoDenoiseParams, ins):
    size = ins["in"].size
    bw, bh = blocks(size)
    lowres = GpuStage("thick", "fg_denoise_lowres", GLSL, ("in", "@prev"), ("video", "video"), "video",
                      quarter(size), cost=0.4, label="lowres")
    stats = GpuStage("thick", "fg_denoise_stats", GLSL, ("in",), ("video",), "video", (2 * bw, bh),
                     cost=0.05, label="stats")
    noise = CpuStage(("@1",), ("video",), "video", (NBINS, 1), lambda q, inputs: noise_stage(q, inputs, size),
                     label="noise")
    sigma = GpuStage("thick", "fg_denoise_sigma", GLSL, ("@1", "@2"), ("video", "video"), "video", (bw, bh),
                     cost=0.01, label="sigma")
    motion = GpuStage("thick", "fg_denoise_motion", GLSL, ("@0", "@3"), ("video", "video"), "video", (bw, bh),
                      cost=0.2, label="motion")
    glob = CpuStage(("@0", "@4", "@3"), ("video", "video", "video"), "video", (bw, bh),
                    lambda q, inputs: global_stage(q, *inputs), label="global")
    main = GpuStage("thick", "fg_denoise_main", GLSL, ("in", "@prev", "@5", "@3"), ("video",) * 4, "video", size,
                    (Uniform("strength", "float"), Uniform("spatial", "float")),
                    lambda q: {"strength": q.strength, "spatial": q.spatial}, feedback=True, cost=4.0, label="main")
    # The state is half float (no 8-bit dead band in the recursion); what others read is this
    # copy: in registers for thin stages after it, else an 8-bit render target of the same pass.
    out = GpuStage("thin", "fg_denoise_out", GLSL, ("@6",), ("video",), "video", size, cost=0.1, label="out")
    return Body([lowres, stats, noise, sigma, motion, glob, main, out], {"out": 7})


# ---- the noise level function (the CPU stage; the same code serves the reference) -------------


def noise_level(p: VideoDenoiseParams, stats: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sigma (8-bit levels) per brightness bin (rows) and channel (columns): (NBINS, 3).

    stats: the stats stage's texture in [0,1]; size: the frame's."""
    if p.sigma != "auto":
        return np.full((NBINS, 3), float(p.sigma))
    noise = stats[:, 0::2, :3] ** 2 / 2.0 * math.sqrt(math.pi / 2.0) * 255.0  # mean |h| -> deviation (< 160)
    mean = stats[:, 1::2, :3]
    whole = (slice(0, max(1, size[1] // BLOCK)), slice(0, max(1, size[0] // BLOCK)))  # a clamped edge repeats
    n, m = noise[whole].reshape(-1, 3).T, mean[whole].reshape(-1, 3).T  # (channel, block); pixels: too little noise there
    bins = np.minimum((m * NBINS).astype(int), NBINS - 1)
    # each bin's PERCENTILE (np.percentile's linear interpolation) from one sort per channel by
    # (bin, value): a bin's values are then a sorted run (24 percentile calls took 1.6 ms)
    s = np.take_along_axis(n, np.argsort(bins * 256.0 + n, axis=-1), -1)
    counts = np.stack([np.bincount(b, minlength=NBINS) for b in bins])
    starts = np.cumsum(counts, -1) - counts
    h = (counts - 1) * (PERCENTILE / 100.0)
    lo = np.floor(h).astype(int)
    a = np.take_along_axis(s, np.clip(starts + lo, 0, s.shape[1] - 1), -1)
    b = np.take_along_axis(s, np.clip(starts + np.minimum(lo + 1, counts - 1), 0, s.shape[1] - 1), -1)
    level = (a + (h - lo) * (b - a)) / BIAS
    centres = (np.arange(NBINS) + 0.5) / NBINS
    out = np.empty((NBINS, 3))
    for c in range(3):
        known = counts[c] >= MIN_BLOCKS
        out[:, c] = (np.interp(centres, centres[known], level[c, known]) if known.any()
                     else np.percentile(n[c], PERCENTILE) / BIAS)
    return np.clip(out, SIGMA_FLOOR, 64.0)


def encode_noise(sigma: np.ndarray) -> np.ndarray:
    """The noise texture: NBINS texels, rgb = sqrt(sigma / 64 levels)."""
    out = np.ones((1, NBINS, 4), np.float32)
    out[0, :, :3] = np.sqrt(np.clip(sigma / 64.0, 0.0, 1.0))
    return out


def noise_stage(p: VideoDenoiseParams, inputs: list, size: tuple[int, int]) -> np.ndarray:
    """The CPU stage: the stats texture (float, [0,1]) -> the noise texture."""
    return encode_noise(noise_level(p, np.asarray(inputs[0], np.float64), size))


# ---- global motion (the second CPU stage; the same code serves the reference) --------------------


def decode_motion(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The motion texture ([0,1]) -> (vectors in quarter pixels (bh, bw, 2), error code, sureness code)."""
    t = np.floor(np.asarray(motion, np.float64) * 255 + 0.5).astype(int)
    ex, ey = t[..., 0] * 16 + (t[..., 2] >> 4), t[..., 1] * 16 + (t[..., 2] & 15)
    return np.stack([ex, ey], -1) / 256.0 - 8.0, t[..., 3] >> 4, t[..., 3] & 15


def encode_motion(v: np.ndarray, err: np.ndarray, sure: np.ndarray) -> np.ndarray:
    e = np.clip(np.floor((v + 8.0) * 256.0 + 0.5), 0, 4095).astype(int)
    out = np.empty(v.shape[:2] + (4,), np.float32)
    out[..., 0], out[..., 1] = e[..., 0] >> 4, e[..., 1] >> 4
    out[..., 2] = ((e[..., 0] & 15) << 4) | (e[..., 1] & 15)
    out[..., 3] = err * 16 + sure
    return out / 255.0


def _affine_basis(xs: np.ndarray, ys: np.ndarray, qw: int, qh: int) -> np.ndarray:
    """[1, x, y] at quarter-size positions, x and y centred and scaled to about [-0.5, 0.5]."""
    return np.stack([np.ones_like(xs, dtype=np.float64), xs / qw - 0.5, ys / qh - 0.5], -1)


def block_fit(v: np.ndarray, sure: np.ndarray, qw: int, qh: int) -> np.ndarray:
    """Affine parameters (3x2) fitted to the block vectors (quarter pixels), weighted by how sure
    each is, blocks far off the fit (a moving object) weighed down (Cauchy, three rounds): the
    start for the fine fit, right to about a quarter pixel. Zero when too few blocks are sure."""
    bh, bw = v.shape[:2]
    ys, xs = np.mgrid[0:bh, 0:bw]
    basis = _affine_basis(xs.ravel() * 4 + 2.0, ys.ravel() * 4 + 2.0, qw, qh)
    w0 = np.exp2(sure.ravel() / 2.0) - 1.0
    theta = np.zeros((3, 2))
    if np.count_nonzero(w0) < 6:
        return theta
    target = v.reshape(-1, 2)
    w = w0
    for _ in range(3):
        bw_ = (basis * w[:, None]).T  # normal equations: (3 x n) @ (n x 3), one BLAS thread at this size
        theta = np.linalg.solve(bw_ @ basis + 1e-9 * np.eye(3), bw_ @ target)
        resid = np.abs(target - basis @ theta).max(axis=1)
        w = w0 / (1.0 + (resid / GLOBAL_SCALE) ** 2)
    return theta


def _bilinear_flat(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A 2-D image sampled at texel-index positions (x, y) (texel centres at integers), clamped
    at the edges; by flat indices, so each corner is one gather."""
    h, w = img.shape
    x, y = np.clip(x, 0.0, w - 1.0), np.clip(y, 0.0, h - 1.0)
    x0, y0 = np.minimum(x.astype(np.intp), w - 2), np.minimum(y.astype(np.intp), h - 2)
    fx, fy = x - x0, y - y0
    flat, i = img.ravel(), y0 * w + x0
    top, bottom = flat[i], flat[i + w]
    top += (flat[i + 1] - top) * fx
    bottom += (flat[i + w + 1] - bottom) * fx
    return top + (bottom - top) * fy


def global_motion(lo: np.ndarray, v: np.ndarray, sure: np.ndarray) -> np.ndarray:
    """The camera's motion (pan, zoom, turn) as an affine field of quarter-pixel displacements at
    the block centres (bh, bw, 2): the block fit refined by Gauss-Newton on the quarter-size luma
    itself (Lucas-Kanade over ~8k texels, two rounds), texels that do not follow it (a
    moving object) weighed down. Within a few hundredths of a pixel on the test clips (the block
    vectors alone: ~0.1, jittered by the noise); it matters: a recursive filter carries a bias
    in the motion on, times strength / (1 - strength), as smear. The gradient is the current
    frame's at the texels (so the Jacobian is made once; the last output's, sampled along the
    motion each round, cost ~1 ms more at 720p; the fit's error against the test clips' true
    motion is 0.030 px either way)."""
    qh, qw = lo.shape[:2]
    bh, bw = v.shape[:2]
    theta = block_fit(v, sure, qw, qh)
    step = max(1, int(round(math.sqrt(qw * qh / GLOBAL_TEXELS))))
    yi, xi = (a.ravel() for a in np.mgrid[1:qh - 1:step, 1:qw - 1:step])
    if xi.size < 16:
        return np.zeros((bh, bw, 2))
    xs, ys = xi.astype(np.float64), yi.astype(np.float64)
    luma = np.floor(lo[..., 0] * 255 + 0.5).astype(np.float64)  # exact levels (lo: float32 or 64)
    prev = np.floor(lo[..., 1] * 255 + 0.5).astype(np.float64)
    cur = luma[yi, xi]
    gx, gy = (luma[yi, xi + 1] - luma[yi, xi - 1]) / 2, (luma[yi + 1, xi] - luma[yi - 1, xi]) / 2
    basis = _affine_basis(xs, ys, qw, qh)
    jac = np.concatenate([basis * gx[:, None], basis * gy[:, None]], 1)  # d r / d theta (x then y)
    for _ in range(2):
        d = basis @ theta
        r = cur - _bilinear_flat(prev, xs + d[:, 0], ys + d[:, 1])
        scale = 1.4826 * np.median(np.abs(r)) + 0.5
        jw = (jac * (1.0 / (1.0 + (r / (2.0 * scale)) ** 2))[:, None]).T
        delta = np.linalg.solve(jw @ jac + 1e-3 * np.eye(6) * xs.size, jw @ r)
        theta = theta + delta.reshape(2, 3).T
    by, bx = np.mgrid[0:bh, 0:bw]
    return (_affine_basis(bx * 4 + 2.0, by * 4 + 2.0, qw, qh) @ theta).reshape(bh, bw, 2)


def luma_q(sigma: np.ndarray) -> np.ndarray:
    """Per block (sigma map): the deviation of the quarter-size luma's noise, 8-bit levels."""
    lv = sigma[..., :3] ** 2 * 64.0
    return np.sqrt((lv * lv) @ np.array([1.0, 4.0, 1.0])) / 16.0


def decide_restart(p: VideoDenoiseParams, lo: np.ndarray, motion: np.ndarray, sigma: np.ndarray) -> bool:
    """A fresh state, or a cut: at least `cut` of the blocks' best matches (the motion stage's)
    differ by far more than the noise explains there (4 deviations, plus 6 levels for what a
    whole-pixel match leaves of texture)."""
    rms = (decode_motion(motion)[1] / 15.0) ** 2 * 64.0
    changed = rms > 4.0 * math.sqrt(1.2) * luma_q(sigma) + 6.0
    return bool(lo[0, 0, 2] > 0.5 or changed.sum() >= p.cut * changed.size)


def global_stage(p: VideoDenoiseParams, lo: np.ndarray, motion: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The second CPU stage: blocks whose own vector agrees with the camera's motion take it
    (sub-pixel exact); the others (an object on its own course) keep theirs. Alpha: 1 in every
    texel on a restart (the full-size pass reads it with the vector), else 0."""
    lo = np.asarray(lo)  # float32 from the engine, kept: a float64 copy of the whole texture cost ~2 ms here
    motion, sigma = np.asarray(motion, np.float64), np.asarray(sigma, np.float64)
    v, err, sure = decode_motion(motion)
    g = global_motion(lo, v, sure)
    v = np.where((np.abs(v - g).max(axis=-1) < GLOBAL_AGREE)[..., None], g, v)
    out = encode_motion(v, err, sure)
    out[..., 3] = 1.0 if decide_restart(p, lo, motion, sigma) else 0.0
    return out


# ---- numpy reference (float64; models the 8-bit and half-float storage between passes) ----------


def _clamped(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[np.clip(ys, 0, h - 1)][:, np.clip(xs, 0, w - 1)]


def _clamped_at(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img at integer positions (arrays of one shape), clamped at the edges: GL texelFetch."""
    h, w = img.shape[:2]
    return img[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]


def lowres_reference(cur: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    h, w = cur.shape[:2]
    qw, qh = quarter((w, h))
    a, b = np.zeros((qh, qw, 3)), np.zeros((qh, qw, 3))
    for y in range(4):
        for x in range(4):
            ys, xs = np.arange(qh) * 4 + y, np.arange(qw) * 4 + x
            a += _clamped(cur, ys, xs)[..., :3]
            if prev is not None:
                b += _clamped(prev, ys, xs)[..., :3]
    bias = 1.0 / (128.0 * 255.0)
    yc = a @ LUMA / 16.0 + bias
    yp = yc if prev is None else b @ LUMA / 16.0 + bias
    return to_8bit(np.stack([yc, yp, np.full_like(yc, prev is None), np.ones_like(yc)], -1))


def stats_reference(cur: np.ndarray) -> np.ndarray:
    h, w = cur.shape[:2]
    bw, bh = blocks((w, h))
    hp, mean = np.zeros((bh, bw, 3)), np.zeros((bh, bw, 3))
    for j in range(4):
        for i in range(4):
            ys, xs = np.arange(bh) * BLOCK + 4 * j, np.arange(bw) * BLOCK + 4 * i
            a, b = _clamped(cur, ys, xs)[..., :3], _clamped(cur, ys, xs + 1)[..., :3]
            c, d = _clamped(cur, ys + 1, xs)[..., :3], _clamped(cur, ys + 1, xs + 1)[..., :3]
            hp += np.abs(a - b - c + d) * 0.5
            mean += a + b + c + d
    out = np.ones((bh, 2 * bw, 4))
    out[:, 0::2, :3] = np.sqrt(np.minimum(hp / 8.0, 1.0))
    out[:, 1::2, :3] = mean / 64.0 + 1.0 / (128.0 * 255.0)
    return to_8bit(out)


def motion_reference(lo: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    qh, qw = lo.shape[:2]
    bw, bh = math.ceil(qw / 4), math.ceil(qh / 4)
    yc, yp = np.floor(lo[..., 0] * 255 + 0.5), np.floor(lo[..., 1] * 255 + 0.5)
    by, bx = np.meshgrid(np.arange(bh) * 4, np.arange(bw) * 4, indexing="ij")
    offs = [(i & 3, i >> 2) for i in range(16)]
    c = [yc[np.minimum(by + oy, qh - 1), np.minimum(bx + ox, qw - 1)] for ox, oy in offs]
    noise = 16.0 * 1.2 * luma_q(sigma) ** 2 + 16.0
    lam = 0.5 * noise

    def ssd(vx, vy):
        s = np.zeros((bh, bw))
        for (ox, oy), ci in zip(offs, c):
            s += (ci - yp[np.clip(by + oy + vy, 0, qh - 1), np.clip(bx + ox + vx, 0, qw - 1)]) ** 2
        return s

    best = np.zeros((2, bh, bw), int)
    bc = ssd(0, 0)

    def consider(vx, vy):
        nonlocal bc
        s = ssd(vx, vy) + lam * (np.abs(vx) + np.abs(vy))
        better = s < bc
        bc = np.where(better, s, bc)
        best[0] = np.where(better, vx, best[0])
        best[1] = np.where(better, vy, best[1])

    for vy in range(-4, 5, 2):
        for vx in range(-4, 5, 2):
            consider(vx, vy)
    mid = best.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                consider(mid[0] + dx, mid[1] + dy)
    bx_, by_ = best
    s0 = ssd(bx_, by_)
    xm, xp, ym, yp_ = ssd(bx_ - 1, by_), ssd(bx_ + 1, by_), ssd(bx_, by_ - 1), ssd(bx_, by_ + 1)
    cx, cy = xm + xp - 2 * s0, ym + yp_ - 2 * s0
    with np.errstate(divide="ignore", invalid="ignore"):
        sx = np.clip(np.where(cx > 0, (xm - xp) / (2 * cx), 0.0), -0.5, 0.5)
        sy = np.clip(np.where(cy > 0, (ym - yp_) / (2 * cy), 0.0), -0.5, 0.5)
    smin = np.maximum(s0 - 0.25 * (sx * (xm - xp) + sy * (ym - yp_)), 0.0)
    sx = sx * np.maximum(cx, 0) / (np.maximum(cx, 0) + noise)
    sy = sy * np.maximum(cy, 0) / (np.maximum(cy, 0) + noise)
    err = np.floor(np.sqrt(np.minimum(np.sqrt(smin / 16.0) / 64.0, 1.0)) * 15.0 + 0.5).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        sure = np.clip(np.floor(np.log2(1.0 + np.maximum(np.minimum(cx, cy), 0) / noise) * 2.0), 0, 15).astype(int)
    return encode_motion(np.stack([bx_ + sx, by_ + sy], -1), err, sure).astype(np.float64)


def vectors(motion: np.ndarray) -> np.ndarray:
    """The motion texture decoded: (bh, bw, 2) displacements in pixels of the frame."""
    return decode_motion(motion)[0] * 4.0


def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """GL texture() with LINEAR filtering and clamp-to-edge at texel-space positions x, y."""
    h, w = img.shape[:2]
    x, y = x - 0.5, y - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]

    def at(yy, xx):
        return img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    return (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy


def sigma_reference(stats: np.ndarray, noise_tex: np.ndarray) -> np.ndarray:
    """Per block: sqrt(sigma / 64 levels) per channel at the block's mean colour."""
    v = stats[:, 1::2, :3]
    n = noise_tex.shape[1]
    x = np.clip(v * n - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    f = x - i0
    ch = np.arange(3)
    a, b = noise_tex[0, i0, ch], noise_tex[0, i1, ch]
    out = np.ones(v.shape[:2] + (4,))
    out[..., :3] = np.sqrt(a * a * (1 - f) + b * b * f)
    return to_8bit(out)


def main_reference(cur: np.ndarray, prev: np.ndarray | None, motion: np.ndarray, sigma: np.ndarray,
                   p: VideoDenoiseParams) -> np.ndarray:
    h, w = cur.shape[:2]
    ys, xs = np.arange(h), np.arange(w)
    sm = sigma[ys // BLOCK][:, xs // BLOCK]
    sig = np.maximum(sm[..., :3] ** 2 * (64.0 / 255.0), 0.25 / 255.0)
    c0 = cur[..., :3]
    inv = 1.0 / (36.0 * sig * sig)
    acc, wsum = c0.copy(), np.ones((h, w, 1))
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        q = _clamped(cur, ys + dy, xs + dx)[..., :3]
        wt = falloff(((q - c0) ** 2 * inv).sum(-1, keepdims=True))
        acc += wt * q
        wsum += wt
    s = c0 + (acc / wsum - c0) * p.spatial
    if prev is None or motion[0, 0, 3] > 0.5:
        return np.concatenate([s, np.ones((h, w, 1))], -1)
    field = vectors(motion)
    bh, bw = field.shape[:2]
    px, py = np.meshgrid(xs, ys)
    bx, by = px // BLOCK, py // BLOCK
    rx, ry = px - bx * BLOCK, py - by * BLOCK
    horizontal = np.abs(rx - 7.5) > np.abs(ry - 7.5)  # the nearer edge: its neighbour is the other candidate
    nx = np.clip(np.where(horizontal, bx + np.where(rx < 8, -1, 1), bx), 0, bw - 1)
    ny = np.clip(np.where(horizontal, by, by + np.where(ry < 8, -1, 1)), 0, bh - 1)
    v0, v1 = field[by, bx], field[ny, nx]
    h0 = sample_bilinear(prev[..., :3], px + 0.5 + v0[..., 0], py + 0.5 + v0[..., 1])
    h1 = _clamped_at(prev[..., :3], np.floor(py + 0.5 + v1[..., 1]).astype(int), np.floor(px + 0.5 + v1[..., 0]).astype(int))
    differ = (np.abs(v1 - v0) > 0.0625).any(-1)  # within 1/16 pixel the block's vector alone
    nearer = differ & (np.abs(s - h1).sum(-1) < np.abs(s - h0).sum(-1))
    hist = np.where(nearer[..., None], h1, h0)
    d = s - hist
    sy = np.sqrt((sig ** 2) @ np.array([1.0, 4.0, 1.0])) / 4.0
    sco = np.sqrt(sig[..., 0] ** 2 + sig[..., 2] ** 2) / 2.0
    cg = np.array([-0.25, 0.5, -0.25])
    ey = np.abs(d @ LUMA) / sy
    ec = np.hypot((d[..., 0] - d[..., 2]) * 0.5 / sco, (d @ cg) / sy) * 0.70710678
    ky = p.strength * (1.0 - smoothstep(1.0, 2.0, ey))
    kc = min(p.strength + 0.05, 0.95) * (1.0 - smoothstep(1.5, 3.0, ec))

    def ycocg(a):
        return np.stack([a @ LUMA, (a[..., 0] - a[..., 2]) * 0.5, a @ cg], -1)

    o = ycocg(s) + (ycocg(hist) - ycocg(s)) * np.stack([ky, kc, kc], -1)
    t = o[..., 0] - o[..., 2]
    return np.stack([t + o[..., 1], o[..., 0] + o[..., 2], t - o[..., 1], np.ones((h, w))], -1)


def falloff(q: np.ndarray) -> np.ndarray:
    """The smoothing's weight at q (shaders/video_denoise.glsl fg_dn_falloff): exp(-0.5) (1 - q/8)^8."""
    t = np.maximum(1.0 - q * 0.125, 0.0)
    return 0.60653066 * t ** 8


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def step_reference(cur: np.ndarray, prev: np.ndarray | None, p: VideoDenoiseParams) -> tuple[np.ndarray, dict]:
    """One frame: (output, which is the next state; intermediates). cur, prev: float64 HxWx4."""
    size = cur.shape[1::-1]
    lo = lowres_reference(cur, prev)
    stats = stats_reference(cur)
    noise_tex = to_8bit(noise_stage(p, [stats], size))
    sigma = sigma_reference(stats, noise_tex)
    block_motion = motion_reference(lo, sigma)
    motion = to_8bit(global_stage(p, lo, block_motion, sigma))
    out = main_reference(cur, prev, motion, sigma, p)
    out = out.astype(np.float16).astype(np.float64)  # the state is stored in half float
    return out, {"lowres": lo, "stats": stats, "noise": noise_tex, "sigma_map": sigma, "block_motion": block_motion,
                 "motion": motion, "restart": float(motion[0, 0, 3]), "sigma": noise_level(p, stats, size)}


def reference(frames, p: VideoDenoiseParams) -> list[np.ndarray]:
    """The node over a sequence (state included): float64 HxWx4 frames in [0,1] -> outputs."""
    prev, outs = None, []
    for cur in frames:
        prev, _ = step_reference(np.asarray(cur, np.float64), prev, p)
        outs.append(prev)
    return outs


SPEC = NodeSpec(
    type="video_denoise", category="filter", role="thick", Params=VideoDenoiseParams, doc=__doc__,
    inputs=(Port("in", "video"),), outputs=(Port("out", "video"),), build=build,
    # every param is a uniform (strength, spatial) or read by a CPU stage as it runs (sigma, cut):
    # no edit changes the body
    structure=lambda p: (), reference=lambda p, ins: step_reference(ins["in"], None, p)[0],
)
