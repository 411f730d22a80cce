"""The declaration of a node kind: NodeSpec, its ports, its params model, its errors.

Validation, the preset schema, the palette, the inspector and the compiler all read this
declaration; nothing else repeats it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Literal

from pydantic import BaseModel, ConfigDict, Field

from fusegraph.nodes.contract.types import PortTypeName as PortType

if TYPE_CHECKING:
    import numpy as np

    from fusegraph.nodes.contract.io import AudioFormat, AudioProcessor, OpenContext
    from fusegraph.nodes.contract.stages import Body, Incoming

Role = Literal["source", "sink", "thin", "thick", "cpu", "audio"]

MAX_TEXTURE = 16384  # GL_MAX_TEXTURE_SIZE of most GPUs; the engine passes its GPU's own
PIXEL_BUDGET = 50_000_000  # the largest picture read: 8192x6104, 200 MB as RGBA (nodes/lib/input_files.py)


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
    type_param: str | None = None  # an output whose type is this param's value (e.g. shader's `output`)

    def accepts_type(self, t: PortType) -> bool:
        return t == self.type or t in self.accepts




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
    # What of the params decides the body's structure (stages, sizes, constants, GLSL): an edit
    # that leaves it equal only changes uniform values (no recompile). None: every param does.
    # tests/test_contract.py checks each declaration against the bodies the node builds.
    structure: Callable[[Any], Hashable] | None = None
    # GPU kinds: the numpy float64 oracle, (params, {input port: array}) -> the output (video
    # HxWx4 RGBA in [0,1], mask HxW); a test compares every GPU kind of the registry with it
    reference: Callable[[Any, dict[str, "np.ndarray"]], "np.ndarray"] | None = None
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

    def is_uniform_edit(self, old: Any, new: Any) -> bool:
        """Does going from params `old` to `new` leave the plan as it is (uniform values only)?"""
        if self.role not in ("thin", "thick", "cpu") or self.structure is None:
            return False
        return self.structure(old) == self.structure(new)
