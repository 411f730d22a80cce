"""The compiled plan: values, steps (uploads, fused GPU passes, CPU stages, sinks) and their order."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from fusegraph.nodes.contract import TYPES, Constant, CpuStage, GpuStage, PortTypeName, Size


@dataclass(eq=False)
class Value:
    """One stage's output. Lives in a pass's registers, in a texture, or both."""

    key: str  # "blur@1": node id, stage index
    node: str
    stage: int
    type: PortTypeName
    size: Size
    texture: bool = False  # materialised (read by another step, a sampler or the CPU)
    # texture format: "src" a source frame (RGBA8), "f1" RGBA8/R8, "f2" half float, "f4" float
    dtype: str = "f1"
    slots: list[int] = field(default_factory=list)  # physical textures in the pool, one per texture of the value
    # a node's state (GpuStage.feedback): "out" this frame's value, "prev" the last frame's; kept
    # across frames in two engine-owned textures (ping-pong), never in the pool
    state: str = ""

    @property
    def components(self) -> int:
        """Channels of each of its textures."""
        return TYPES[self.type].components

    @property
    def textures(self) -> int:
        """Textures the value spans (its type's; a packed tensor spans several)."""
        return TYPES[self.type].textures

    @property
    def slot(self) -> int:
        return self.slots[0] if self.slots else -1

    @property
    def nbytes(self) -> int:
        per = {"src": 1, "f1": 1, "f2": 2, "f4": 4}[self.dtype]
        return self.size[0] * self.size[1] * self.components * self.textures * per

    def describe(self) -> str:
        spans = f" x{self.textures} textures" if self.textures > 1 else ""
        return f"{self.key} {self.size[0]}x{self.size[1]} {self.type}/{self.dtype}{spans}"


@dataclass(eq=False)
class StageRef:
    node: str
    index: int
    stage: GpuStage | CpuStage
    inputs: list[Value]
    out: Value
    node_type: str = ""

    @property
    def name(self) -> str:
        label = self.stage.label
        return f"{self.node}.{label}" if label else self.node


@dataclass(eq=False)
class Step:
    name: str
    deps: set["Step"] = field(default_factory=set)

    @property
    def nodes(self) -> list[str]:
        return []

    def reads(self) -> list[Value]:
        """Textures this step reads."""
        return []

    def writes(self) -> list[Value]:
        """Textures this step writes."""
        return []


@dataclass(eq=False)
class Upload(Step):
    node: str = ""
    value: Value | None = None

    @property
    def nodes(self) -> list[str]:
        return [self.node]

    def writes(self) -> list[Value]:
        return [self.value]


@dataclass(eq=False)
class State(Step):
    """A node's state: its feedback stage's output of the previous frame, there at the frame's start."""

    node: str = ""
    value: Value | None = None  # the "prev" value


@dataclass(eq=False)
class Pass(Step):
    size: Size = (0, 0)
    members: list[StageRef] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)  # render targets, in location order
    samplers: list[Value] = field(default_factory=list)  # textures read, in unit order
    source: str = ""  # generated GLSL
    tiles: Value | None = None  # the head's tile mask: drawn as quads over its sure, then its border tiles
    sure_vertex: str = ""  # the sure tiles' vertex shader (instanced quads; `source` their fragments)
    border_source: str = ""  # the border tiles' fragment shader (the head's full path)
    border_vertex: str = ""  # their vertex shader
    class_vertices: tuple[str, ...] = ()  # the vertex shaders drawing only class-0 and only class-1 tiles
    break_reason: str = ""  # why this pass did not join the one before
    constants: list[tuple[StageRef, Constant]] = field(default_factory=list)  # after the samplers' units
    spans: list = field(default_factory=list)  # codegen.Span: where each shader source sits in `source`

    @property
    def nodes(self) -> list[str]:
        return list(dict.fromkeys(m.node for m in self.members))

    @property
    def registers(self) -> set[Value]:
        return {m.out for m in self.members}

    def reads(self) -> list[Value]:
        return self.samplers

    def writes(self) -> list[Value]:
        return self.outputs

    @property
    def value_units(self) -> int:
        """Texture units its samplers take (a value of several textures takes several)."""
        return sum(v.textures for v in self.samplers)

    @property
    def units(self) -> int:
        """Texture units the pass binds: its samplers' textures and its members' constants."""
        return self.value_units + len(self.constants)


