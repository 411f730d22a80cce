"""The executor: opens sources and sinks, compiles, and runs the plan frame by frame.

Offline mode processes every frame in order. Parameter edits arrive as messages applied
between frames: a change that keeps the plan's structure is a uniform update; one that
changes it (a size, a stage) recompiles without reopening the sources.
"""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.spec import EndOfStream, GpuStage, Incoming, NodeError, OpenContext, Sink, Source, SourceInfo
from fusegraph.runtime.audio import AudioPath, close_sinks
from fusegraph.runtime.codegen import uniform_name
from fusegraph.runtime.compiler import closure, compile_graph, live_nodes
from fusegraph.runtime.frames import FrameReader
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.outputs import is_file_sink
from fusegraph.runtime.plan import CpuStep, Pass, Plan, SinkStep, Upload


@dataclass
class StepTiming:
    name: str
    nodes: list[str]
    ms: float = 0.0


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Sinks get 8-bit frames; a float texture (a CPU stage's result) is rounded to them."""
    if a.dtype == np.uint8:
        return a
    return (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class Engine:
    def __init__(self, graph: Graph, *, gpu: Gpu | None = None, fuse: bool = True,
                 profile: bool = False, live: bool = False, search_dirs: tuple[str, ...] = (),
                 record: frozenset[str] | None = None):
        """record: the file sinks to open (None: every one; the editor's live run records only
        those the user switched on, runtime/outputs.py)."""
        self.graph = graph
        self.record = record
        self.gpu = gpu or Gpu()
        self._own_gpu = gpu is None
        self.fuse, self.profile, self.live = fuse, profile, live
        self.search_dirs = search_dirs  # input files not found from the CWD are looked for here
        self.params = {n.id: n.params for n in graph.nodes}
        self.sources: dict[str, Source] = {}
        self.readers: dict[str, FrameReader] = {}  # per source: RGBA frames, read ahead offline
        self.sinks: dict[str, Sink] = {}
        self.audio: AudioPath | None = None  # the sound beside the frames (runtime/audio.py)
        self._audio_key: Any = None
        self.plan: Plan | None = None
        self.textures: list = []
        self.fbos: dict[str, Any] = {}  # pass -> its framebuffer for even and for odd frames
        self.states: dict[str, tuple[Any, list]] = {}  # node -> (shape, [two textures]): feedback state
        self._parity = 0  # state textures: frame parity p writes states[n][1][p], reads the other
        self.timings: dict[str, StepTiming] = {}
        self.trace: list[tuple[str, float, float]] = []  # (row, start s, duration s)
        self.messages: queue.Queue = queue.Queue()
        self.taps: tuple[str, ...] = ()
        self.tap_frames: dict[str, np.ndarray] = {}  # endpoint -> its last frame (RGBA, or HxW for a mask)
        self.node_errors: dict[str, str] = {}  # live runs: node -> why it failed (it holds its last output)
        self.cut: set[str] = set()  # live runs: sources that failed to open and what they feed (not run)
        self._opened: dict[str, Any] = {}  # node -> what its source or sink was opened with
        self._last_frames: dict[str, np.ndarray] = {}
        self.frames_done = 0
        self._uniform_cache: dict[tuple[str, str], Any] = {}
        self._t0 = time.perf_counter()

    # ---- life cycle ------------------------------------------------------------------
    def open(self, sinks: bool = True) -> None:
        """Open sources, compile, open sinks (sinks=False: only plan, e.g. `fusegraph plan`)."""
        self.gpu.make_current()  # another context may have been made current on this thread since
        try:
            self._sync(open_sinks=sinks)
        except BaseException:
            self.close(ok=False)
            raise

    def _sync(self, open_sinks: bool = True) -> None:
        """Bring the open sources and sinks and the plan in line with the graph, params and taps:
        what is gone or changed closes, what is new opens, the rest stays open (a running
        camera or file is not restarted by an edit elsewhere)."""
        live = live_nodes(self.graph, self.taps)  # a source nothing uses is not opened
        self.node_errors = {k: v for k, v in self.node_errors.items() if k in live}
        for node_id in list(self.sources):
            if node_id not in live or self._opened.get(node_id) != self._key(node_id):
                self._close_source(node_id)
        failed = set()
        for node_id in live:
            spec = REGISTRY[self.graph.node(node_id).type]
            if spec.role == "source" and not spec.audio_only and node_id not in self.sources:
                try:
                    self._set_source(node_id, self._open_source(node_id))
                except NodeError as exc:
                    if not self.live:
                        raise
                    self.node_errors[node_id] = exc.message  # live: its branch stops, the rest runs
                    failed.add(node_id)
                    continue
                self.node_errors.pop(node_id, None)
        self.cut = closure(self.graph, failed, downstream=True)
        live = [n for n in live if n not in self.cut]
        self._sync_audio(live, open_sinks)
        self._compile()
        wanted = {s.node: s for s in self.plan.steps
                  if isinstance(s, SinkStep) and not s.tap and self.writes(s.node)}
        for node_id in list(self.sinks):
            step = wanted.get(node_id)
            if step is None or self._opened.get(node_id) != self._key(node_id, step):
                self.sinks.pop(node_id).close()
        for node_id, step in wanted.items() if open_sinks else ():
            if node_id not in self.sinks:
                try:
                    self.sinks[node_id] = self._open_sink(step)
                except NodeError as exc:
                    if not self.live:
                        raise
                    self.node_errors[node_id] = exc.message  # live: this sink stays shut, the rest runs
                    continue
                self.node_errors.pop(node_id, None)
                self._opened[node_id] = self._key(node_id, step)
        if open_sinks and self.audio and not self.audio.running:
            self.audio.open_sinks()
            if self.live:
                self.audio.start()

    def writes(self, node_id: str) -> bool:
        """Whether sink `node_id` is opened: not a file sink, or one this run records."""
        return (self.record is None or node_id in self.record
                or not is_file_sink(self.graph.node(node_id).type))

    def _sync_audio(self, live: list[str], open_sinks: bool) -> None:
        """The audio path is rebuilt when its part of the graph changed (an edit of a
        processor's params reaches it without a rebuild: set_param)."""
        path = AudioPath(self.graph, dict(self.params), live, live=self.live, search_dirs=self.search_dirs,
                         writes=self.writes)
        key = (tuple(n for n in live if not self.writes(n)),  # the file sinks not recorded
               tuple((l.src, l.dst) for l in path.links),
               tuple((n, self.graph.node(n).type, self.params[n]) for n in path.order
                     if REGISTRY[self.graph.node(n).type].role != "audio"))
        if self.audio is not None and key == self._audio_key:
            return
        if self.audio is not None:
            self.audio.close()
        self.audio, self._audio_key = path, key
        path.video_sink = self.sinks.get
        path.plan_only = not open_sinks  # `fusegraph plan`: devices are described, not started
        if self.profile:
            path.trace, path.trace_t0 = self.trace, self._t0
        path.open_sources()

    def _key(self, node_id: str, step: SinkStep | None = None) -> Any:
        """What an open source or sink was opened with; a different key reopens it."""
        node = self.graph.node(node_id)
        if node is None:
            return None
        inputs = tuple((p, v.size, v.type) for p, v in step.inputs.items()) if step else ()
        sound = self.audio.sink_format(node_id) if step and self.audio else None
        return node.type, self.params[node_id], inputs, sound

    def _open_source(self, node_id: str) -> Source:
        spec = REGISTRY[self.graph.node(node_id).type]
        try:
            ctx = OpenContext(node_id=node_id, live=self.live, search_dirs=self.search_dirs,
                              max_texture=self.gpu.max_texture)
            return spec.open(self.params[node_id], ctx)
        except NodeError as exc:
            exc.node = exc.node or node_id
            raise

    def _set_source(self, node_id: str, source: Source) -> None:
        self.sources[node_id] = source
        self._opened[node_id] = self._key(node_id)
        self.readers[node_id] = FrameReader(node_id, source, read_ahead=not self.live)

    def _close_source(self, node_id: str) -> None:
        self.readers.pop(node_id).close()  # first: a read ahead may be using the source
        self.sources.pop(node_id).close()

    def _open_sink(self, step: SinkStep) -> Sink:
        spec = REGISTRY[self.graph.node(step.node).type]
        first = next(iter(step.inputs.values()), None)
        ctx = OpenContext(node_id=step.node, fps=self.fps, live=self.live,
                          in_size=first.size if first else None, in_type=first.type if first else None,
                          audio=self.audio.sink_format(step.node) if self.audio else None,
                          search_dirs=self.search_dirs)
        try:
            return spec.open(self.params[step.node], ctx)
        except NodeError as exc:
            exc.node = exc.node or step.node
            raise

    @property
    def source_infos(self) -> dict[str, SourceInfo]:
        return {k: s.info for k, s in self.sources.items()}

    @property
    def fps(self) -> float:
        infos = [s.info for s in self.sources.values() if not s.info.still]
        return infos[0].fps if infos else 30.0

    def frame_count(self) -> int | None:
        """Frames the graph yields offline: the shortest finite source; 1 if all are stills.
        A graph of sound alone runs in ticks of 1/fps until its longest source ends."""
        infos = [s.info for s in self.sources.values()]
        if not infos and self.audio:
            seconds = self.audio.duration()
            return None if seconds is None else max(1, int(np.ceil(seconds * self.fps - 1e-9)))
        finite = [i.frame_count for i in infos if i.frame_count is not None]
        if finite:
            return min(finite)
        return 1 if infos and all(i.still for i in infos) else None

    def _compile(self) -> None:
        self._release_targets()
        graph = self.graph.model_copy(update={  # without the branches of sources that failed (live)
            "nodes": [n.model_copy(update={"params": self.params[n.id]}) for n in self.graph.nodes
                      if n.id not in self.cut],
            "links": [l for l in self.graph.links if l.src_node not in self.cut and l.dst_node not in self.cut]})
        taps = tuple(t for t in self.taps if t.split(".", 1)[0] not in self.cut)
        self.plan = compile_graph(graph, self.source_infos, fuse=self.fuse, taps=taps)
        self.textures = [self.gpu.texture(size, comps, dtype) for size, comps, dtype in self.plan.slots]
        self._sync_states()
        for p in self.plan.passes:
            self.gpu.program(p.source)
            if p.tiles is not None:
                self.gpu.program(p.border_source, p.tile_vertex)
            if any(v.state for v in p.outputs):  # writes a state: one target per frame parity
                self.fbos[p.name] = tuple(self.gpu.framebuffer([self._tex(v, parity) for v in p.outputs])
                                          for parity in (0, 1))
            else:
                self.fbos[p.name] = (self.gpu.framebuffer([self.textures[v.slot] for v in p.outputs]),) * 2
        self._uniform_cache.clear()
        self.timings = {s.name: StepTiming(s.name, s.nodes) for s in self.plan.steps}

    def _release_targets(self) -> None:
        for fbo in {id(f): f for pair in self.fbos.values() for f in pair}.values():
            self.gpu.release_framebuffer(fbo)
        for tex in self.textures:
            self.gpu.release_texture(tex)
        self.fbos, self.textures = {}, []

    def close(self, ok: bool = True) -> None:
        """ok: finalise outputs; not ok (a failure): discard partial outputs."""
        self.gpu.make_current()
        errors = []
        if self.audio is not None:
            self.audio.stop()
            if ok and not self.live:
                try:
                    self.audio.finish(drain=not self.sources)  # the tail, before files close
                except Exception as exc:
                    errors.append(exc)
                    ok = False
        # every output of the run, the audio path's too, published together; the first error is raised
        errors += close_sinks([*self.sinks.values(), *(self.audio.sinks.values() if self.audio else ())], ok)
        if self.audio is not None:
            try:
                self.audio.close(ok)
            except Exception as exc:
                errors.append(exc)
            self.audio = None
        for node_id in list(self.sources):
            self._close_source(node_id)
        self.sinks = {}
        self._release_targets()
        for node_id in list(self.states):
            self._release_state(node_id)
        if self._own_gpu:
            self.gpu.release()
        if errors:
            raise errors[0]

    # ---- edits between frames (thread-safe: queued, applied before the next frame) -----------
    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """A uniform update when the plan's structure stays; else a recompile."""
        self.messages.put(("param", node_id, name, value))

    def set_graph(self, graph: Graph) -> None:
        """A structural edit: recompile, keeping open what did not change."""
        self.messages.put(("graph", graph))

    def set_taps(self, taps: tuple[str, ...]) -> None:
        """Outputs ("node.port") to read back each frame into tap_frames (the editor's preview)."""
        self.messages.put(("taps", tuple(taps)))

    def _apply_messages(self) -> None:
        dirty = False
        while not self.messages.empty():
            kind, *args = self.messages.get_nowait()
            if kind == "graph":
                self.graph = args[0]
                self.params = {n.id: n.params for n in self.graph.nodes}
                dirty = True
            elif kind == "record":
                self.record = args[0]
                dirty = True
            elif kind == "taps":
                self.taps = args[0]
                self.tap_frames = {k: v for k, v in self.tap_frames.items() if k in self.taps}
                dirty = True
            else:
                node_id, name, value = args
                old = self.params[node_id]
                new = type(old).model_validate({**old.model_dump(), name: value})
                self.params[node_id] = new
                if self.audio is not None and node_id in self.audio.nodes:
                    if not self.audio.set_params(node_id, new):  # not as it runs: rebuild the path
                        self._audio_key = None
                        dirty = True
                    continue
                if node_id in self.cut:  # a source that failed to open, or its branch: try again
                    dirty = True
                    continue
                if node_id not in self.plan.nodes:  # dropped from the plan: nothing runs it
                    continue
                role = REGISTRY[self.graph.node(node_id).type].role
                if role in ("source", "sink") or self._structure(node_id, old) != self._structure(node_id, new):
                    dirty = True
        if dirty:
            self._sync()

    def _structure(self, node_id: str, params) -> Any:
        """What of a node's body decides the plan (everything but uniform values)."""
        inputs = {l.dst_port: Incoming(self.plan.outputs[l.src].size, self.plan.outputs[l.src].type)
                  for l in self.graph.links
                  if l.dst_node == node_id and l.src in self.plan.outputs}
        body = REGISTRY[self.graph.node(node_id).type].build(params, inputs)
        return [replace(s, values=None, cost=0) if isinstance(s, GpuStage) else replace(s, run=None)
                for s in body.stages], body.outputs

    # ---- one frame ---------------------------------------------------------------------
    def process(self, index: int) -> bool:
        """Run frame `index`; False when a finite source has no such frame."""
        self.gpu.make_current()
        self._apply_messages()
        frames: dict[str, np.ndarray] = {}
        read_ms: dict[str, float] = {}
        for node_id, reader in self.readers.items():
            t = time.perf_counter()
            try:
                frames[node_id] = self._last_frames[node_id] = reader.read(index)
                self.node_errors.pop(node_id, None)
            except EndOfStream:
                return False
            except NodeError as exc:
                exc.node = exc.node or node_id
                if not self.live:
                    raise
                self.node_errors[node_id] = exc.message  # live: hold the last good frame, keep going
                w, h = self.sources[node_id].info.size
                frames[node_id] = self._last_frames.get(node_id, np.zeros((h, w, 4), np.uint8))
            read_ms[node_id] = (time.perf_counter() - t) * 1000.0
        queries = []
        for step in self.plan.steps:
            t = time.perf_counter()
            if isinstance(step, Upload):
                self._upload(step, frames[step.node])
            elif isinstance(step, Pass):
                if self.profile and self.gpu.timers_trustworthy:
                    query = self.gpu.ctx.query(time=True)
                    with query:
                        self._run_pass(step)
                    queries.append((step, query))
                else:
                    self._run_pass(step)
            elif isinstance(step, (CpuStep, SinkStep)):
                self._run_tolerant(step, index, frames)
            if self.profile and not self.gpu.timers_trustworthy:
                self.gpu.ctx.finish()  # synchronised timing: the step's GPU work is inside its interval
            self._record(step, t, extra_ms=read_ms.get(step.node, 0.0) if isinstance(step, Upload) else 0.0)
        for step, query in queries:  # GL timer queries, where the driver's are real time
            self.timings[step.name].ms = query.elapsed / 1e6
            query.release()
        if self.audio and not self.live:  # the sound up to the end of this frame
            self.audio.pump_to((index + 1) / self.fps)
        self.frames_done += 1
        self._parity ^= 1  # this frame's states become the next frame's @prev
        return True

    def _run_tolerant(self, step: CpuStep | SinkStep, index: int, frames: dict[str, np.ndarray]) -> None:
        """Run a CPU stage or a sink; live, a failure marks the node and the rest keeps running
        (a CPU stage's output texture holds its last good value)."""
        node = step.ref.node if isinstance(step, CpuStep) else step.node
        try:
            self._run_cpu(step, frames) if isinstance(step, CpuStep) else self._sink(step, index, frames)
            self.node_errors.pop(node, None)
        except NodeError as exc:
            exc.node = exc.node or node
            if not self.live:
                raise
            self.node_errors[node] = exc.message

    def _record(self, step, start: float, extra_ms: float = 0.0) -> None:
        end = time.perf_counter()
        self.timings[step.name].ms = (end - start) * 1000.0 + extra_ms
        if self.profile:
            self.trace.append((step.name, start - self._t0 - extra_ms / 1000.0, end - start + extra_ms / 1000.0))

    def _upload(self, step: Upload, frame: np.ndarray) -> None:
        # RGBA on the CPU (runtime/frames.py), then a plain copy: the driver's own RGB -> RGBA
        # unpacking is slower (measured at 720p: 2.4 ms for an RGB write, 1.3 + 0.3 ms this way)
        self.gpu.write(self.textures[step.value.slot], frame)

    def _run_pass(self, p: Pass) -> None:
        self.fbos[p.name][self._parity].use()
        for unit, v in enumerate(p.samplers):
            self._tex(v).use(location=unit)
        prog, vao = self.gpu.program(p.source)
        self._set_uniforms(prog, p, p.name)
        vao.render(vertices=3)
        if p.tiles is not None:  # again over the unsure tiles, with the full path
            prog, vao = self.gpu.program(p.border_source, p.tile_vertex)
            self._set_uniforms(prog, p, p.name + ":border")
            w, h = p.tiles.size
            vao.render(vertices=6, instances=w * h)

    def _set_uniforms(self, prog, p: Pass, key: str) -> None:
        for unit in range(len(p.samplers)):
            self._set(prog, key, f"t{unit}", unit)
        self._set(prog, key, "fg_size", (float(p.size[0]), float(p.size[1])))
        for m in p.members:
            values = m.stage.values(self.params[m.node])
            for u in m.stage.uniforms:
                self._set(prog, key, uniform_name(m, u.name), values[u.name])

    def _set(self, prog, pass_name: str, name: str, value: Any) -> None:
        key = (pass_name, name)
        if isinstance(value, np.ndarray):
            value = tuple(value.tolist())
        if self._uniform_cache.get(key) == value:
            return
        self._uniform_cache[key] = value
        member = prog.get(name, None)
        if member is None:  # optimised away by the GLSL compiler
            return
        if member.array_length > 1:
            data = np.zeros(member.array_length, np.float32)
            data[: len(value)] = value[: member.array_length]
            member.write(data.tobytes())
        else:
            member.value = value

    def _sink(self, step: SinkStep, index: int, frames: dict[str, np.ndarray]) -> None:
        if not step.tap and step.node not in self.sinks:  # a file sink this live run does not record
            return
        arrays = {port: to_uint8(self._read_back(v, frames)) for port, v in step.inputs.items()}
        if step.tap:
            self.tap_frames[step.tap] = arrays["in"]
            return
        try:
            self.sinks[step.node].write(arrays, index)
        except NodeError as exc:
            exc.node = exc.node or step.node
            raise

    def _run_cpu(self, step: CpuStep, frames: dict[str, np.ndarray]) -> None:
        ref = step.ref
        inputs = []
        for v in ref.inputs:
            a = self._read_back(v, frames)
            inputs.append(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32))
        try:
            out = np.asarray(ref.stage.run(self.params[ref.node], inputs), dtype=np.float32)
        except NodeError as exc:
            exc.node = exc.node or ref.node
            raise
        w, h = ref.out.size
        want = (h, w) if ref.out.type == "mask" else (h, w, 4)
        if out.shape != want:
            raise NodeError(f"produced an array of shape {out.shape}, expected {want}", node=ref.node)
        self.gpu.write(self.textures[ref.out.slot], to_uint8(out))

    def _read_back(self, v, frames: dict[str, np.ndarray]) -> np.ndarray:
        if v.dtype == "src":  # a source straight into a sink: its frame is still on the CPU
            return frames[v.node]
        return self.gpu.read(self._tex(v), v.dtype)

    # ---- state (GpuStage.feedback) ---------------------------------------------------------
    def _tex(self, v, parity: int | None = None):
        """The texture holding value v; a state's pair is ping-ponged by frame parity."""
        if not v.state:
            return self.textures[v.slot]
        pair = self.states[v.node][1]
        parity = self._parity if parity is None else parity
        return pair[parity] if v.state == "out" else pair[1 - parity]

    def _sync_states(self) -> None:
        """Each node's state: two textures (read last frame's, write this frame's, swap), kept
        across recompiles and uniform edits while its shape stays; a new one starts fresh (-1)."""
        wanted = {node: (out.size, out.components) for node, (_, out) in self.plan.states.items()}
        for node_id in list(self.states):
            if self.states[node_id][0] != wanted.get(node_id):
                self._release_state(node_id)
        for node_id, (size, comps) in wanted.items():
            if node_id not in self.states:
                pair = [self.gpu.texture(size, comps, "f2") for _ in range(2)]
                for tex in pair:
                    fbo = self.gpu.framebuffer([tex])
                    fbo.clear(-1.0, -1.0, -1.0, -1.0)
                    self.gpu.release_framebuffer(fbo)
                self.states[node_id] = ((size, comps), pair)

    def _release_state(self, node_id: str) -> None:
        for tex in self.states.pop(node_id)[1]:
            self.gpu.release_texture(tex)

    # ---- timing --------------------------------------------------------------------------
    def node_ms(self) -> dict[str, float]:
        """Each node's time in the last frame; a fused pass is split by its members' cost."""
        out: dict[str, float] = {}
        for step in self.plan.steps:
            ms = self.timings[step.name].ms
            if isinstance(step, Pass):
                total = sum(m.stage.cost for m in step.members)
                for m in step.members:
                    out[m.node] = out.get(m.node, 0.0) + ms * m.stage.cost / total
            else:
                for n in step.nodes:
                    out[n] = out.get(n, 0.0) + ms
        if self.audio:
            out.update(self.audio.node_ms(self.fps))
        return out
