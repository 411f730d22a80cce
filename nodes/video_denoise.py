"""video_denoise: camera-noise removal over time (motion-adaptive), with optional spatial smoothing.

Inputs:  in (video)
Outputs: out (video)
Params:  sigma (the noise's standard deviation in 8-bit units: what a difference must exceed to
         count as motion), strength (the most of the last output a still pixel keeps, 0 = off),
         spatial (0 = none; up to 1: an edge-preserving 3x3 smoothing mixed in), cut (the share
         of the frame that must change at once to count as a cut: the state then restarts)
Notes:   A recursive filter: out = mix(cur, last out, k). k falls from `strength` to 0 as the
         local difference |cur - last out| (a 2x2 mean at half size, sampled bilinearly: about
         4x4 pixels, so noise alone does not look like motion) goes from 1 to 2 sigma. A cut
         (a tiny block-mean difference image read back, a few hundred bytes) sets k = 0 over the
         whole frame, also in dark or flat regions a per-pixel test would let through.
         Stages: diff (half size), blocks (1/32 size), cut (CPU, 1x1), [spatial (thick)],
         blend (thin: fuses into the spatial pass), out (thin: a copy of the blend, 8-bit where it
         is a texture; what follows fuses into the same pass). The blend's output is the node's
         state (GpuStage.feedback, half float): a new plan shape starts fresh.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from fusegraph.nodes.reference import fit_to, to_8bit
from fusegraph.nodes.spec import Body, CpuStage, GpuStage, NodeSpec, Params, Port, Uniform

LO, HI = 1.0, 2.0  # difference (in sigmas) where the temporal weight starts to fall, and where it is 0
BLOCK = 32  # pixels per side of one cut-detection block


class VideoDenoiseParams(Params):
    sigma: float = Field(8.0, ge=0.5, le=64.0, description="noise standard deviation, 8-bit units")
    strength: float = Field(0.8, ge=0.0, le=0.95, description="temporal weight of a still pixel's history")
    spatial: float = Field(0.0, ge=0.0, le=1.0, description="edge-preserving 3x3 smoothing; 0 = none")
    cut: float = Field(0.6, gt=0.0, le=1.0, description="share of the frame changed at once that restarts")


def half(size: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(size[0] / 2), math.ceil(size[1] / 2)


def blocks_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = half(size)
    return math.ceil(w / (BLOCK // 2)), math.ceil(h / (BLOCK // 2))


def decide_cut(p: VideoDenoiseParams, blocks: np.ndarray) -> float:
    """1 where the share of blocks whose mean difference exceeds HI sigmas (mean) reaches `cut`."""
    changed = np.asarray(blocks) > HI / 4.0 + 1e-6
    return 1.0 if changed.mean() >= p.cut else 0.0


def _cut_stage(p: VideoDenoiseParams, inputs: list) -> np.ndarray:
    return np.full((1, 1), decide_cut(p, inputs[0]), np.float32)


def build(p: VideoDenoiseParams, ins):
    size = ins["in"].size
    diff = GpuStage("thick", "fg_denoise_diff", "video_denoise.glsl", ("in", "@prev"), ("video", "video"), "mask",
                    half(size), (Uniform("inv_4sigma", "float"),), lambda q: {"inv_4sigma": 255.0 / (4.0 * q.sigma)},
                    cost=0.5, label="diff")
    blocks = GpuStage("thick", "fg_denoise_blocks", "video_denoise.glsl", ("@0",), ("mask",), "mask",
                      blocks_size(size), cost=0.05, label="blocks")
    cut = CpuStage(("@1",), ("mask",), "mask", (1, 1), _cut_stage, label="cut")
    stages: list = [diff, blocks, cut]
    cur = "in"
    if p.spatial > 0:  # with spatial = 0 the stage does not exist (no pass, no cost)
        stages.append(GpuStage("thick", "fg_denoise_spatial", "video_denoise.glsl", ("in",), ("video",), "video",
                               size, (Uniform("amount", "float"), Uniform("range_k", "float")),
                               lambda q: {"amount": q.spatial, "range_k": range_k(q)}, cost=4.0, label="spatial"))
        cur = "@3"
    stages.append(GpuStage("thin", "fg_denoise_blend", "video_denoise.glsl", (cur, "@prev", "@0", "@2"),
                           ("video", "video", "mask", "mask"), "video", size, (Uniform("strength", "float"),),
                           lambda q: {"strength": q.strength}, feedback=True, label="blend"))
    # The state is half float (no 8-bit dead band in the recursion); what others read is this
    # copy: in registers for thin stages after it, else an 8-bit render target of the same pass
    # (a sink reads back half the bytes, a thick op fetches twice as fast).
    stages.append(GpuStage("thin", "fg_denoise_out", "video_denoise.glsl", (f"@{len(stages) - 1}",), ("video",),
                           "video", size, cost=0.1, label="out"))
    return Body(stages, {"out": len(stages) - 1})


def range_k(p: VideoDenoiseParams) -> float:
    """exp(-|d|^2 * range_k): range sigma 2 noise sigmas on the mean square over RGB."""
    s = 2.0 * p.sigma / 255.0
    return 1.0 / (2.0 * 3.0 * s * s)


# ---- numpy reference (float64; models the 8-bit and half-float storage between passes) ----------


def _clamped(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[np.clip(ys, 0, h - 1)][:, np.clip(xs, 0, w - 1)]


def diff_reference(cur: np.ndarray, prev: np.ndarray | None, p: VideoDenoiseParams) -> np.ndarray:
    w2, h2 = half(cur.shape[1::-1])
    if prev is None:
        return np.ones((h2, w2))
    acc = np.zeros((h2, w2))
    for y in range(2):
        for x in range(2):
            ys, xs = np.arange(h2) * 2 + y, np.arange(w2) * 2 + x
            acc += np.abs(_clamped(cur, ys, xs)[..., :3] - _clamped(prev, ys, xs)[..., :3]).sum(axis=-1)
    return to_8bit(acc / 12.0 * 255.0 / (4.0 * p.sigma))


def blocks_reference(diff: np.ndarray) -> np.ndarray:
    bw, bh = math.ceil(diff.shape[1] / 16), math.ceil(diff.shape[0] / 16)
    acc = np.zeros((bh, bw))
    for y in range(8):
        for x in range(8):
            acc += _clamped(diff, np.arange(bh) * 16 + 2 * y, np.arange(bw) * 16 + 2 * x)
    return to_8bit(acc / 64.0)


def spatial_reference(img: np.ndarray, p: VideoDenoiseParams) -> np.ndarray:
    h, w = img.shape[:2]
    acc, wsum = np.zeros_like(img), np.zeros((h, w, 1))
    k = range_k(p)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            q = _clamped(img, np.arange(h) + dy, np.arange(w) + dx)
            d = q[..., :3] - img[..., :3]
            wt = np.exp(-0.5 * (dx * dx + dy * dy) - (d * d).sum(axis=-1, keepdims=True) * k)
            acc += wt * q
            wsum += wt
    return img + (acc / wsum - img) * p.spatial


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def step_reference(cur: np.ndarray, prev: np.ndarray | None, p: VideoDenoiseParams,
                   half_float_spatial: bool = False) -> tuple[np.ndarray, dict]:
    """One frame: (output, which is the next state; intermediates). cur, prev: float64 HxWx4."""
    size = cur.shape[1::-1]
    d = diff_reference(cur, prev, p)
    blocks = blocks_reference(d)
    cut = decide_cut(p, blocks)
    src = spatial_reference(cur, p) if p.spatial > 0 else cur
    if half_float_spatial:  # unfused: the spatial result is a half-float texture
        src = src.astype(np.float16).astype(np.float64)
    k = p.strength * (1.0 - smoothstep(LO / 4.0, HI / 4.0, fit_to(d, size))) * (1.0 - cut)
    k = k[..., None]
    out = src if prev is None else src * (1.0 - k) + prev * k
    out = out.astype(np.float16).astype(np.float64)  # the state is stored in half float
    return out, {"diff": d, "blocks": blocks, "cut": cut, "k": k[..., 0]}


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
    extra={"reference": reference},
)
