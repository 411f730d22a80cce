"""resize: scale a picture or mask to a new size.

Inputs:  in (video or mask)
Outputs: out (same type as in)
Params:  width, height (0 keeps the aspect ratio from the other; both 0 keeps the size),
         filter (bilinear, nearest, area: the mean of the source texels under the output
         texel, for clean downscales)
Notes:   thick (a gather from the source). The filter is compiled in (an enum); an area mean at a
         whole ratio also compiles the ratio in (unrolled loops: about 3x faster on software GL).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fusegraph.nodes.lib.reference import bilinear, nearest
from fusegraph.nodes.contract import Body, GpuStage, NodeSpec, Params, Port

FILTERS = {"bilinear": 0, "nearest": 1, "area": 2}
MAX_AREA = 16  # texels per axis the area filter averages (larger ratios are sampled)


class ResizeParams(Params):
    width: int = Field(640, ge=0, le=8192)
    height: int = Field(0, ge=0, le=8192)
    filter: Literal["bilinear", "nearest", "area"] = "area"


def out_size(p: ResizeParams, size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    if p.width and p.height:
        return p.width, p.height
    if p.width:
        return p.width, max(1, round(h * p.width / w))
    if p.height:
        return max(1, round(w * p.height / h)), p.height
    return w, h


def build(p: ResizeParams, ins):
    kind = ins["in"].type
    size = out_size(p, ins["in"].size)
    return Body([resize_stage("in", kind, ins["in"].size, size, p.filter, cost=4)], {"out": 0})


def resize_stage(src: str, kind: str, in_size: tuple[int, int], size: tuple[int, int], filter: str,
                 cost: float = 4, label: str = "") -> GpuStage:
    """The stage resizing input `src` (in_size) to `size`; what other nodes use to make a smaller
    copy of a picture (a network's input, a guide). An area mean at a whole ratio (1280x720 to
    256x144) gets a shader with the ratio compiled in: the same sums, about 3x faster on software GL."""
    (iw, ih), (w, h) = in_size, size
    if filter == "area" and iw % w == 0 and ih % h == 0 and iw // w <= MAX_AREA and ih // h <= MAX_AREA:
        return GpuStage("thick", "fg_resize_box", "resize.glsl", (src,), (kind,), kind, size,
                        consts=(str(iw // w), str(ih // h)), cost=cost, label=label)
    return GpuStage("thick", "fg_resize", "resize.glsl", (src,), (kind,), kind, size,
                    consts=(str(FILTERS[filter]),), cost=cost, label=label)


def _area(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    ih, iw = img.shape[:2]

    def spans(n_out, n_in):
        lo = np.floor(np.arange(n_out) * n_in / n_out).astype(int)
        hi = np.maximum(lo + 1, np.floor((np.arange(n_out) + 1) * n_in / n_out).astype(int))
        return lo, np.minimum(hi, lo + MAX_AREA)

    (x0, x1), (y0, y1) = spans(w, iw), spans(h, ih)
    out = np.zeros((h, w) + img.shape[2:])
    for j in range(h):
        rows = img[y0[j]:y1[j]]
        for i in range(w):
            out[j, i] = rows[:, x0[i]:x1[i]].mean(axis=(0, 1))
    return out


def reference(img: np.ndarray, p: ResizeParams) -> np.ndarray:
    size = out_size(p, img.shape[1::-1])
    ih, iw = img.shape[:2]
    if p.filter == "nearest":
        return nearest(img, size)
    if p.filter == "area" and size[0] <= iw and size[1] <= ih:
        return _area(img, size)
    return bilinear(img, size)


SPEC = NodeSpec(
    type="resize", category="filter", role="thick", Params=ResizeParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), outputs=(Port("out", "video", follows="in"),),
    build=build,
    reference=lambda p, ins: reference(ins["in"], p),
)
