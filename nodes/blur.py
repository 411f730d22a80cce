"""blur: Gaussian blur, separable (a row pass, then a column pass).

Inputs:  in (video or mask)
Outputs: out (same type as in; at reduced resolution when `scale` is below full)
Params:  sigma (pixels of the input), scale (auto: work at 1/2, 1/4 or 1/8 resolution
         when sigma is large enough that the eye cannot tell)
Notes:   two thick passes; at reduced scale a box downsample comes first and the
         consumer samples the small result bilinearly (the upscale is fused into it).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform

MAX_RADIUS = 48  # taps each side; weights live in a uniform array
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


def build(p: BlurParams, ins):
    f = factor(p)
    kind = ins["in"].type
    w, h = ins["in"].size
    size = (math.ceil(w / f), math.ceil(h / f))
    radius = len(weights(p.sigma / f)) - 1  # the tap count decides the loop: a uniform, not structure
    taps = (Uniform("w", f"float[{MAX_RADIUS + 1}]"), Uniform("r", "int"), Uniform("dir", "ivec2"))

    def row(d):
        return lambda q: {"w": weights(q.sigma / factor(q)), "r": len(weights(q.sigma / factor(q))) - 1, "dir": d}

    stages = []
    src = "in"
    if f > 1:
        stages.append(GpuStage("thick", "fg_box_down", "blur.glsl", (src,), (kind,), kind, size,
                               (Uniform("f", "int"),), lambda q: {"f": factor(q)}, cost=f * f / 4, label="down"))
        src = "@0"
    stages.append(GpuStage("thick", "fg_blur", "blur.glsl", (src,), (kind,), kind, size, taps, row((1, 0)),
                           cost=2 * radius + 1, label="h"))
    stages.append(GpuStage("thick", "fg_blur", "blur.glsl", (f"@{len(stages) - 1}",), (kind,), kind, size, taps,
                           row((0, 1)), cost=2 * radius + 1, label="v"))
    return Body(stages, {"out": len(stages) - 1})


def quantize(img: np.ndarray) -> np.ndarray:
    """8-bit storage between passes (a thick op's input is an 8-bit texture, see the compiler)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0


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
        img = quantize(big.mean(axis=(1, 3)))
    k = weights(p.sigma / f)
    r = len(k) - 1
    for axis in (1, 0):
        n = img.shape[axis]
        acc = np.zeros_like(img)
        for t in range(-r, r + 1):
            idx = np.clip(np.arange(n) + t, 0, n - 1)
            acc += k[abs(t)] * np.take(img, idx, axis=axis)
        img = quantize(acc) if axis == 1 else acc
    return img


SPEC = NodeSpec(
    type="blur", category="filter", role="thick", Params=BlurParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), outputs=(Port("out", "video", follows="in"),), build=build,
    extra={"reference": reference},
)
