"""threshold: a mask from a picture's luma (or from a mask), with a soft edge.

Inputs:  in (video or mask; video is read by its Rec. 709 luma)
Outputs: out (mask)
Params:  level (0..1), softness (width of the smooth ramp around level), invert
Notes:   per-pixel (thin): fuses into the pass that produces its input.
"""
import numpy as np
from pydantic import Field

from fusegraph.nodes.reference import luma
from fusegraph.nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform


class ThresholdParams(Params):
    level: float = Field(0.5, ge=0.0, le=1.0)
    softness: float = Field(0.05, ge=0.0, le=0.5)
    invert: bool = False


def build(p: ThresholdParams, ins):
    stage = GpuStage("thin", "fg_threshold", "threshold.glsl", ("in",), ("mask",), "mask", ins["in"].size,
                     (Uniform("level", "float"), Uniform("softness", "float")),
                     lambda q: {"level": q.level, "softness": q.softness},
                     consts=("true" if p.invert else "false",))
    return Body([stage], {"out": 0})


def reference(img: np.ndarray, p: ThresholdParams) -> np.ndarray:
    v = luma(img)
    lo, hi = p.level - p.softness, p.level + p.softness
    if p.softness > 0:
        t = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        m = t * t * (3 - 2 * t)
    else:
        m = (v >= p.level).astype(float)
    return 1.0 - m if p.invert else m


SPEC = NodeSpec(
    type="threshold", category="filter", role="thin", Params=ThresholdParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), outputs=(Port("out", "mask"),), build=build,
    extra={"reference": reference},
)
