"""Validated graph -> Plan: dead-node removal, stage expansion, fusion, ordering, texture pool.

Fusion (see docs/design.md): a pass is one thick stage, or a texture read, followed by the
thin stages that consume its values at the same resolution; a value needed outside its pass
becomes an extra render target (MRT); lower-resolution inputs are sampled directly.
"""
from __future__ import annotations

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import (CONVERSIONS, TYPES, Body, CpuStage, GpuStage, Incoming, NodeError, ShaderSource,
                                      SourceInfo)
from fusegraph.runtime.codegen import generate, generate_tiled
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.plan import STEP_KINDS, CpuStep, Pass, Plan, SinkStep, StageRef, State, Step, Upload, Value
from fusegraph.runtime.pool import assign_slots
from fusegraph.runtime.validate import topo_order

MAX_SAMPLERS = 16  # kept under GL_MAX_TEXTURE_IMAGE_UNITS of any GL 3.3 driver
MAX_DRAW_BUFFERS = 8  # GL_MAX_DRAW_BUFFERS guaranteed by GL 3.3


class CompileError(Exception):
    pass


def closure(graph: Graph, nodes: set[str], downstream: bool = False) -> set[str]:
    """`nodes` and every node that feeds them (downstream: that they feed), directly or not;
    linear in the links (a 5000-node chain is one pass, not 5000)."""
    nexts: dict[str, list[str]] = {}
    for l in graph.links:
        near, far = (l.src_node, l.dst_node) if downstream else (l.dst_node, l.src_node)
        nexts.setdefault(near, []).append(far)
    keep, todo = set(nodes), list(nodes)
    while todo:
        for far in nexts.get(todo.pop(), ()):
            if far not in keep:
                keep.add(far)
                todo.append(far)
    return keep


def live_nodes(graph: Graph, taps: tuple[str, ...] = ()) -> list[str]:
    """Nodes with a path to a sink (or to a tapped output), in topological order."""
    keep = {n.id for n in graph.nodes if REGISTRY[n.type].role == "sink"}
    ids = {n.id for n in graph.nodes}
    keep |= {t.split(".", 1)[0] for t in taps if t.split(".", 1)[0] in ids}
    keep = closure(graph, keep)
    return [n for n in topo_order(graph) if n in keep]


def fusion_break(p: Pass, ref: StageRef, depends_on) -> str | None:
    """Why thin stage `ref` cannot join pass `p`, or None if it can.

    depends_on(value, step): does the step that makes `value` come after `step`?"""
    if isinstance(ref.stage, GpuStage) and ref.stage.role != "thin":
        return "not per-pixel"
    if ref.out.size != p.size:
        return f"resolution differs ({ref.out.size[0]}x{ref.out.size[1]} vs {p.size[0]}x{p.size[1]})"
    regs = p.registers
    extra = [v for v in ref.inputs if v not in regs]
    constants = sum(len(m.stage.constants) for m in p.members) + len(ref.stage.constants)
    if sum(v.textures for v in set(p.samplers) | set(extra)) + constants > MAX_SAMPLERS:
        return "sampler limit"
    if any(depends_on(v, p) for v in extra):
        return "input computed after this pass"
    return None


