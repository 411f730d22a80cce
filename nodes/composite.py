"""composite: a foreground over a background through a mask.

Inputs:  fg (video), bg (video), mask (mask, optional: without it the fg's alpha is used;
         a video here is read by its luma)
Outputs: out (video)
Params:  opacity (of the foreground), mode (normal, add, multiply, screen; compiled in)
Notes:   per-pixel (thin): fuses into the pass of its last input; inputs at another
         resolution (a quarter-size blur, a small mask) are sampled bilinearly there.
"""
from typing import Literal

import numpy as np
from pydantic import Field

from nodes.reference import fit_to, luma
from nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform

MODES = {"normal": 0, "add": 1, "multiply": 2, "screen": 3}


class CompositeParams(Params):
    opacity: float = Field(1.0, ge=0.0, le=1.0)
    mode: Literal["normal", "add", "multiply", "screen"] = "normal"


def build(p: CompositeParams, ins):
    size = max((i.size for i in ins.values()), key=lambda s: s[0] * s[1])
    uniforms = (Uniform("opacity", "float"),)
    values = lambda q: {"opacity": q.opacity}  # noqa: E731
    mode = (str(MODES[p.mode]),)  # an enum: switching it switches programs
    if "mask" in ins:
        stage = GpuStage("thin", "fg_composite", "composite.glsl", ("fg", "bg", "mask"),
                         ("video", "video", "mask"), "video", size, uniforms, values, consts=mode)
    else:
        stage = GpuStage("thin", "fg_composite_alpha", "composite.glsl", ("fg", "bg"),
                         ("video", "video"), "video", size, uniforms, values, consts=mode)
    return Body([stage], {"out": 0})


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
    a = np.clip(m * p.opacity, 0.0, 1.0)[..., None]
    rgb = bg[..., :3] * (1 - a) + blend(fg[..., :3], bg[..., :3], p.mode) * a
    return np.concatenate([rgb, bg[..., 3:4]], axis=-1)


SPEC = NodeSpec(
    type="composite", category="composite", role="thin", Params=CompositeParams, doc=__doc__,
    inputs=(Port("fg", "video"), Port("bg", "video"), Port("mask", "mask", required=False, accepts=("video",))),
    outputs=(Port("out", "video"),), build=build, extra={"reference": reference},
)
