"""The node contract: each node kind declares itself once with a NodeSpec.

Validation, the preset schema, the palette, the inspector and the compiler all read
this declaration; nothing else repeats it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PortType = Literal["video", "mask", "audio"]
Role = Literal["source", "sink", "thin", "thick", "cpu", "audio"]
Size = tuple[int, int]  # (width, height) in pixels

MAX_TEXTURE = 16384  # GL_MAX_TEXTURE_SIZE of most GPUs; the engine passes its GPU's own
PIXEL_BUDGET = 50_000_000  # the largest picture read: 8192x6104, 200 MB as RGBA (nodes/input_files.py)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7f, 0xa0)]}


def printable(value: Any, limit: int = 200) -> str:
    """Text from a preset or file made safe to print in a one-line message: control characters
    (terminal escapes, NUL, newlines) shown as \\xNN, and cut to about `limit` characters (a
    value of megabytes is not echoed)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:  # cut in the middle: a message's reason is at its end
        half = limit // 2
        text = f"{text[:half]}...({len(text)} characters)...{text[-half:]}"
    return text.translate(_CONTROL)


class NodeError(Exception):
    """A user-facing failure of one node (missing file, bad frame, no device)."""

    def __init__(self, message: str, node: str | None = None, port: str | None = None,
                 fix: tuple[str, dict] | None = None):
        super().__init__(message)
        self.message = message
        self.node = node
        self.port = port
        # a node to insert into the link feeding `port` that would mend it: (type, params),
        # e.g. ("resample", {"rate": 48000}); the editor offers it as a one-click fix
        self.fix = fix

    def __str__(self) -> str:
        where = self.node or ""
        if self.port:
            where += f".{self.port}"
        message = printable(self.message, 600)
        return f"{printable(where)}: {message}" if where else message


def path_field(default: str = "", *, kind: str, save: bool = False, **kw: Any) -> Any:
    """A file path param; the inspector shows a file dialog for it (kind: "image", "video", ...)."""
    return Field(default, json_schema_extra={"widget": "file", "file_kind": kind, "save": save}, **kw)


