"""bilateral: joint bilateral filter; lifts a coarse mask to full resolution along the guide's edges.

Inputs:  mask (mask, any resolution), guide (video, optional: the full-resolution frame)
Outputs: out (mask; at the guide's resolution, or the mask's without a guide)
Params:  sigma_space (in mask texels), sigma_color (RGB distance), radius (taps each side, in
         mask texels), early_out, tolerance (how close to 0 or 1 a neighbourhood must be to
         count as sure background or foreground)
Notes:   out(p) = sum_q w_s(q - p) w_r(guide(p) - guide_low(q)) mask(q) / sum_q w, where q runs
         over mask texels around p and guide_low is the guide averaged down to the mask's size.
         Early-out classifies 16x16 output tiles from the min and max of the mask over each
         tile's window: sure tiles write 0 or 1, only border tiles run the weighted sum.
         Without a guide it is an edge-preserving bilateral of the mask on itself.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from fusegraph.nodes.lib.reference import to_8bit
from fusegraph.nodes.resize import ResizeParams
from fusegraph.nodes.resize import reference as resize_reference
from fusegraph.nodes.resize import resize_stage
from fusegraph.nodes.contract import Body, GpuStage, NodeSpec, Params, Port, Uniform

TILE = 16  # output pixels per early-out tile side


class BilateralParams(Params):
    sigma_space: float = Field(1.0, ge=0.1, le=10.0, description="spatial sigma, in mask texels")
    sigma_color: float = Field(0.1, ge=0.005, le=2.0, description="range sigma, RGB distance 0..sqrt(3)")
    radius: int = Field(2, ge=1, le=6, description="taps each side, in mask texels")
    early_out: bool = True
    tolerance: float = Field(0.01, ge=0.0, le=0.2, description="sure = within this of 0 or 1")


def _window_span(out_n: int, mask_n: int, radius: int) -> int:
    """Mask texels a tile's window covers along one axis (a compile-time loop bound)."""
    return math.ceil(TILE * mask_n / out_n) + 2 * radius + 2


def build(p: BilateralParams, ins):
    mask_size = ins["mask"].size
    guided = "guide" in ins
    out_size = ins["guide"].size if guided else mask_size
    stages: list[GpuStage] = []
    if guided:  # the guide averaged down to the mask's grid: what each mask texel "looks like"
        stages.append(resize_stage("guide", "video", out_size, mask_size, "area", cost=2, label="guide"))
        guide, low, gtype = "guide", "@0", "video"
    else:  # edge-preserving on the mask itself
        guide, gtype = "mask", "mask"
    # One texture holds both what the sum reads per tap: the low guide in rgb, the mask in alpha
    # (one fetch per tap instead of two).
    if guided:
        pack = GpuStage("thin", "fg_bilateral_pack", "bilateral.glsl", (low, "mask"), ("video", "mask"),
                        "video", mask_size, label="pack")
    else:  # rgb as a mask texture reads: (m, 0, 0)
        pack = GpuStage("thin", "fg_bilateral_pack_mask", "bilateral.glsl", ("mask",), ("mask",),
                        "video", mask_size, label="pack")
    stages.append(pack)
    packed = f"@{len(stages) - 1}"
    filt = (Uniform("sigma_space", "float"), Uniform("sigma_color", "float"))
    values = lambda q: {"sigma_space": q.sigma_space, "sigma_color": q.sigma_color}  # noqa: E731
    taps = (2 * p.radius + 1) ** 2
    if p.early_out:
        tiles = (math.ceil(out_size[0] / TILE), math.ceil(out_size[1] / TILE))
        span = (_window_span(out_size[0], mask_size[0], p.radius), _window_span(out_size[1], mask_size[1], p.radius))
        stages.append(GpuStage("thick", "fg_bilateral_tiles", "bilateral.glsl", ("mask",), ("mask",), "mask", tiles,
                               (Uniform("tolerance", "float"), Uniform("out_size", "vec2")),
                               lambda q: {"tolerance": q.tolerance, "out_size": (float(out_size[0]), float(out_size[1]))},
                               consts=(str(TILE), str(p.radius), f"ivec2({span[0]}, {span[1]})"), cost=1,
                               label="tiles"))
        stages.append(GpuStage("thick", "fg_bilateral_tiled", "bilateral.glsl",
                               (packed, guide, f"@{len(stages) - 1}"), ("video", gtype, "mask"), "mask",
                               out_size, filt, values, consts=(str(TILE), str(p.radius)), cost=taps, label="filter",
                               tiled_by=2, tile_size=TILE))  # the full sum is drawn over border tiles only
    else:
        stages.append(GpuStage("thick", "fg_bilateral", "bilateral.glsl", (packed, guide),
                               ("video", gtype), "mask", out_size, filt, values,
                               consts=(str(p.radius),), cost=taps, label="filter"))
    return Body(stages, {"out": len(stages) - 1})


