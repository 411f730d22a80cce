"""blur: Gaussian blur, separable (a row pass, then a column pass).

Inputs:  in (video or mask)
Outputs: out (same type as in; at reduced resolution when `scale` is below full)
Params:  sigma (pixels of the input), scale (auto: work at 1/2, 1/4 or 1/8 resolution
         when sigma is large enough that the eye cannot tell)
Notes:   two thick passes; at reduced scale a box downsample comes first and the
         consumer samples the small result bilinearly (the upscale is fused into it).
         The tap count is a compile-time constant from a few buckets (software GL runs an
         unrolled loop about twice as fast): a sigma edit inside a bucket is a uniform
         update, one across buckets switches to another (cached) program.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from fusegraph.nodes.reference import to_8bit
from fusegraph.nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform

MAX_RADIUS = 48  # taps each side; weights live in a uniform array
RADII = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48)  # compile-time loop bounds
SCALES = {"full": 1, "half": 2, "quarter": 4, "eighth": 8}


class BlurParams(Params):
    sigma: float = Field(4.0, ge=0.0, le=100.0, description="standard deviation in input pixels")
    scale: Literal["auto", "full", "half", "quarter", "eighth"] = "auto"


def factor(p: BlurParams) -> int:
    """Downsampling factor: auto keeps at least 3 pixels of sigma at the working resolution."""
    if p.scale != "auto":
        return SCALES[p.scale]
    f = 1
    while f < 8 and p.sigma / (f * 2) >= 3.0:
        f *= 2
    return f


def weights(sigma: float) -> np.ndarray:
    """Normalised half-kernel w[0..r] (w[0] the centre); r = ceil(3 sigma) up to MAX_RADIUS."""
    if sigma < 1e-3:
        return np.array([1.0])
    r = min(MAX_RADIUS, max(1, math.ceil(3.0 * sigma)))
    w = np.exp(-0.5 * (np.arange(r + 1) / sigma) ** 2)
    return w / (w[0] + 2.0 * w[1:].sum())


def bucket(p: BlurParams) -> int:
    """The loop bound the shader is compiled with: the smallest bucket holding the radius."""
    r = len(weights(p.sigma / factor(p))) - 1
    return next(b for b in RADII if b >= r)


def build(p: BlurParams, ins):
    f = factor(p)
    kind = ins["in"].type
    w, h = ins["in"].size
    size = (math.ceil(w / f), math.ceil(h / f))
    r = bucket(p)
    taps = (Uniform("w", f"float[{MAX_RADIUS + 1}]"),)
    row = lambda q: {"w": weights(q.sigma / factor(q))}  # noqa: E731  (zeros past the radius)

    stages = []
    src = "in"
    if f > 1:
        stages.append(GpuStage("thick", "fg_box_down", "blur.glsl", (src,), (kind,), kind, size,
                               consts=(str(f),), cost=f * f / 4, label="down"))
        src = "@0"
    for label, d in (("h", "ivec2(1, 0)"), ("v", "ivec2(0, 1)")):
        stages.append(GpuStage("thick", "fg_blur", "blur.glsl", (src,), (kind,), kind, size, taps, row,
                               consts=(str(r), d), cost=2 * r + 1, label=label))
        src = f"@{len(stages) - 1}"
    return Body(stages, {"out": len(stages) - 1})


def reference(img: np.ndarray, p: BlurParams) -> np.ndarray:
    """float64 HxW[xC] -> the blurred image at the working resolution (clamp-to-edge), with
    the 8-bit storage of the intermediate results."""
    f = factor(p)
    if f > 1:
        h, w = img.shape[:2]
        ys = np.minimum(np.arange(math.ceil(h / f) * f), h - 1)
        xs = np.minimum(np.arange(math.ceil(w / f) * f), w - 1)
        big = img[ys][:, xs]
        big = big.reshape(len(ys) // f, f, len(xs) // f, f, *img.shape[2:])
        img = to_8bit(big.mean(axis=(1, 3)))
    k = weights(p.sigma / f)
    r = len(k) - 1
    for axis in (1, 0):
        n = img.shape[axis]
        acc = np.zeros_like(img)
        for t in range(-r, r + 1):
            idx = np.clip(np.arange(n) + t, 0, n - 1)
            acc += k[abs(t)] * np.take(img, idx, axis=axis)
        img = to_8bit(acc) if axis == 1 else acc
    return img


SPEC = NodeSpec(
    type="blur", category="filter", role="thick", Params=BlurParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), outputs=(Port("out", "video", follows="in"),), build=build,
    extra={"reference": reference},
)
