"""Run > Render...: the graph's file sinks written offline, every frame in order, through the
same Engine that `fusegraph run` uses (the live preview drops frames; a render never does), on
a thread of its own with progress, an ETA and Cancel. A cancelled or failed render publishes
nothing: the files that were there stay as they were (runtime/atomic.py).

No Dear PyGui here: the app shows `RenderJob.progress()` in a window and calls `cancel()`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.graph import Graph


@dataclass
class Progress:
    done: int = 0
    total: int | None = None
    seconds: float = 0.0
    state: str = "starting"  # -> "rendering" -> "done" | "cancelled" | "failed"
    message: str = ""

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far (None until a frame is done)."""
        if not self.done or not self.total:
            return None
        return self.seconds / self.done * (self.total - self.done)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")


class RenderJob:
    def __init__(self, graph: Graph, search_dirs: tuple[str, ...] = (), frames: int | None = None):
        """frames: at most this many (None: to the end of the shortest finite source)."""
        self.graph, self.search_dirs, self.frames = graph, search_dirs, frames
        self._progress = Progress()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fusegraph-render", daemon=True)

    def start(self) -> "RenderJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> Progress:
        self._thread.join(timeout)
        return self.progress()

    def progress(self) -> Progress:
        with self._lock:
            return Progress(**self._progress.__dict__)

    def _set(self, **kw) -> None:
        with self._lock:
            self._progress.__dict__.update(kw)

    def _run(self) -> None:
        from fusegraph.runtime.engine import Engine  # GL on this thread

        start = time.perf_counter()
        try:
            engine = Engine(self.graph, search_dirs=self.search_dirs)
            engine.open()
        except NodeError as exc:
            self._set(state="failed", message=str(exc))
            return
        except Exception as exc:  # no GL, a bug: said, not raised on a thread nobody watches
            self._set(state="failed", message=f"{type(exc).__name__}: {exc}")
            return
        total = engine.frame_count()
        if self.frames is not None:
            total = self.frames if total is None else min(total, self.frames)
        if total is None:
            engine.close(ok=False)
            self._set(state="failed", message="every source is endless (camera, looping video, pattern with "
                                              "frames 0): nothing to render to an end")
            return
        self._set(state="rendering", total=total)
        done = 0
        try:
            while done < total and not self._cancel.is_set():
                if not engine.process(done):
                    break
                done += 1
                self._set(done=done, seconds=time.perf_counter() - start)
        except Exception as exc:
            engine.close(ok=False)
            self._set(state="failed", message=f"frame {done}: {exc}")
            return
        if self._cancel.is_set():
            engine.close(ok=False)  # nothing published: the files that were there stay
            self._set(state="cancelled", message=f"cancelled after {done} of {total} frame(s); nothing written")
            return
        try:
            engine.close(ok=True)  # every output published together
        except Exception as exc:
            self._set(state="failed", message=str(exc))
            return
        self._set(state="done", seconds=time.perf_counter() - start,
                  message=f"rendered {done} frame(s) in {time.perf_counter() - start:.1f} s")