# ---- numpy float64 reference (the test oracle) -------------------------------------------


def _centres(out_n: int, mask_n: int) -> np.ndarray:
    """Each output pixel's position on the mask's texel grid."""
    return (np.arange(out_n) + 0.5) * mask_n / out_n - 0.5


def _as_rgb(img: np.ndarray) -> np.ndarray:
    return img[..., :3] if img.ndim == 3 else np.stack([img, np.zeros_like(img), np.zeros_like(img)], -1)


def full(mask: np.ndarray, guide: np.ndarray | None, p: BilateralParams) -> np.ndarray:
    """The full joint bilateral filter, every pixel (mask HxW float, guide HxWx4 float or None)."""
    h, w = mask.shape
    mask = to_8bit(mask)  # stored in the packed texture's alpha
    if guide is None:
        guide, guide_low = mask, mask
    else:
        guide_low = resize_reference(guide, ResizeParams(width=w, height=h, filter="area"))
        guide_low = to_8bit(guide_low)  # stored as 8-bit between the passes
    H, W = guide.shape[:2]
    py, px = _centres(H, h)[:, None], _centres(W, w)[None, :]
    cy, cx = np.floor(py + 0.5).astype(int), np.floor(px + 0.5).astype(int)
    g = _as_rgb(guide)
    gl = _as_rgb(guide_low)
    num = np.zeros((H, W))
    den = np.zeros((H, W))
    r = p.radius
    for dy in range(-r, r + 1):
        qy = cy + dy
        qyc = np.clip(qy, 0, h - 1)
        for dx in range(-r, r + 1):
            qx = cx + dx
            qxc = np.clip(qx, 0, w - 1)
            diff = g - gl[qyc, qxc]
            e = -((qy - py) ** 2 + (qx - px) ** 2) / (2 * p.sigma_space ** 2) - (diff ** 2).sum(-1) / (2 * p.sigma_color ** 2)
            wt = np.exp(np.maximum(e, -80.0))  # as the shader: float32 weights never underflow to 0
            num += wt * mask[qyc, qxc]
            den += wt
    return np.where(den > 1e-12, num / np.maximum(den, 1e-300), mask[np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)])


def tile_classes(mask: np.ndarray, out_size: tuple[int, int], p: BilateralParams) -> np.ndarray:
    """Per tile: 0 sure background, 1 sure foreground, 0.5 border."""
    h, w = mask.shape
    W, H = out_size
    tw, th = math.ceil(W / TILE), math.ceil(H / TILE)
    cls = np.full((th, tw), 0.5)
    xs, ys = np.floor(_centres(W, w) + 0.5).astype(int), np.floor(_centres(H, h) + 0.5).astype(int)
    for j in range(th):
        y0, y1 = ys[j * TILE] - p.radius, ys[min(H, (j + 1) * TILE) - 1] + p.radius
        for i in range(tw):
            x0, x1 = xs[i * TILE] - p.radius, xs[min(W, (i + 1) * TILE) - 1] + p.radius
            win = mask[max(0, y0):min(h, y1 + 1), max(0, x0):min(w, x1 + 1)]
            if win.max() <= p.tolerance:
                cls[j, i] = 0.0
            elif win.min() >= 1.0 - p.tolerance:
                cls[j, i] = 1.0
    return cls


def reference(mask: np.ndarray, guide: np.ndarray | None, p: BilateralParams) -> np.ndarray:
    out = full(mask, guide, p)
    if not p.early_out:
        return out
    H, W = out.shape
    cls = tile_classes(mask, (W, H), p)
    per_pixel = np.kron(cls, np.ones((TILE, TILE)))[:H, :W]
    return np.where(per_pixel == 0.5, out, per_pixel)


SPEC = NodeSpec(
    type="bilateral", category="filter", role="thick", Params=BilateralParams, doc=__doc__,
    inputs=(Port("mask", "mask"), Port("guide", "video", required=False)),
    outputs=(Port("out", "mask"),), build=build,
    structure=lambda p: (p.radius, p.early_out), reference=lambda p, ins: reference(ins["mask"], ins.get("guide"), p),
)