class Params(BaseModel):
    """Base of every node's params model: unknown keys are errors, values are checked on assignment,
    NaN and infinity are refused (JSON's NaN/Infinity, 1e999): no param means them, and one would
    pass every range check only to poison a frame."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Port:
    name: str
    type: PortType
    required: bool = True
    accepts: tuple[PortType, ...] = ()  # further types an input accepts besides `type`
    follows: str | None = None  # an output whose type is that of this input (e.g. blur of a mask)

    def accepts_type(self, t: PortType) -> bool:
        return t == self.type or t in self.accepts


# ---- GPU stages -------------------------------------------------------------------
# A stage input names a node input port ("in") or an earlier stage of the same node ("@0").


@dataclass(frozen=True)
class Uniform:
    name: str
    glsl_type: str  # "float", "int", "vec2", "vec3", "vec4", "float[32]" ...


@dataclass(frozen=True)
class GpuStage:
    """One GLSL function call.

    thick: ``vec4 fn(sampler2D in0, ..., ivec2 p, consts..., uniforms...)`` reads neighbourhoods, heads a
           pass; p is the output texel; a mask output is the result's .r.
    thin:  ``<out> fn(<in0>, ..., consts..., uniforms...)`` a pure per-pixel function, fused into a pass;
           video values are vec4, mask values float (converted when a port accepts both).
    """

    role: Literal["thick", "thin"]
    fn: str  # GLSL function name
    glsl: str  # file in shaders/
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


# ---- runtime objects for CPU-side nodes --------------------------------------------


@dataclass
class SourceInfo:
    size: Size
    fps: float
    frame_count: int | None  # None: endless (camera, looping video, endless pattern, still image)
    still: bool = False  # a still image: the same frame every time
    out_type: PortType = "video"


class Source:
    """An opened source: frames come as HxWx3 (BGR) or HxWx4 (BGRA) uint8 arrays."""

    info: SourceInfo

    def read(self, index: int) -> Any:  # raise EndOfStream when there is no frame `index`
        raise NotImplementedError

    def close(self) -> None:
        pass


class EndOfStream(Exception):
    pass


class Sink:
    """An opened sink: receives, per input port, HxWx4 RGBA uint8 (video) or HxW uint8 (mask)."""

    def write(self, inputs: dict[str, Any], index: int) -> None:
        raise NotImplementedError

    def write_audio(self, block: np.ndarray) -> None:
        """Sinks with an audio input: the next samples, float32 (n, channels), in order from
        the stream's start (time 0 is the first video frame's time)."""
        raise NotImplementedError

    def finish(self) -> list:
        """Closing, phase one (runtime.audio.close_sinks): complete the output under temporary
        names and return them (runtime.atomic Partials), published with every other sink's.
        Sinks without files just close."""
        self.close()
        return []

    def close(self) -> None:
        """Finalise the output: a complete, playable file replaces the target (also after Ctrl+C)."""

    def discard(self) -> None:
        """The run failed: drop the partial output, leave any existing target untouched."""


# ---- audio ------------------------------------------------------------------------
# Audio travels as float32 blocks shaped (samples, channels) in [-1, 1] at a known rate. It is
# processed on the CPU, on its own path beside the video plan (runtime/audio.py).


@dataclass(frozen=True)
class AudioFormat:
    rate: int  # samples per second
    channels: int

    def __str__(self) -> str:
        return f"{self.rate} Hz, {self.channels} channel{'s' if self.channels != 1 else ''}"


class AudioSource:
    """An opened audio source. Offline, read(n) returns up to n samples (fewer at the end,
    0 when done); live (a microphone) it blocks until a block has arrived."""

    format: AudioFormat
    frames: int | None = None  # samples in all, when known (a file); None for a device or a loop
    device: bool = False  # paced by a device's clock (read() waits for it); else by ours, live
    missing: str | None = None  # a planning stand-in for a device that is not there: why
    overruns: int = 0  # blocks the device delivered that we had no room for (live)

    def read(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class AudioProcessor:
    """A streaming audio node body: process() takes a block (n, in channels) and returns the
    output available so far (any length, the out format's channels). The output lags the
    input by `latency` samples at the output rate; flush() returns what is still held back
    at the end of a stream. Offline runs drop the first `latency` samples of a path and
    flush at the end, so the written track lines up with the input sample for sample."""

    latency: int = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def flush(self) -> np.ndarray:
        return np.zeros((0, 1), np.float32)

    def set_params(self, params: Any) -> bool | None:
        """A param edit while running (live): take the new values without a restart, or return
        False when they need one (the stream is then rebuilt)."""


@dataclass(frozen=True)
class OpenContext:
    """What a source or sink may know when it opens."""

    node_id: str
    fps: float = 30.0  # the graph's frame rate (from its first source)
    in_size: Size | None = None  # sinks: size of their input
    in_type: PortType | None = None
    audio: AudioFormat | None = None  # sinks with an audio input: what arrives there
    live: bool = False
    search_dirs: tuple[str, ...] = ()  # where relative input paths are looked for after the CWD
    max_texture: int = MAX_TEXTURE  # sources: the GPU's largest texture side (GL_MAX_TEXTURE_SIZE)
    # only planning (`fusegraph plan`): a device source need not start; one that is missing may
    # answer with a stand-in whose `missing` says why, so the rest of the graph is still planned
    plan_only: bool = False

    def find_input(self, path: str) -> str:
        """A relative input file: the current directory first, then next to the preset."""
        if not path or os.path.isabs(path) or os.path.exists(path):
            return path
        for folder in self.search_dirs:
            candidate = os.path.join(folder, path)
            if os.path.exists(candidate):
                return candidate
        return path


@dataclass(frozen=True)
class NodeSpec:
    type: str
    category: str  # palette group: "source", "filter", "composite", "sink", ...
    role: Role
    Params: type[Params]
    doc: str  # Inputs / Outputs / Params / Notes; the palette tooltip
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    # gpu/cpu nodes: (params, {connected input port: Incoming}) -> Body
    build: Callable[[Any, dict[str, Incoming]], Body] | None = None
    # source nodes: (params, OpenContext) -> Source or AudioSource ; sinks: -> Sink
    open: Callable[[Any, OpenContext], Any] | None = None
    # audio nodes: (params, {input port: AudioFormat}) -> output AudioFormat, or a NodeError
    # naming the port when the node cannot take what arrives (e.g. another sample rate)
    audio_format: Callable[[Any, dict[str, AudioFormat]], AudioFormat] | None = None
    # audio nodes: (params, {input port: AudioFormat}) -> AudioProcessor
    stream: Callable[[Any, dict[str, AudioFormat]], AudioProcessor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def input(self, name: str) -> Port | None:
        return next((p for p in self.inputs if p.name == name), None)

    @property
    def audio_only(self) -> bool:
        """Runs on the audio path alone: an audio processor, a source of sound, a sink of sound."""
        ports = self.inputs if self.role == "sink" else self.outputs
        return self.role == "audio" or (self.role in ("source", "sink") and bool(ports)
                                        and all(p.type == "audio" for p in ports))

    def output(self, name: str) -> Port | None:
        return next((p for p in self.outputs if p.name == name), None)
