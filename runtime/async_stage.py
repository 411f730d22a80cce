"""A CPU stage run beside the frame, live only (e.g. the neural network's inference).

The stage runs on a thread of its own, always on the newest input it was given: an input still
waiting when a newer one comes is replaced (never queued), so the stage's output is at most one
run behind the frames. Each output carries the index of the frame its input came from; the engine
composites with the newest output (`latest`) or holds the frame back to it (`delay_video`:
runtime/beside_frame.py). onnxruntime releases the GIL while it runs, so on two cores the inference and
the frame's other work overlap. Offline runs never use this: they run the stage in the frame.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Output:
    index: int  # the frame the input came from
    seq: int  # which submit it answers (frame indices start again when a file loops)
    value: Any = None
    error: BaseException | None = None


class AsyncStage:
    def __init__(self, name: str, run: Callable[[Any, list], Any]):
        self.name, self.run = name, run
        self._cond = threading.Condition()
        self._waiting: tuple[int, int, Any, list] | None = None  # (seq, index, params, inputs) not started
        self.running: int | None = None  # the seq being computed
        self.seq = 0  # submits so far
        self._done: Output | None = None
        self.last_ms = 0.0  # how long the last run took
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name=f"async:{name}", daemon=True)
        self._thread.start()

    def submit(self, index: int, params: Any, inputs: list) -> int:
        """Run the stage on this input next (an input still waiting is dropped); returns its seq."""
        with self._cond:
            self.seq += 1
            self._waiting = (self.seq, index, params, inputs)
            self._cond.notify_all()
            return self.seq

    def latest(self, at_least: int | None = None, timeout: float | None = None) -> Output | None:
        """The newest output; with at_least (a seq), wait for the output of that submit or a later
        one, as long as one is coming (submitted and not dropped), up to `timeout` seconds."""
        end = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            if at_least is not None:
                while not self._stop and (self._done is None or self._done.seq < at_least):
                    coming = [q for q in (self.running, self._waiting[0] if self._waiting else None)
                              if q is not None and q >= at_least]
                    left = None if end is None else end - time.perf_counter()
                    if not coming or (left is not None and left <= 0):
                        break
                    self._cond.wait(left)
            return self._done

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._waiting is None:
                    self._cond.wait()
                if self._stop:
                    return
                (seq, index, params, inputs), self._waiting = self._waiting, None
                self.running = seq
            t = time.perf_counter()
            try:
                out = Output(index, seq, self.run(params, inputs))
            except Exception as exc:  # the engine raises it in the frame that takes this output
                out = Output(index, seq, error=exc)
            with self._cond:
                self.last_ms = (time.perf_counter() - t) * 1000.0
                self.running = None
                self._done = out
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join()