def compile_graph(graph: Graph, sources: dict[str, SourceInfo], fuse: bool = True,
                  max_draw_buffers: int = MAX_DRAW_BUFFERS, taps: tuple[str, ...] = (),
                  bypass: frozenset[str] = frozenset()) -> Plan:
    """taps: outputs ("node.port") read back as well, e.g. what the editor's preview shows.
    bypass: GPU or CPU nodes that pass their first input through instead (a live run's node
    whose shader does not compile, or ran away)."""
    order = live_nodes(graph, taps)
    dropped = [n.id for n in graph.nodes if n.id not in order]
    outputs: dict[str, Value] = {}  # "node.port" -> value
    producer: dict[Value, Step] = {}
    steps: list[Step] = []
    values: list[Value] = []
    sinks: list[SinkStep] = []
    computed: dict[tuple, Value] = {}  # stages without uniforms, by what they compute
    states: dict[str, tuple[Value, Value]] = {}  # node -> (last frame's value, this frame's)

    def depends_on(value: Value, target: Step) -> bool:
        """Does the step producing `value` (transitively) depend on `target`?"""
        todo, seen = [producer[value]], set()
        while todo:
            s = todo.pop()
            if s is target:
                return True
            if s not in seen:
                seen.add(s)
                todo += list(s.deps)
        return False

    for node_id in order:
        node = graph.node(node_id)
        spec = REGISTRY[node.type]
        inputs = {l.dst_port: outputs[l.src] for l in graph.links if l.dst_node == node_id and l.src in outputs}
        if spec.audio_only:  # sound runs on its own path (runtime/audio.py)
            continue
        if spec.role == "source":
            info = sources[node_id]
            v = Value(f"{node_id}@0", node_id, 0, info.out_type, info.size, texture=True, dtype="src")
            up = Upload(name=f"upload:{node_id}", node=node_id, value=v)
            steps.append(up)
            producer[v] = up
            values.append(v)
            for port in spec.outputs:
                outputs[f"{node_id}.{port.name}"] = v
            continue
        if spec.role == "sink":
            sink = SinkStep(name=f"sink:{node_id}", node=node_id, inputs=dict(inputs))
            sink.deps = {producer[v] for v in inputs.values()}
            sinks.append(sink)
            continue
        try:
            incoming = {k: Incoming(v.size, v.type) for k, v in inputs.items()}
            body = bypass_body(spec, incoming) if node_id in bypass else spec.build(node.params, incoming)
        except NodeError as exc:
            exc.node = exc.node or node_id
            raise
        local: list[Value] = []
        prev = _state(node_id, body, steps, producer, values)
        for i, stage in enumerate(body.stages):
            ins = [prev if name == "@prev" else local[int(name[1:])] if name.startswith("@") else inputs[name]
                   for name in stage.inputs]
            key = _same_work_key(stage, ins)
            if key is not None and key in computed:  # the same work on the same values: reuse it
                local.append(computed[key])
                continue
            out = Value(f"{node_id}@{i}", node_id, i, stage.out_type, stage.out_size)
            if isinstance(stage, GpuStage) and (stage.role == "thin" or stage.feedback) and \
                    any(v.textures > 1 for v in [*ins, out]):
                raise CompileError(f"{node_id}: a thin or feedback stage takes and makes values of one texture "
                                   f"({stage.fn})")
            if key is not None:
                computed[key] = out
            if isinstance(stage, GpuStage) and stage.feedback:  # kept to the next frame
                out.texture, out.dtype, out.state = True, "f2", "out"
                states[node_id] = (prev, out)
            ref = StageRef(node_id, i, stage, ins, out, node.type)
            local.append(out)
            values.append(out)
            if isinstance(stage, CpuStage):
                step = CpuStep(name=f"cpu:{ref.name}", ref=ref)
                out.texture, out.dtype = True, "f1"  # the CPU result (in [0,1]) is uploaded as 8-bit
            else:
                step = _place(ref, steps, producer, depends_on, fuse)
            if step not in steps:
                steps.append(step)
            step.deps |= {producer[v] for v in ins if producer[v] is not step}
            producer[out] = step
        for port, idx in body.outputs.items():
            outputs[f"{node_id}.{port}"] = local[idx]
    for endpoint in taps:
        if endpoint in outputs:  # a tap on a node that is not in the graph (any more) reads nothing
            v = outputs[endpoint]
            sinks.append(SinkStep(name=f"tap:{endpoint}", deps={producer[v]}, node=v.node,
                                  inputs={"in": v}, tap=endpoint))
    steps += sinks
    _materialise(steps, max_draw_buffers)
    steps = _order(steps)
    for i, p in enumerate(s for s in steps if isinstance(s, Pass)):
        p.name = f"pass{i}:" + "+".join(dict.fromkeys(m.name for m in p.members))
    slots = assign_slots(steps, [v for v in values if not v.state])  # states: engine-owned, kept
    for p in steps:
        if isinstance(p, Pass):
            p.constants = [(m, c) for m in p.members for c in m.stage.constants]
            p.source, p.spans = generate(p)
            generate_tiled(p)
    return Plan(steps, values, outputs, slots, dropped, fused=fuse, states=states)


BYPASS = ShaderSource.inline("\n".join(f"{t.glsl} fg_bypass_{t.name}({t.glsl} c) {{ return c; }}"
                                       for t in TYPES.values() if t.gpu), "bypass")


def bypass_body(spec, incoming: dict[str, Incoming]) -> Body:
    """Each output is the node's first connected input, converted to the output's type."""
    port = next((p.name for p in spec.inputs if p.name in incoming), None)
    if port is None:
        raise NodeError("cannot be bypassed: no input is connected")
    have = incoming[port]
    stages, outputs = [], {}
    for out in spec.outputs:
        want = have.type if out.follows else out.type
        if want != have.type and (have.type, want) not in CONVERSIONS:
            raise NodeError(f"cannot be bypassed: its {have.type} input cannot stand for its {want} output")
        outputs[out.name] = len(stages)
        stages.append(GpuStage("thin", f"fg_bypass_{want}", BYPASS, (port,), (want,), want, have.size,
                               cost=0.1, label="bypass"))
    return Body(stages, outputs)


def _state(node_id: str, body, steps: list[Step], producer, values: list[Value]) -> Value | None:
    """The value "@prev" of a node with a feedback stage: that stage's output of the last frame."""
    fb = [i for i, s in enumerate(body.stages) if isinstance(s, GpuStage) and s.feedback]
    if len(fb) > 1:
        raise CompileError(f"{node_id}: {len(fb)} feedback stages (a node keeps at most one state)")
    if not fb:
        if any("@prev" in s.inputs for s in body.stages):
            raise CompileError(f"{node_id}: a stage reads @prev but no stage has feedback")
        return None
    i, stage = fb[0], body.stages[fb[0]]
    prev = Value(f"{node_id}@{i}.prev", node_id, i, stage.out_type, stage.out_size, texture=True, dtype="f2",
                 state="prev")
    step = State(name=f"state:{node_id}", node=node_id, value=prev)
    steps.append(step)
    producer[prev] = step
    values.append(prev)
    return prev


