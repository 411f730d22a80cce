"""The compiled plan: values, steps (uploads, fused GPU passes, CPU stages, sinks) and their order."""
from __future__ import annotations

from dataclasses import dataclass, field

from fusegraph.nodes.spec import CpuStage, GpuStage, PortType, Size


@dataclass(eq=False)
class Value:
    """One stage's output. Lives in a pass's registers, in a texture, or both."""

    key: str  # "blur@1": node id, stage index
    node: str
    stage: int
    type: PortType
    size: Size
    texture: bool = False  # materialised (read by another step, a sampler or the CPU)
    # texture format: "src" a source frame (RGBA8), "f1" RGBA8/R8, "f2" half float, "f4" float
    dtype: str = "f1"
    slot: int = -1  # physical texture in the pool
    # a node's state (GpuStage.feedback): "out" this frame's value, "prev" the last frame's; kept
    # across frames in two engine-owned textures (ping-pong), never in the pool
    state: str = ""

    @property
    def components(self) -> int:
        return 1 if self.type == "mask" else 4

    @property
    def nbytes(self) -> int:
        per = {"src": 1, "f1": 1, "f2": 2, "f4": 4}[self.dtype]
        return self.size[0] * self.size[1] * self.components * per


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
    tiles: Value | None = None  # the head's tile mask: a second draw covers its unsure tiles
    border_source: str = ""  # the fragment shader of that draw
    tile_vertex: str = ""  # its vertex shader (instanced quads, sure tiles collapsed)
    break_reason: str = ""  # why this pass did not join the one before

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
        up = down = 0
        for s in self.steps:
            if isinstance(s, Upload):
                up += s.value.nbytes
            elif isinstance(s, CpuStep):
                up += s.ref.out.nbytes
                down += sum(v.nbytes for v in s.ref.inputs)
            elif isinstance(s, SinkStep):
                down += sum(v.nbytes for v in s.inputs.values())
        return up, down
