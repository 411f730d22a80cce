"""Live mode: the engine on its own thread, latest frame wins, the UI never waits on it.

The worker owns the engine and its GL context (a standalone EGL context made on that thread).
Frames are paced by the sources' clock: frame i is due at start + i / fps; when the pipeline
is slower, the frames it could not reach are dropped (counted), never queued, so latency
stays one frame. Finite files loop. Edits arrive as engine messages, applied between frames.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.compiler import describe
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.errors import FrameTimeout, GraphInvalid
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.output_paths import describe_outputs
from fusegraph.runtime.plan import Pass
from fusegraph.runtime.thread_priority import lower_this_thread

PROFILE_EVERY = 4  # per-node times measured on one frame in this many (their waits slow a frame)
KEEPING_UP = 30  # frames in a row without a drop before the sources' readers wait for gaps
FRAME_LIMIT_S = 3.0  # a frame whose GPU work takes longer is a runaway shader (see _run)
SMOOTH = 0.45  # weight of the newest timed frame in the smoothed per-node times
HISTORY = 30  # timed frames kept for the frame-time plot (the last 120 frames)


@dataclass
class LiveStats:
    fps: float = 0.0
    frame_ms: float = 0.0
    node_ms: dict[str, float] = field(default_factory=dict)
    passes: list[tuple[str, list[str], float]] = field(default_factory=list)  # name, members, ms
    history: list[dict[str, float]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    frame: int = 0
    plan_text: str = ""
    failure: str = ""  # why the runner stopped, if it did
    sound: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> blocks lost (over/underruns)
    levels: dict[str, float] = field(default_factory=dict)  # node -> level of its sound, dBFS
    fixes: dict[str, tuple[str, dict]] = field(default_factory=dict)  # "node.port" -> node to insert there
    restarts: int = 0  # times the engine was restarted after a runaway frame
    restart_reason: str = ""  # the last one: which node, and what became of it
    frames: int = 0  # frames processed since the run started
    ages: dict[str, int] = field(default_factory=dict)  # node run beside the frame -> its output's age, frames
    async_ms: dict[str, float] = field(default_factory=dict)  # such a node -> ms of its last run on its thread
    held_back: int = 0  # frames the picture is held back to match a mask (sync: delay_video)
    timed: bool = False  # this frame's per-node times were measured (one in PROFILE_EVERY)


class LiveRunner:
    def __init__(self, graph: Graph, search_dirs: tuple[str, ...] = (), preview_width: int = 480,
                 nice: int = 0, frame_limit: float = FRAME_LIMIT_S, record: frozenset[str] = frozenset()):
        """record: the file sinks to write (a live run writes no other file: runtime/outputs.py).
        nice: the worker's niceness (Linux; the GL driver's threads made from it inherit it),
        so a UI sharing the cores with software GL stays responsive. frame_limit: seconds a
        frame's GPU work may take; longer, and the engine is restarted with the nodes whose
        shaders were running bypassed (their input passes through) until they are edited."""
        self.graph = graph
        self.record = frozenset(record)
        self.frame_limit = frame_limit
        self._runaway: dict[str, str] = {}  # node -> why it is bypassed (a frame that never ended)
        self._restarts = (0, "")
        self.nice = nice
        self.yield_s = 0.0  # a pause after each frame (a slower pipeline, e.g. in tests)
        self.search_dirs = search_dirs
        self.preview_width = preview_width
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared: pause between frames
        self._in_frame = threading.Event()  # set while the engine works on a frame
        self._keeping_up = 0  # frames in a row made without dropping one
        self._go.set()
        self._held = threading.Event()  # set while paused
        self._lock = threading.Lock()
        self._stats = LiveStats()
        self._history: deque = deque(maxlen=HISTORY)
        self._plan_text: tuple = (None, None, "")  # (plan, audio path, their text)
        self._preview: tuple[np.ndarray | None, int] = (None, -1)
        self._tap: str | None = None
        self._pending: list[tuple] = []  # edits made before the engine exists
        self.frame_listeners: list = []  # called with each frame's LiveStats on the engine's thread (keep it short)

    # ---- control (UI thread) -----------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._stats = LiveStats()
        self._thread = threading.Thread(target=self._run, name="fusegraph-live", daemon=True)
        self._thread.start()

    def pause(self, on: bool = True, timeout: float = 30.0) -> bool:
        """Hold the run between frames, its engine and sources open (on), or go on. Pausing
        returns once the frame in hand is done (False if it was not within `timeout`)."""
        if not on:
            self._go.set()
            return True
        self._go.clear()
        return self._held.wait(timeout) if self.running else True

    def stop(self) -> None:
        self._go.set()
        self._stop.set()
        while self._thread is not None:  # a restart may swap the thread while we wait
            thread = self._thread
            thread.join()
            if self._thread is thread:
                self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def in_frame(self) -> bool:
        """The engine is working on a frame now (the window draws between frames when it can:
        editor/frame_pacer.py)."""
        return self._in_frame.is_set()

    def in_gap(self) -> bool:
        """The sources' readers may read ahead now (runtime/frames.py): between frames, or any
        time while the engine drops frames (then no gap comes between them)."""
        return not self._in_frame.is_set() or self._keeping_up < KEEPING_UP

    def set_param(self, node_id: str, name: str, value) -> None:
        """A value validated by the node's Params model (the document's set_param did)."""
        self._runaway.pop(node_id, None)  # an edit gives a node that ran away another try
        self._send("set_param", node_id, name, value)

    def set_graph(self, graph: Graph) -> None:
        self.graph = graph
        self._send("set_graph", graph)

    def set_record(self, nodes) -> None:
        """Record these file sinks from now on; one no longer recorded is finished (published)."""
        self.record = frozenset(nodes)
        self._send("set_record", self.record)

    def set_preview(self, node_id: str | None) -> None:
        """Show this node's (first) output in the preview: any node, not only sinks."""
        node = self.graph.node(node_id) if node_id else None
        if node is None:
            self._tap = None
        else:
            from fusegraph.nodes import REGISTRY

            spec = REGISTRY[node.type]
            port = spec.outputs[0].name if spec.outputs else (spec.inputs[0].name if spec.inputs else None)
            if spec.outputs:
                self._tap = f"{node_id}.{port}"
            else:  # a sink: show what flows into it
                feed = next((l for l in self.graph.links if l.dst_node == node_id), None)
                self._tap = feed.src if feed else None
        self._send("set_taps", (self._tap,) if self._tap else ())

    def preview(self) -> tuple[np.ndarray | None, int]:
        with self._lock:
            return self._preview

    def stats(self) -> LiveStats:
        with self._lock:
            return self._stats

    def _send(self, method: str, *args) -> None:
        """Call one of the engine's edit methods (queued there, applied between frames)."""
        with self._lock:
            engine = self._engine
            if engine is None:
                self._pending.append((method, args))
                return
        getattr(engine, method)(*args)

    # ---- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        if self.nice:
            lower_this_thread(self.nice)  # Linux; elsewhere, or not allowed: normal priority
        try:
            engine = Engine(self.graph, live=True, profile=True, search_dirs=self.search_dirs,
                            frame_limit=self.frame_limit, bypass=tuple(self._runaway), record=self.record)
            engine.taps = (self._tap,) if self._tap else ()
            engine.reader_gap = self.in_gap
            engine.profile_every = PROFILE_EVERY
            engine.open()
        except (GraphInvalid, NodeError) as exc:
            self._fail(str(exc), exc)
            return
        with self._lock:
            self._engine = engine
            for method, args in self._pending:
                getattr(engine, method)(*args)
            self._pending.clear()
        runaway = None
        try:
            self._loop(engine)
        except FrameTimeout as exc:
            runaway = exc
        except (GraphInvalid, NodeError) as exc:
            self._fail(str(exc), exc)
        except Exception as exc:  # a bug: say so in the UI rather than die silently
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._engine = None
            try:
                engine.close(ok=True)  # sources and sinks; a stuck context's GL objects are left
            except NodeError as exc:
                self._fail(str(exc), exc)
        if runaway is not None:
            self._restart(runaway)

    def _restart(self, exc: FrameTimeout) -> None:
        """A frame never finished: this thread's GL context is stuck with it for good (moderngl
        would wait holding the GIL). The engine is left (its context is never touched again;
        fusegraph's own loop budget, nodes/shader.py, ends the runaway draw in time) and a new
        thread starts a new engine with those nodes bypassed until the user edits them."""
        why = (f"a frame took longer than {self.frame_limit:g} s (a shader that never ends?); bypassed (its "
               f"input passed through) until edited; the engine was restarted")
        for node in exc.nodes:
            self._runaway[node] = why
        count = self._restarts[0] + 1
        self._restarts = (count, f"{', '.join(exc.nodes)}: {why}")
        if self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._run, name=f"fusegraph-live-{count}", daemon=True)
        self._thread.start()

    def _fail(self, message: str, exc: Exception | None = None) -> None:
        """Stop with `message`; a node's own failure (no device, a missing file) marks it too."""
        errors, fixes = dict(self._stats.errors), {}
        if isinstance(exc, NodeError) and exc.node:
            errors[exc.node] = exc.message
            if exc.fix and exc.port:
                fixes[f"{exc.node}.{exc.port}"] = exc.fix
        with self._lock:
            self._stats = LiveStats(**{**self._stats.__dict__, "failure": message, "errors": errors,
                                       "fixes": fixes})

    def _loop(self, engine: Engine) -> None:
        start = time.perf_counter()
        last = -1
        dropped = 0
        fps_clock: deque = deque(maxlen=30)
        self._keeping_up = 0
        while not self._stop.is_set():
            fps = engine.fps or 30.0
            due = int((time.perf_counter() - start) * fps)
            if due <= last:  # ahead of the source: wait for its next frame
                time.sleep(max(0.0, (last + 1) / fps - (time.perf_counter() - start)))
                continue
            dropped += max(0, due - last - 1)
            self._keeping_up = self._keeping_up + 1 if due == last + 1 else 0
            last = due
            count = engine.frame_count()
            index = due % count if count else due  # files loop in the editor
            t = time.perf_counter()
            self._in_frame.set()
            try:
                if not engine.process(index):
                    start, last = time.perf_counter(), -1  # a file shorter than it said: start over
                    continue
                held_back = (index - engine.shown) % (count or 1 << 30)  # delay_video: an earlier frame, its mask's
                index = engine.shown
                frame_ms = (time.perf_counter() - t) * 1000.0
                fps_clock.append(time.perf_counter())
                self._publish(engine, index, frame_ms, dropped, fps_clock, held_back)
            finally:
                self._in_frame.clear()
            if self.yield_s > 0:
                time.sleep(self.yield_s)
            if not self._go.is_set():  # paused: the clock stops with it (no frames counted dropped)
                paused = time.perf_counter()
                self._held.set()
                self._go.wait()
                self._held.clear()
                start += time.perf_counter() - paused

    def _publish(self, engine: Engine, index: int, frame_ms: float, dropped: int, clock: deque,
                 held_back: int = 0) -> None:
        old = self._stats.node_ms
        if engine.timed or not old:
            node_ms = engine.node_ms()
            smooth = {n: (1 - SMOOTH) * old.get(n, ms) + SMOOTH * ms for n, ms in node_ms.items()}
            self._history.append(node_ms)
        else:  # the per-node times of the last timed frame stand
            smooth = old
        passes = [(s.name, s.nodes, engine.timings[s.name].ms) for s in engine.plan.steps if isinstance(s, Pass)]
        fps = (len(clock) - 1) / (clock[-1] - clock[0]) if len(clock) > 1 and clock[-1] > clock[0] else 0.0
        frame = engine.tap_frames.get(self._tap) if self._tap else None
        preview = self._preview_image(frame) if frame is not None else None
        stats = LiveStats(fps=fps, frame_ms=frame_ms, node_ms=smooth, passes=passes, history=list(self._history),
                          errors={**engine.node_errors, **(engine.audio.errors if engine.audio else {}),
                                  **self._runaway},
                          restarts=self._restarts[0], restart_reason=self._restarts[1],
                          dropped=dropped, frame=index, frames=engine.frames_done, ages=dict(engine.ages),
                          async_ms=dict(engine.async_ms), held_back=held_back, timed=engine.timed,
                          plan_text=self._describe(engine),
                          sound=engine.audio.counters() if engine.audio else {},
                          levels=dict(engine.audio.levels) if engine.audio else {})
        with self._lock:
            self._stats = stats
            if preview is not None or self._tap is None or self._tap in engine.taps:  # none: a failed branch
                self._preview = (preview, index)
        self._in_frame.clear()  # before the listeners: the window they wake finds the engine between frames
        for listener in self.frame_listeners:
            listener(stats)

    def _describe(self, engine: Engine) -> str:
        """The plan as text, made again only when the plan or the audio path is a new one."""
        plan, audio, text = self._plan_text
        if plan is not engine.plan or audio is not engine.audio:
            parts = (describe(engine.plan), engine.audio.describe() if engine.audio else "",
                     describe_outputs(engine.graph))
            text = "\n".join(filter(None, parts))
            self._plan_text = (engine.plan, engine.audio, text)
        return text

    def _preview_image(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim == 2:  # a mask shows grey
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGBA)
        h, w = frame.shape[:2]
        if w > self.preview_width:
            frame = cv2.resize(frame, (self.preview_width, max(1, round(h * self.preview_width / w))),
                               interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame)
