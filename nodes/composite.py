"""composite: a foreground over a background through a mask.

Inputs:  fg (video), bg (video), mask (mask, optional: without it the fg's alpha is used;
         a video here is read by its luma)
Outputs: out (video)
Params:  opacity (of the foreground), mode (normal, add, multiply, screen; compiled in),
         choke (moves the mask's edge in or out) and feather (how soft it is: 0.5 keeps the
         mask as it is, smaller is harder), light_wrap (lets the background's light spill
         onto the foreground's edge, as it does through a real lens)
Notes:   per-pixel (thin): fuses into the pass of its last input; inputs at another
         resolution (a quarter-size blur, a small mask) are sampled bilinearly there.
"""
from typing import Literal

import numpy as np
from pydantic import Field

from fusegraph.nodes.reference import fit_to, luma
from fusegraph.nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform

MODES = {"normal": 0, "add": 1, "multiply": 2, "screen": 3}


class CompositeParams(Params):
    opacity: float = Field(1.0, ge=0.0, le=1.0)
    mode: Literal["normal", "add", "multiply", "screen"] = "normal"
    choke: float = Field(0.0, ge=-0.5, le=0.5, description="> 0 shrinks the foreground, < 0 grows it")
    feather: float = Field(0.5, ge=0.005, le=0.5, description="half-width of the edge ramp; 0.5 = unchanged")
    light_wrap: float = Field(0.0, ge=0.0, le=1.0)


def build(p: CompositeParams, ins):
    size = max((i.size for i in ins.values()), key=lambda s: s[0] * s[1])
    uniforms = (Uniform("opacity", "float"), Uniform("edge", "vec2"), Uniform("light_wrap", "float"))
    values = lambda q: {"opacity": q.opacity, "edge": edge(q), "light_wrap": q.light_wrap}  # noqa: E731
    mode = (str(MODES[p.mode]),)  # an enum: switching it switches programs
    if "mask" in ins:
        stage = GpuStage("thin", "fg_composite", "composite.glsl", ("fg", "bg", "mask"),
                         ("video", "video", "mask"), "video", size, uniforms, values, consts=mode)
    else:
        stage = GpuStage("thin", "fg_composite_alpha", "composite.glsl", ("fg", "bg"),
                         ("video", "video"), "video", size, uniforms, values, consts=mode)
    return Body([stage], {"out": 0})


def edge(p: CompositeParams) -> tuple[float, float]:
    """The mask values mapped to 0 and 1 by choke and feather."""
    return 0.5 + p.choke - p.feather, 0.5 + p.choke + p.feather


def blend(fg: np.ndarray, bg: np.ndarray, mode: str) -> np.ndarray:
    if mode == "add":
        return np.minimum(fg + bg, 1.0)
    if mode == "multiply":
        return fg * bg
    if mode == "screen":
        return 1.0 - (1.0 - fg) * (1.0 - bg)
    return fg


def reference(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray | None, p: CompositeParams) -> np.ndarray:
    size = max((a.shape[1::-1] for a in (fg, bg, mask) if a is not None), key=lambda s: s[0] * s[1])
    fg, bg = fit_to(fg, size), fit_to(bg, size)
    m = fg[..., 3] if mask is None else luma(fit_to(mask, size))
    lo, hi = edge(p)
    m = np.clip((m - lo) / (hi - lo), 0.0, 1.0)
    wrap = (p.light_wrap * 4.0 * m * (1.0 - m))[..., None]
    front = fg[..., :3] * (1 - wrap) + bg[..., :3] * wrap
    a = np.clip(m * p.opacity, 0.0, 1.0)[..., None]
    rgb = bg[..., :3] * (1 - a) + blend(front, bg[..., :3], p.mode) * a
    return np.concatenate([rgb, bg[..., 3:4]], axis=-1)


SPEC = NodeSpec(
    type="composite", category="composite", role="thin", Params=CompositeParams, doc=__doc__,
    inputs=(Port("fg", "video"), Port("bg", "video"), Port("mask", "mask", required=False, accepts=("video",))),
    outputs=(Port("out", "video"),), build=build, extra={"reference": reference},
)