@dataclass(eq=False)
class CpuStep(Step):
    ref: StageRef | None = None

    @property
    def nodes(self) -> list[str]:
        return [self.ref.node]

    def reads(self) -> list[Value]:
        return self.ref.inputs

    def writes(self) -> list[Value]:
        return [self.ref.out]


@dataclass(eq=False)
class SinkStep(Step):
    node: str = ""
    inputs: dict[str, Value] = field(default_factory=dict)
    tap: str = ""  # "node.port" when this reads a value for the editor rather than for a sink node

    @property
    def nodes(self) -> list[str]:
        return [] if self.tap else [self.node]

    def reads(self) -> list[Value]:
        return list(self.inputs.values())


@dataclass
class Plan:
    steps: list[Step]  # in execution order
    values: list[Value]
    outputs: dict[str, Value]  # "node.port" -> value
    slots: list[tuple[Size, int, str]]  # pool: (size, components, dtype) per physical texture
    dropped: list[str]  # dead nodes (no path to a sink)
    fused: bool = True
    states: dict[str, tuple[Value, Value]] = field(default_factory=dict)  # node -> (prev, out)

    @property
    def nodes(self) -> set[str]:
        """The nodes the plan runs (sources, stages, sinks)."""
        return {n for s in self.steps for n in s.nodes}

    @property
    def passes(self) -> list[Pass]:
        return [s for s in self.steps if isinstance(s, Pass)]

    def transfer_bytes(self) -> tuple[int, int]:
        """(uploaded, read back) bytes per frame."""
        moved = [STEP_KINDS[type(s)].moved(s) for s in self.steps]
        return sum(m[0] for m in moved), sum(m[1] for m in moved)

    def constant_bytes(self) -> int:
        """Bytes of constant textures, uploaded once per plan."""
        return sum(c.data.nbytes for p in self.passes for _, c in p.constants)


# ---- step kinds: one row each (what the engine runs, how the plan prints it, bytes moved) ----


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _describe_upload(s: Upload) -> list[str]:
    w, h = s.value.size
    return [f"  upload  {s.node}: {w}x{h} rgba8 ({_mb(s.value.nbytes)})"]


def _describe_pass(s: Pass) -> list[str]:
    w, h = s.size
    members = ", ".join(f"{m.name} ({m.stage.role} {m.stage.fn})" for m in s.members)
    outs = ", ".join(v.describe() for v in s.outputs)
    ins = ", ".join(v.key for v in s.samplers) or "-"
    lines = [f"  {s.name}  [{w}x{h}]", f"      members: {members}", f"      reads: {ins}; writes: {outs}"]
    if s.constants:
        lines.append("      constants: " + ", ".join(
            f"{m.name}.{c.name} {c.size[0]}x{c.size[1]}x{c.components} f4 ({_mb(c.data.nbytes)}, once)"
            for m, c in s.constants))
    return lines + [f"      new pass because: {s.break_reason}"]


def _describe_state(s: State) -> list[str]:
    w, h = s.value.size
    return [f"  state   {s.node}: {s.value.key} {w}x{h} {s.value.type}/f2, last frame's output "
            f"(2 textures kept across frames, ping-pong)"]


def _describe_sink(s: SinkStep) -> list[str]:
    reads = ", ".join(f"{p}={v.key} {v.size[0]}x{v.size[1]}" for p, v in s.inputs.items())
    what = f"tap     {s.tap}" if s.tap else f"sink    {s.node}"
    return [f"  {what}: reads back {reads}"]


@dataclass(frozen=True)
class StepKind:
    execute: str  # the Engine method that runs a step of this kind: (step, index, frames)
    describe: Callable[[Step], list[str]]  # its lines in `fusegraph plan`
    moved: Callable[[Step], tuple[int, int]] = lambda s: (0, 0)  # (uploaded, read back) bytes per frame


STEP_KINDS: dict[type, StepKind] = {
    Upload: StepKind("_run_upload", _describe_upload, lambda s: (s.value.nbytes, 0)),
    State: StepKind("_run_nothing", _describe_state),
    Pass: StepKind("_run_pass", _describe_pass),
    CpuStep: StepKind("_run_tolerant", lambda s: [f"  cpu     {s.ref.name}: reads {', '.join(v.key for v in s.ref.inputs)}"],
                      lambda s: (s.ref.out.nbytes, sum(v.nbytes for v in s.ref.inputs))),
    SinkStep: StepKind("_run_tolerant", _describe_sink, lambda s: (0, sum(v.nbytes for v in s.inputs.values()))),
}
