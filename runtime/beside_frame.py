"""The engine's CPU stages that run beside the frame, live (the neural network's inference).

A CPU stage declares `live=` (nodes/contract/stages.py; neural_net: its `sync` param). Live,
the engine reads its input back as usual and hands it to the stage's thread (AsyncStage, the
newest input wins), then:

- `latest`: the output is taken when a later step first reads it, so the work between (the
  blur) gives the stage time to answer this very frame; if it has not, the frame waits for it up
  to about one more run of the stage (at most 10 ms), then goes on with the newest output there is. The output's age in frames is kept per node (`ages`).
- `delay_video`: the steps the stage needs run on the newest frame (`run_ahead`), then the whole
  plan on the newest frame the stage has answered, its sources kept meanwhile: each picture is
  paired with its own output, equal to the offline frame of that index, at the cost of latency.

A recompile closes the threads: outputs of the old plan's stages do not fit the new one. Offline
runs never get here: synchronous and exact.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.async_stage import AsyncStage, Output
from fusegraph.runtime.plan import STEP_KINDS, CpuStep, Upload

if TYPE_CHECKING:
    from fusegraph.runtime.engine import Engine

HELD_FRAMES = 8  # delay_video: source frames kept at most while the stage catches up
FRESH_WAIT_S = 0.010  # latest: the longest a frame waits for its own output


class BesideTheFrame:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.stages: dict[str, AsyncStage] = {}  # by step name
        self.taken: dict[str, Output] = {}  # delay_video: the output each stage shows this frame
        self.deferred: dict = {}  # latest: value -> the step making it, its output not taken yet
        self.held: dict[int, tuple] = {}  # delay_video: seq -> (index, source frames) still awaited
        self.ages: dict[str, int] = {}  # node -> frames between its output's input and the frame shown
        self.async_ms: dict[str, float] = {}  # node -> ms of its last run on its own thread
        self._head: tuple = (None, [])  # ((plan, delay_video steps), the steps they need)

    def mode(self, step) -> str | None:
        """'latest' or 'delay_video' for a CPU stage run on its own thread (live), else None."""
        e = self.engine
        if not e.live or not isinstance(step, CpuStep) or step.ref.stage.live is None:
            return None
        mode = step.ref.stage.live(e.params[step.ref.node])
        return mode if mode in ("latest", "delay_video") else None

    def stage(self, step: CpuStep) -> AsyncStage:
        worker = self.stages.get(step.name)
        if worker is None:
            worker = self.stages[step.name] = AsyncStage(step.name, step.ref.stage.run)
        return worker

    def close(self) -> None:
        for worker in self.stages.values():
            worker.close()
        self.stages, self.taken, self.deferred, self.held, self.ages = {}, {}, {}, {}, {}
        self._head = (None, [])

    # ---- one frame -----------------------------------------------------------------------
    def start_frame(self, index: int, frames: dict, read_ms: dict) -> tuple[int, dict, list]:
        """Before the frame's steps: (the index to show, its source frames, the steps delay_video
        ran ahead on frame `index`)."""
        self.taken, self.deferred = {}, {}
        delayed = [s for s in self.engine.plan.steps if self.mode(s) == "delay_video"]
        if not delayed:
            self.held = {}
            return index, frames, []
        shown, frames = self.held[self._run_ahead(delayed, index, frames, read_ms)]
        return shown, frames, self.head()

    def head(self) -> list:
        """The steps the delay_video stages need (their inputs' steps, transitively) and them."""
        plan = self.engine.plan
        wanted = {s for s in plan.steps if self.mode(s) == "delay_video"}  # (an edit may change it)
        key = (plan, frozenset(s.name for s in wanted))
        if self._head[0] != key:
            writer = {v: s for s in plan.steps for v in s.writes()}
            todo = list(wanted)
            while todo:
                for v in todo.pop().reads():
                    dep = writer.get(v)
                    if dep is not None and dep not in wanted:
                        wanted.add(dep)
                        todo.append(dep)
            self._head = (key, [s for s in plan.steps if s in wanted])
        return self._head[1]

    def _run_ahead(self, delayed: list[CpuStep], index: int, frames: dict, read_ms: dict) -> int:
        """delay_video: give the stages frame `index` (only the steps they need run), then choose
        the frame to show: the newest one the stages have an output for (waiting for the first).
        Returns its seq (a key of `held`)."""
        e = self.engine
        e._index = index
        seq = 0
        for step in self.head():
            t = time.perf_counter()
            if step in delayed:
                seq = self.stage(step).submit(index, e.params[step.ref.node], e._cpu_inputs(step, frames))
            else:
                getattr(e, STEP_KINDS[type(step)].execute)(step, index, frames)
            e._record(step, t, extra_ms=read_ms.get(step.node, 0.0) if isinstance(step, Upload) else 0.0)
        self.held[seq] = (index, frames)  # the stages were given it together: one seq
        for step in delayed:
            worker = self.stage(step)
            out = worker.latest()
            if out is None or out.seq not in self.held:  # the first frames: wait for one
                out = worker.latest(at_least=min(self.held))
            self.taken[step.name] = out
        shown = min(o.seq for o in self.taken.values())  # several stages: the oldest (exact for one)
        if shown not in self.held:  # cannot be, short of a bug: show the newest frame
            shown = seq
        self.held = {q: f for q, f in self.held.items() if q >= shown}
        while len(self.held) > HELD_FRAMES:  # a stage far behind: frames it will not get to go
            self.held.pop(next(q for q in sorted(self.held) if q != shown))
        return shown

    def run(self, step: CpuStep, frames: dict) -> None:
        """The step of a stage beside the frame: delay_video uploads the output chosen for the
        frame shown; latest hands the stage this frame's input and defers taking its output."""
        if step.name in self.taken:
            self._take(step, self.taken[step.name])
            return
        e = self.engine
        self.stage(step).submit(e._index, e.params[step.ref.node], e._cpu_inputs(step, frames))
        self.deferred[step.ref.out] = step

    def before(self, step) -> None:
        """Before `step`: take the outputs of stages beside the frame that it reads."""
        e = self.engine
        for v in step.reads():
            cpu = self.deferred.pop(v, None)
            if cpu is None:
                continue
            t = time.perf_counter()
            worker = self.stages[cpu.name]
            # this frame's own output when it is due within about one run of the stage (the
            # frame's GPU work was only queued meanwhile); else the newest; the first frame waits
            out = worker.latest(at_least=worker.seq, timeout=min(FRESH_WAIT_S, 1.5 * worker.last_ms / 1000.0))
            out = out or worker.latest(at_least=worker.seq)
            try:
                self._take(cpu, out)
            except NodeError as exc:  # live: the node is marked, the frame goes on
                e.node_errors[cpu.ref.node] = exc.message
            if e.timed or not e.profile:
                e.timings[cpu.name].ms += (time.perf_counter() - t) * 1000.0

    def _take(self, step: CpuStep, out: Output) -> None:
        e, ref = self.engine, step.ref
        if out.error is not None:
            if isinstance(out.error, NodeError):
                raise NodeError(out.error.message, node=out.error.node or ref.node)
            raise out.error
        age = e._index - out.index
        if age < 0:  # a looping file started again since
            age += e.frame_count() or 0
        self.ages[ref.node] = max(0, age)
        self.async_ms[ref.node] = self.stages[step.name].last_ms
        e.gl.write(ref.out, e._checked(step, out.value))
        e.node_errors.pop(ref.node, None)
