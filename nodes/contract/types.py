"""Port types: one row per type, every fact about it in one place.

Codegen (GLSL types and conversions), the plan (components, bytes), the engine (array shapes)
and the editor (pin colour and shape) all ask this table; a new port type is one row here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PortType:
    name: str
    gpu: bool  # travels as textures through GPU passes (else on a CPU path: audio)
    components: int = 0  # channels per texel
    glsl: str = ""  # a value's GLSL type in a pass's registers
    # GLSL templates, "{}" the expression: a texel fetched as vec4 -> this type; a register
    # value -> the vec4 a render target takes
    from_vec4: str = "{}"
    to_vec4: str = "{}"
    textures: int = 1  # textures one value spans (a packed tensor spans several)
    storage: str = ""  # a fixed texture format ("f4": float32); "" lets the compiler choose by its readers
    pin_colour: tuple[int, int, int] = (200, 200, 200)
    pin_shape: str = "circle"  # circle, quad, triangle (filled)

    def numpy_shape(self, size: tuple[int, int]) -> tuple[int, ...]:
        """The array a CPU stage gets or gives for a value of `size` (width, height): a value
        of several textures has their channels one after the other (texture 0's first)."""
        w, h = size
        channels = self.components * self.textures
        return (h, w) if channels == 1 else (h, w, channels)


TYPES: dict[str, PortType] = {t.name: t for t in (
    PortType("video", gpu=True, components=4, glsl="vec4", pin_colour=(90, 160, 255), pin_shape="circle"),
    PortType("mask", gpu=True, components=1, glsl="float", from_vec4="{}.r", to_vec4="vec4({}, 0.0, 0.0, 1.0)",
             pin_colour=(120, 220, 120), pin_shape="quad"),
    PortType("audio", gpu=False, pin_colour=(255, 160, 60), pin_shape="triangle"),
    # a network's packed tensor (nodes/lib/nn): four channels per texel over 1-4 textures, float32
    # (half floats drift past the accuracy the compiler is held to: docs/design.md)
    *(PortType(f"tensor{n}", gpu=True, components=4, glsl="vec4", textures=n, storage="f4",
               pin_colour=(220, 120, 220), pin_shape="quad") for n in range(1, 5)),
)}

PortTypeName = Literal[tuple(TYPES)]  # type: ignore[valid-type]  ("video", "mask", "audio")

# Where an input port accepts another type than it is given: (have, want) -> GLSL template.
# A mask reads as grey video; video reads as a mask by its Rec. 709 luma.
CONVERSIONS: dict[tuple[str, str], str] = {
    ("mask", "video"): "vec4(vec3({}), 1.0)",
    ("video", "mask"): "dot(({}).rgb, vec3(0.2126, 0.7152, 0.0722))",
}


def convert(expr: str, have: str, want: str) -> str:
    """A GLSL expression of type `have` as type `want`."""
    if have == want:
        return expr
    return CONVERSIONS[(have, want)].format(expr)