def _same_work_key(stage, ins: list[Value]) -> tuple | None:
    """Two GPU stages compute the same value when function, constants, inputs and size agree
    and no uniform (a param that may change) is involved; e.g. the network's and the bilateral
    filter's downsized copies of the same frame. Never for state (it differs per node)."""
    if not isinstance(stage, GpuStage) or stage.uniforms or stage.feedback or any(v.state for v in ins):
        return None
    return (stage.role, stage.fn, stage.source, stage.consts, stage.constants, stage.out_type, stage.out_size,
            tuple(map(id, ins)))


def _place(ref: StageRef, steps: list[Step], producer, depends_on, fuse: bool) -> Pass:
    """The pass a GPU stage joins, or a new one it heads."""
    reason = "fusion off" if not fuse else "not per-pixel" if ref.stage.role == "thick" else "no input in a pass"
    if fuse and ref.stage.role == "thin":
        candidates = [producer[v] for v in ref.inputs if isinstance(producer[v], Pass)]
        for p in sorted(set(candidates), key=steps.index, reverse=True):
            why = fusion_break(p, ref, depends_on)
            if why is None:
                p.members.append(ref)
                return p
            reason = why
    p = Pass(name=f"pass{sum(isinstance(s, Pass) for s in steps)}:{ref.name}", size=ref.out.size,
             members=[ref], break_reason=reason)
    return p


def _materialise(steps: list[Step], max_draw_buffers: int) -> None:
    """Decide which values are textures (render targets) and which samplers each pass binds."""
    readers: dict[Value, list[str]] = {}  # value -> how each reader reads it: "thick", "thin", "cpu"...
    thick_made = {m.out for s in steps if isinstance(s, Pass) for m in s.members if m.stage.role == "thick"}
    for s in steps:
        if isinstance(s, Pass):
            regs = s.registers
            for m in s.members:
                thick = m.stage.role == "thick"
                for v in m.inputs:
                    if thick or v not in regs:
                        resampled = v.size != s.size and v in thick_made
                        readers.setdefault(v, []).append("thick" if thick else "resampled" if resampled else "thin")
                        if v not in s.samplers:
                            s.samplers.append(v)
        else:
            how = "cpu-float" if isinstance(s, CpuStep) and s.ref.stage.float_inputs else "cpu"
            for v in s.reads():
                readers.setdefault(v, []).append(how)
    for s in steps:
        if isinstance(s, Pass):
            s.outputs = [m.out for m in s.members if m.out in readers or m.out.state]
            if not s.outputs:  # keep the last value so the pass has a target
                s.outputs = [s.members[-1].out]
            targets = sum(v.textures for v in s.outputs)
            if targets > max_draw_buffers:
                raise CompileError(f"{s.name}: {targets} render targets exceed {max_draw_buffers} draw buffers")
            for v in s.outputs:
                v.texture = True
                v.dtype = "f2" if v.state else TYPES[v.type].storage or texture_format(readers.get(v, []))


def texture_format(how_read: list[str]) -> str:
    """8-bit where a value is gathered by a thick op or read back; half float where only thin
    stages read it (one texel each, or one bilinear sample). Software GL fetches 8-bit texels
    about twice as fast as half floats, and a thin read of half floats keeps a split chain
    equal to the fused one (and a sampler filters them with full-precision weights). A thick
    op's result sampled at another size ("resampled", e.g. a quarter-size blur under a full-size
    composite) is stored the same way fused or not, so 8 bits are safe there and 30% cheaper to
    filter. Float where a CPU stage asks for it (a network's normalised input)."""
    if "cpu-float" in how_read:
        return "f4"
    return "f2" if how_read and all(h == "thin" for h in how_read) else "f1"


def _order(steps: list[Step]) -> list[Step]:
    """Topological order of steps, stable on creation order."""
    done: list[Step] = []
    placed: set[Step] = set()
    pending = list(steps)
    while pending:
        for s in pending:
            if s.deps <= placed:
                done.append(s)
                placed.add(s)
                pending.remove(s)
                break
        else:
            raise CompileError("internal: step dependencies form a cycle")
    return done


def describe(plan: Plan, graph: Graph | None = None) -> str:
    """The plan as text (`fusegraph plan`)."""
    lines = []
    n_pass = len(plan.passes)
    up, down = plan.transfer_bytes()
    lines.append(f"{n_pass} GPU pass(es), {len(plan.steps)} step(s), {len(plan.slots)} pooled texture(s), "
                 f"{'fused' if plan.fused else 'unfused (--no-fuse)'}")
    for s in plan.steps:
        lines += STEP_KINDS[type(s)].describe(s)
    lines.append(f"per frame: {up / 1e6:.2f} MB uploaded, {down / 1e6:.2f} MB read back"
                 + (f"; constants: {plan.constant_bytes() / 1e6:.2f} MB uploaded once" if plan.constant_bytes() else ""))
    if plan.dropped:
        lines.append(f"dropped (no path to a sink): {', '.join(plan.dropped)}")
    return "\n".join(lines)
