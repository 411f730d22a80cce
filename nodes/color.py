"""color: brightness, contrast, saturation and gamma of a picture.

Inputs:  in (video)
Outputs: out (video)
Params:  brightness (added), contrast (around mid-grey), saturation (0 = grey), gamma (out = in^(1/gamma))
Notes:   per-pixel (thin): fuses into the pass that produces its input. Alpha is kept.
         Whether gamma is 1 is compiled in (pow costs ~5 ms a 720p frame on software GL and
         a uniform branch does not skip it): moving gamma off or onto 1 switches programs.
"""
import numpy as np
from pydantic import Field

from fusegraph.nodes.spec import Body, GpuStage, NodeSpec, Params, Port, Uniform

LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709, as in shaders/color.glsl


class ColorParams(Params):
    brightness: float = Field(0.0, ge=-1.0, le=1.0)
    contrast: float = Field(1.0, ge=0.0, le=4.0)
    saturation: float = Field(1.0, ge=0.0, le=4.0)
    gamma: float = Field(1.0, ge=0.1, le=10.0)


def build(p: ColorParams, ins):
    stage = GpuStage(
        role="thin", fn="fg_color", glsl="color.glsl",
        inputs=("in",), input_types=("video",), out_type="video", out_size=ins["in"].size,
        consts=("true" if p.gamma != 1.0 else "false",),
        uniforms=(Uniform("brightness", "float"), Uniform("contrast", "float"),
                  Uniform("saturation", "float"), Uniform("gamma", "float")),
        values=lambda p: {"brightness": p.brightness, "contrast": p.contrast,
                          "saturation": p.saturation, "gamma": p.gamma},
    )
    return Body([stage], {"out": 0})


def reference(img: np.ndarray, p: ColorParams) -> np.ndarray:
    """float RGBA in [0,1] -> float RGBA, the same maths as shaders/color.glsl."""
    rgb = img[..., :3].astype(np.float64)
    rgb = rgb + p.brightness
    rgb = (rgb - 0.5) * p.contrast + 0.5
    y = (rgb @ LUMA)[..., None]
    rgb = y + (rgb - y) * p.saturation
    rgb = np.clip(rgb, 0.0, 1.0) ** (1.0 / p.gamma)
    return np.concatenate([rgb, img[..., 3:4]], axis=-1)


SPEC = NodeSpec(
    type="color", category="filter", role="thin", Params=ColorParams, doc=__doc__,
    inputs=(Port("in", "video"),), outputs=(Port("out", "video"),), build=build,
    extra={"reference": reference},
)
