"""What a GPU or CPU node does: stages (GLSL calls, Python steps), built from params and inputs.

A stage input names a node input port ("in"), an earlier stage of the same node ("@0"), or the
node's state ("@prev").
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from fusegraph.nodes.contract.shaders import ShaderSource
from fusegraph.nodes.contract.types import PortTypeName as PortType

Size = tuple[int, int]  # (width, height) in pixels


@dataclass(frozen=True)
class Uniform:
    name: str
    glsl_type: str  # "float", "int", "vec2", "vec3", "vec4", "float[32]" ...


@dataclass(frozen=True, eq=False)
class Constant:
    """A constant texture: float32 HxW (one channel) or HxWx4 (RGBA), stored as 32-bit float.
    Compared by content (a digest), so an equal table rebuilt by an edit is the same constant."""

    name: str
    data: np.ndarray = field(repr=False)

    def __post_init__(self):
        data = np.ascontiguousarray(self.data, dtype=np.float32)
        if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] != 4) or 0 in data.shape:
            raise ValueError(f"constant {self.name!r}: expected HxW or HxWx4, got shape {data.shape}")
        data.flags.writeable = False
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "digest", hashlib.sha1(data.tobytes()).hexdigest()[:16])

    @property
    def size(self) -> Size:
        return self.data.shape[1], self.data.shape[0]

    @property
    def components(self) -> int:
        return 1 if self.data.ndim == 2 else 4

    @property
    def key(self) -> tuple:
        return self.name, self.data.shape, self.digest

    def __eq__(self, other) -> bool:
        return isinstance(other, Constant) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class GpuStage:
    """One GLSL function call.

    thick: ``vec4 fn(sampler2D in0, ..., [sampler2D constants...], ivec2 p, consts..., uniforms...)`` reads
           neighbourhoods, heads a pass; p is the output texel; a mask output is the result's .r.
    thin:  ``<out> fn(<in0>, ..., [sampler2D constants...], consts..., uniforms...)`` a pure per-pixel
           function, fused into a pass; each value has its type's GLSL type (nodes/contract/types.py:
           video vec4, mask float; converted where a port accepts both).
    A value of several textures (its type's `textures`, e.g. a packed tensor) is passed to a thick
    function as that many sampler2D in a row, and a thick function making one returns void and
    writes that many ``out vec4`` parameters, last; thin stages take and make one-texture values.
    Every pass also declares ``fg_size`` (vec2, its output size), ``fg_time`` (float, seconds of
    the frame) and ``fg_frame`` (int, the frame's index), which any function may read.
    """

    role: Literal["thick", "thin"]
    fn: str  # GLSL function name
    glsl: str | ShaderSource  # a file of shaders/ (its name), or a ShaderSource (a file or text)
    inputs: tuple[str, ...]
    input_types: tuple[PortType, ...]
    out_type: PortType
    out_size: Size
    uniforms: tuple[Uniform, ...] = ()
    values: Callable[[Any], dict[str, Any]] = lambda p: {}  # params -> uniform values
    # GLSL literals passed before the uniforms (after p): compile-time constants such as a loop
    # bound, which software GL can only unroll when it is constant. Changing one recompiles.
    consts: tuple[str, ...] = ()
    # Early-out by tiles: the index (into inputs) of a tile mask, one texel per square tile of
    # output pixels, 0 or 1 where the result is sure and 0.5 where it is not. The pass is drawn
    # over everything with the function's cheap path, then again over the unsure tiles only with
    # FG_BORDER_TILES defined: no GPU, software or not, then spends the full path on sure tiles.
    tiled_by: int | None = None
    tile_size: int = 16  # output pixels per side of one tile of that mask
    cost: float = 1.0  # relative per-pixel cost, to split a fused pass's time among members
    label: str = ""  # e.g. "h", "v", "down"
    # State (at most one stage per node): this stage's output is kept to the next frame, where any
    # stage of the node reads it as the input "@prev" (same size and type; a texture in half float,
    # two of them ping-ponged by the engine). A fresh state (first frame, a new plan shape, a
    # reset) reads -1 in every channel, a value no frame holds, so the stage can tell.
    feedback: bool = False
    # The state's texture format: "f2" half float; "f1" 8-bit, for a state that is also the
    # node's 8-bit output (one render target, not two; software GL fetches it faster), where the
    # node can live with 8-bit steps in its recursion. Fresh, an 8-bit state reads 0 (the -1
    # clamped): alpha 0, which frames do not write.
    state_format: Literal["f2", "f1"] = "f2"
    # Constant textures the node provides (weights, LUTs): uploaded once per plan, kept across
    # uniform edits, passed to the function after the inputs as sampler2D (read with texelFetch).
    constants: tuple["Constant", ...] = ()

    @property
    def source(self) -> ShaderSource:
        return self.glsl if isinstance(self.glsl, ShaderSource) else ShaderSource.file(self.glsl)


@dataclass(frozen=True)
class CpuStage:
    """A Python step between GPU stages (e.g. inference on a read-back tensor).

    run(params, inputs) gets each input as float32 in [0,1] (HxWx4 video, HxW mask) and
    returns the output the same way, at out_size, in [0,1]; it is uploaded as 8-bit.
    """

    inputs: tuple[str, ...]
    input_types: tuple[PortType, ...]
    out_type: PortType
    out_size: Size
    run: Callable[[Any, list[Any]], Any]
    label: str = ""
    float_inputs: bool = False  # read its inputs back as float32 textures (not 8-bit)
    # live runs only, from the params: "latest" runs `run` on a thread of its own on the newest input
    # while the frame goes on with its newest output; "delay_video" also holds the frame back to the
    # one that output was made from (runtime/async_stage.py); None or anything else: in the frame
    live: Callable[[Any], str | None] | None = None


@dataclass(frozen=True)
class Incoming:
    """What a node's input port receives: the linked value's size and type."""

    size: Size
    type: PortType


@dataclass
class Body:
    """What a GPU or CPU node does, built from its params and its inputs' sizes."""

    stages: list[GpuStage | CpuStage]
    outputs: dict[str, int]  # output port -> stage index
