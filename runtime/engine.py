"""The executor: opens sources and sinks, compiles, and runs the plan frame by frame.

Offline mode processes every frame in order. Parameter edits arrive as messages applied
between frames: a change that keeps the plan's structure is a uniform update; one that
changes it (a size, a stage) recompiles without reopening the sources.
"""
from __future__ import annotations

import queue
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import TYPES, EndOfStream, NodeError, OpenContext, Sink, Source, SourceInfo
from fusegraph.runtime.audio import AudioPath, close_sinks
from fusegraph.runtime.beside_frame import BesideTheFrame
from fusegraph.runtime.codegen import own_glsl_error
from fusegraph.runtime.compiler import closure, compile_graph, live_nodes
from fusegraph.runtime.errors import FrameTimeout, ShaderCompileError
from fusegraph.runtime.frames import FrameReader, LiveFrameReader
from fusegraph.runtime.gpu import Gpu, ShaderError
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.outputs import is_file_sink
from fusegraph.runtime.plan import STEP_KINDS, CpuStep, Pass, Plan, SinkStep, Upload
from fusegraph.runtime.plan_gl import PlanGL


@dataclass
class StepTiming:
    name: str
    nodes: list[str]
    ms: float = 0.0


SHADER_ERROR = "GLSL error:"  # how a node's compile error begins (codegen.own_glsl_error; cleared when it compiles)


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Sinks get 8-bit frames; a float texture (a CPU stage's result) is rounded to them."""
    if a.dtype == np.uint8:
        return a
    return (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _timed(fn, *args) -> tuple:
    """fn(*args) and the ms it took (on a worker thread)."""
    t = time.perf_counter()
    return fn(*args), (time.perf_counter() - t) * 1000.0


class Engine:
    def __init__(self, graph: Graph, *, gpu: Gpu | None = None, fuse: bool = True,
                 profile: bool = False, live: bool = False, search_dirs: tuple[str, ...] = (),
                 frame_limit: float | None = None, bypass: tuple[str, ...] = (),
                 record: frozenset[str] | None = None):
        """frame_limit: seconds a frame's GPU work may take before the run gives up on it
        (FrameTimeout: a runaway shader); None waits as long as it takes. bypass: nodes that
        pass their input through (live: a node whose shader ran away). record: the file sinks
        to open (None: every one; the editor's live run records only those the user switched
        on, runtime/outputs.py)."""
        self.graph = graph
        self.record = record
        self.frame_limit = frame_limit
        self.bypass: set[str] = set(bypass)
        self.good_params: dict[str, Any] = {}  # live: each node's last params whose GLSL compiled
        self._unsettled: list[Pass] = []  # passes given to the GPU since it last finished its work
        self._queries: list = []
        self._index = 0
        self.gpu = gpu or Gpu()
        self._own_gpu = gpu is None
        self.fuse, self.profile, self.live = fuse, profile, live
        # profile: time the steps of one frame in this many (live: the wait after each step that
        # synchronised timing needs costs ~18% of a frame on llvmpipe); `timed`: the last frame was
        self.profile_every = 1
        self.timed = False
        self.search_dirs = search_dirs  # input files not found from the CWD are looked for here
        self.params = {n.id: n.params for n in graph.nodes}
        self.sources: dict[str, Source] = {}
        self.readers: dict[str, FrameReader | LiveFrameReader] = {}  # per source: RGBA frames, read ahead
        self.reader_gap: Callable[[], bool] | None = None  # live: when the readers may read ahead
        self.sinks: dict[str, Sink] = {}
        self.audio: AudioPath | None = None  # the sound beside the frames (runtime/audio.py)
        self._audio_key: Any = None
        self.plan: Plan | None = None
        self.gl = PlanGL(self.gpu)  # the plan's textures, framebuffers, states, constants; draws passes
        self.gl.specialise = not live  # live: a slider drag must not compile a program per value
        self.timings: dict[str, StepTiming] = {}
        self.trace: list[tuple[str, float, float]] = []  # (row, start s, duration s)
        self.messages: queue.Queue = queue.Queue()
        self.taps: tuple[str, ...] = ()
        self.tap_frames: dict[str, np.ndarray] = {}  # endpoint -> its last frame (RGBA, or HxW for a mask)
        self.node_errors: dict[str, str] = {}  # live runs: node -> why it failed (it holds its last output)
        self.cut: set[str] = set()  # live runs: sources that failed to open and what they feed (not run)
        self._opened: dict[str, Any] = {}  # node -> what its source or sink was opened with
        self._last_frames: dict[str, np.ndarray] = {}
        self.beside = BesideTheFrame(self)  # live: CPU stages run on threads of their own
        self.shown = 0  # the frame index the last process() showed (delay_video: an earlier one)
        # offline, unprofiled: a CPU stage (a network) runs on a worker while the GPU draws the
        # passes that do not need its result; its result is uploaded before the first step that does
        self._cpu_pool: ThreadPoolExecutor | None = None
        self._running: dict = {}  # CPU stage output value -> (step, future of (result, ms))
        self._values: dict[int, tuple] = {}
        self.frames_done = 0
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
        if self.profile and not self.live:  # (a live run would grow its trace for ever)
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
        if self.live and source.read_ahead:
            self.readers[node_id] = LiveFrameReader(node_id, source, gap=self.reader_gap)
        else:  # offline: the next frame, in order; a live camera: its newest frame, when asked
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
    def states(self) -> dict:
        """Each stateful node's (shape, [two textures]) (runtime/plan_gl.py)."""
        return self.gl.states

    @property
    def constants(self) -> dict:
        """Constant textures by (node, Constant.key)."""
        return self.gl.constants

    @property
    def textures(self) -> list:
        """The pool's textures, by slot."""
        return self.gl.textures

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
        self.beside.close()  # outputs of the old plan's stages do not fit the new one
        self.gl.release_targets()
        failed: set[str] = set()
        taps = tuple(t for t in self.taps if t.split(".", 1)[0] not in self.cut)
        while True:
            graph = self.graph.model_copy(update={  # without the branches of sources that failed (live)
                "nodes": [n.model_copy(update={"params": self.params[n.id]}) for n in self.graph.nodes
                          if n.id not in self.cut],
                "links": [l for l in self.graph.links if l.src_node not in self.cut and l.dst_node not in self.cut]})
            plan = compile_graph(graph, self.source_infos, fuse=self.fuse, taps=taps,
                                 bypass=frozenset(self.bypass))
            try:
                self._programs(plan)
                break
            except ShaderCompileError as exc:
                if not self.live or exc.node in self.bypass:
                    raise
                # live: the node shows the error; the graph runs on with the node's last good
                # program, or with its input passed through when it never had one
                self.node_errors[exc.node] = exc.message
                failed.add(exc.node)
                good = self.good_params.get(exc.node)
                if good is not None and good != self.params[exc.node]:
                    self.params[exc.node] = good
                else:
                    self.bypass.add(exc.node)
        self.plan = plan
        for node_id in plan.nodes - self.bypass - failed:
            if self.node_errors.get(node_id, "").startswith(SHADER_ERROR):
                self.node_errors.pop(node_id)
            self.good_params[node_id] = self.params[node_id]
        self.gl.build(plan)
        self.timings = {s.name: StepTiming(s.name, s.nodes) for s in self.plan.steps}
        self._values = {}  # id(stage) -> (params, stage, its uniform values): _stage_values

    def _programs(self, plan: Plan) -> None:
        """Compile every pass's program (cached by source); an error in GLSL a node carries or
        makes is that node's ShaderCompileError, with its author's line numbers."""
        for p in plan.passes:
            try:
                self.gpu.program(p.source, *([p.sure_vertex] if p.tiles is not None else []))
            except ShaderError as exc:
                found = own_glsl_error(exc.log, p.spans)
                if found is None:
                    raise  # in fusegraph's own GLSL: a bug, with the numbered source
                raise ShaderCompileError(found[1], node=found[0]) from None
            if p.tiles is not None:
                self.gpu.program(p.border_source, p.border_vertex)

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
        if self._cpu_pool is not None:
            self._cpu_pool.shutdown(wait=True)
            self._cpu_pool, self._running = None, {}
        for node_id in list(self.sources):
            self._close_source(node_id)
        self.beside.close()
        self.sinks = {}
        self.gl.release()
        if self._own_gpu:
            self.gpu.release()
        if errors:
            raise errors[0]

    # ---- edits between frames (thread-safe: queued, applied before the next frame) -----------
    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """One param's new value, already validated by the node's Params model (the document
        did: values are checked once). A uniform update when the node's declaration says the
        structure stays (NodeSpec.structure); else a recompile."""
        self.messages.put(("param", node_id, name, value))

    def set_graph(self, graph: Graph) -> None:
        """A structural edit: recompile, keeping open what did not change."""
        self.messages.put(("graph", graph))

    def set_record(self, record: frozenset[str] | None) -> None:
        """The file sinks to write from now on (None: every one); one no longer recorded is
        finished (published)."""
        self.messages.put(("record", record))

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
                new = old.model_copy(update={name: value})
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
                if node_id in self.bypass:  # an edit gives a bypassed node another try
                    self.bypass.discard(node_id)
                    dirty = True
                elif not REGISTRY[self.graph.node(node_id).type].is_uniform_edit(old, new):
                    dirty = True
        if dirty:
            self._sync()

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
        self.timed = self.profile and self.frames_done % self.profile_every == 0
        # delay_video: the frame held back to the one the network's newest mask was made from (the
        # steps the network needs ran ahead on this frame: `ahead`, their time adds up)
        index, frames, ahead = self.beside.start_frame(index, frames, read_ms)
        if ahead:
            read_ms = {}
        self._index = self.shown = index
        self._running.clear()  # a frame that failed part way leaves nothing for this one
        for step in self.plan.steps:
            if self.beside.deferred:  # live: the network's mask, taken as late as it can be
                self.beside.before(step)
            if self._running:  # offline: the network's result, from its worker
                self._collect(step.reads())
            t = time.perf_counter()
            getattr(self, STEP_KINDS[type(step)].execute)(step, index, frames)
            if self.timed and not self.gpu.timers_trustworthy:
                self._settle()  # synchronised timing: the step's GPU work is inside its interval
            self._record(step, t, extra_ms=read_ms.get(step.node, 0.0) if isinstance(step, Upload) else 0.0,
                         add=step in ahead)
        self._collect()
        self._settle()
        queries, self._queries = self._queries, []
        for step, query in queries:  # GL timer queries, where the driver's are real time
            self.timings[step.name].ms = query.elapsed / 1e6
            query.release()
        if self.audio and not self.live:  # the sound up to the end of this frame
            self.audio.pump_to((index + 1) / self.fps)
        self.frames_done += 1
        self.gl.parity ^= 1  # this frame's states become the next frame's @prev
        return True

    @property
    def ages(self) -> dict[str, int]:
        """Live: node run beside the frame -> frames between its output's input and the frame shown."""
        return self.beside.ages

    @property
    def async_ms(self) -> dict[str, float]:
        """Live: node run beside the frame -> ms of its last run on its own thread."""
        return self.beside.async_ms

    def _settle(self) -> None:
        """Before the CPU reads what the GPU made, and at the end of a frame: wait (the GIL
        released) until the passes given since the last time are done, up to frame_limit."""
        passes, self._unsettled = self._unsettled, []
        # only GLSL a node brings itself can run away: fusegraph's own shaders are bounded, so a
        # frame made of them alone is waited for however slow the machine is
        own = list(dict.fromkeys(m.node for p in passes for m in p.members
                                 if not m.stage.source.is_file and m.node not in self.bypass))
        if not passes or self.gpu.settle(self.frame_limit if own else None):
            return
        raise FrameTimeout(f"the GPU did not finish a frame in {self.frame_limit:g} s (a shader that never "
                           f"ends?) in {', '.join(own)}", own)

    def _run_nothing(self, step, index: int, frames: dict[str, np.ndarray]) -> None:
        """A step that is only there to be read (a node's state)."""

    def _run_upload(self, step: Upload, index: int, frames: dict[str, np.ndarray]) -> None:
        self._upload(step, frames[step.node])

    def _run_pass(self, step: Pass, index: int, frames: dict[str, np.ndarray]) -> None:
        self._unsettled.append(step)
        if self.timed and self.gpu.timers_trustworthy:
            query = self.gpu.ctx.query(time=True)
            with query:
                self._draw(step)
            self._queries.append((step, query))
        else:
            self._draw(step)
        if self.frame_limit is not None and any(not m.stage.source.is_file and m.node not in self.bypass
                                                for m in step.members):
            # a node's own GLSL may never end: wait for it here, before the next pass, whose
            # draw the driver may make wait for this one (holding the GIL, without a limit)
            self._settle()

    def _run_tolerant(self, step: CpuStep | SinkStep, index: int, frames: dict[str, np.ndarray]) -> None:
        """Run a CPU stage or a sink; live, a failure marks the node and the rest keeps running
        (a CPU stage's output texture holds its last good value). A stuck GPU is not tolerated."""
        self._tolerate(step, lambda: self._run_cpu(step, frames) if isinstance(step, CpuStep)
                       else self._sink(step, index, frames))

    def _tolerate(self, step: CpuStep | SinkStep, run) -> None:
        node = step.ref.node if isinstance(step, CpuStep) else step.node
        try:
            run()
            if not getattr(step, "tap", ""):  # a tap reads another node's value: not its success
                self.node_errors.pop(node, None)
        except FrameTimeout:
            raise
        except NodeError as exc:
            exc.node = exc.node or node
            if not self.live:
                raise
            self.node_errors[node] = exc.message

    def _record(self, step, start: float, extra_ms: float = 0.0, add: bool = False) -> None:
        """add: the step ran earlier in this frame too (delay_video's look ahead): its time adds up.
        A profiled frame that is not timed (profile_every) keeps the last timed frame's times."""
        if self.profile and not self.timed:
            return
        end = time.perf_counter()
        ms = (end - start) * 1000.0 + extra_ms
        self.timings[step.name].ms = self.timings[step.name].ms + ms if add else ms
        if self.profile and not self.live:  # (a live run would grow its trace for ever)
            self.trace.append((step.name, start - self._t0 - extra_ms / 1000.0, end - start + extra_ms / 1000.0))

    def _upload(self, step: Upload, frame: np.ndarray) -> None:
        # RGBA on the CPU (runtime/frames.py), then a plain copy: the driver's own RGB -> RGBA
        # unpacking is slower (measured at 720p: 2.4 ms for an RGB write, 1.3 + 0.3 ms this way)
        self.gpu.write(self.gl.tex(step.value), frame)

    def _draw(self, p: Pass) -> None:
        self.gl.draw(p, self._stage_values, (self._index / self.fps, self._index))

    def _stage_values(self, node: str, stage) -> dict:
        """A stage's uniform values, computed again only when its node's params change (an edit
        replaces the params object, never changes it), so unchanged uniforms cost no work a frame."""
        params = self.params[node]
        hit = self._values.get(id(stage))
        if hit is None or hit[0] is not params or hit[1] is not stage:
            hit = self._values[id(stage)] = (params, stage, stage.values(params))
        return hit[2]

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
        if self.beside.mode(step):  # live: on its own thread (runtime/beside_frame.py)
            self.beside.run(step, frames)
            return
        ref = step.ref
        params = self.params[ref.node]
        inputs = self._cpu_inputs(step, frames)
        if not (self.live or self.profile):  # overlapped with the passes that do not need it (_collect)
            if self._cpu_pool is None:
                self._cpu_pool = ThreadPoolExecutor(1, thread_name_prefix="cpu-stages")
            self._running[ref.out] = (step, self._cpu_pool.submit(_timed, ref.stage.run, params, inputs))
            return
        self._upload_cpu(step, lambda: ref.stage.run(params, inputs))

    def _collect(self, values=None) -> None:
        """Upload the results of CPU stages still running that make `values` (None: all)."""
        for v in [v for v in self._running if values is None or v in values]:
            step, future = self._running.pop(v)

            def finish(step: CpuStep = step, future: Future = future) -> None:
                out, run_ms = future.result()  # or the stage's error
                t = time.perf_counter()
                self._upload_cpu(step, lambda: out)
                self.timings[step.name].ms += run_ms + (time.perf_counter() - t) * 1000.0  # + its read-back

            self._tolerate(step, finish)

    def _upload_cpu(self, step: CpuStep, result) -> None:
        """Check the stage's result (result() gives it or raises its error) and upload it."""
        ref = step.ref
        try:
            out = result()
        except NodeError as exc:
            exc.node = exc.node or ref.node
            raise
        self.gl.write(ref.out, self._checked(step, out))

    def _cpu_inputs(self, step: CpuStep, frames: dict[str, np.ndarray]) -> list[np.ndarray]:
        inputs = []
        for v in step.ref.inputs:
            a = self._read_back(v, frames)
            inputs.append(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32))
        return inputs

    def _checked(self, step: CpuStep, out) -> np.ndarray:
        """A CPU stage's output as 8-bit, or a NodeError when it is not the shape declared."""
        ref = step.ref
        out = np.asarray(out, dtype=np.float32)
        want = TYPES[ref.out.type].numpy_shape(ref.out.size)
        if out.shape != want:
            raise NodeError(f"produced an array of shape {out.shape}, expected {want}", node=ref.node)
        return to_uint8(out)

    def _read_back(self, v, frames: dict[str, np.ndarray]) -> np.ndarray:
        if v.dtype == "src":  # a source straight into a sink: its frame is still on the CPU
            return frames[v.node]
        self._settle()  # a read-back waits for the GPU holding the GIL: wait here first, bounded
        return self.gl.read(v)

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
