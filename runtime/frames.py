"""Source frames ready to upload: RGBA uint8, checked, and read ahead of the engine.

Offline runs know which frame comes next, so a worker thread reads and converts frame i+1
(decoding, drawing the pattern, BGR -> RGBA: OpenCV and FFmpeg release the GIL) while the GPU
works on frame i. Live runs ask for the frame the clock says (frames the pipeline could not reach
are skipped): LiveFrameReader's thread keeps the next couple of frames decoded and converted, and
jumps to the frame asked for when it falls behind (a video decodes the frames between without
converting them). A camera is read when asked (its newest frame; a read ahead would be a stale one).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import cv2
import numpy as np

from fusegraph.nodes.contract import NodeError, Source


def to_rgba(frame: np.ndarray, node: str, size: tuple[int, int], index: int) -> np.ndarray:
    w, h = size
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[:2] != (h, w):
        raise NodeError(f"frame {index} is {frame.shape} {frame.dtype}, expected {h}x{w}x3 uint8 "
                        f"(a source may not change size while running)", node=node)
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGBA if frame.shape[2] == 4 else cv2.COLOR_BGR2RGBA)


class FrameReader:
    def __init__(self, node: str, source: Source, read_ahead: bool):
        self.node, self.source = node, source
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"read:{node}") if read_ahead else None
        self.pending: tuple[int, Future] | None = None

    def _load(self, index: int) -> np.ndarray:
        return to_rgba(self.source.read(index), self.node, self.source.info.size, index)

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as RGBA; raises EndOfStream or NodeError as the source does."""
        if self.pending is not None and self.pending[0] == index:
            future = self.pending[1]
            self.pending = None
            frame = future.result()
        else:
            self._drop_pending()
            frame = self._load(index)
        if self.pool is not None:
            self.pending = (index + 1, self.pool.submit(self._load, index + 1))
        return frame

    def _drop_pending(self) -> None:
        if self.pending is not None:
            self.pending[1].cancel()
            try:
                self.pending[1].result()  # let a running read finish before anyone else touches the source
            except BaseException:  # a frame nobody asked for: its error is not news
                pass
            self.pending = None

    def close(self) -> None:
        """Stop reading ahead (the source itself is closed by its owner)."""
        self._drop_pending()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


GAP_WAIT_S = 1.0 / 30.0  # the longest a read ahead waits for the engine's gap between frames


class LiveFrameReader:
    """Live: a thread of its own reads frames `ahead` of the last one asked for. Given `gap` (true
    while the engine is between frames), a frame no one waits for yet is read in the
    gap, so that decoding does not take the cores from the frame's passes (up to GAP_WAIT_S:
    a pipeline that leaves no gap still gets its frames); a frame the engine waits for is read
    at once."""

    def __init__(self, node: str, source: Source, ahead: int = 2, gap: Callable[[], bool] | None = None):
        self.node, self.source, self.ahead, self.gap = node, source, ahead, gap
        self._cond = threading.Condition()
        self._frames: dict[int, np.ndarray | BaseException] = {}
        self._asked = -1  # the last index asked for
        self._next = 0  # the index the thread reads next
        self._reading: int | None = None  # the index the thread is reading now
        self._stop = False
        self._thread: threading.Thread | None = None

    def _load(self, index: int) -> np.ndarray:
        return to_rgba(self.source.read(index), self.node, self.source.info.size, index)

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as RGBA; raises EndOfStream or NodeError as the source does."""
        with self._cond:
            if index not in self._frames and index != self._reading:
                # behind (the frames between are skipped), or going back (a loop's start)
                if index < self._next:
                    self._frames = {}
                self._next = index
            self._frames = {i: f for i, f in self._frames.items() if i >= index}
            self._asked = index
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"read:{self.node}", daemon=True)
                self._thread.start()
            while index not in self._frames:
                self._cond.wait()
            frame = self._frames.pop(index)
        if isinstance(frame, BaseException):
            raise frame
        return frame

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._next > self._asked + self.ahead:
                    self._cond.wait()
                if self.gap is not None:  # ahead of what was asked: in the engine's gap
                    end = time.perf_counter() + GAP_WAIT_S
                    while (not self._stop and self._next > self._asked and not self.gap()
                           and time.perf_counter() < end):
                        self._cond.wait(0.002)  # a read() that waits wakes it at once
                if self._stop:
                    return
                index = self._reading = self._next
                self._next += 1
            try:
                frame = self._load(index)
            except BaseException as exc:  # EndOfStream or a NodeError: the engine's, when it asks
                frame = exc
            with self._cond:
                self._reading = None
                if index >= self._asked and index < self._next:  # else no one asks for it (skipped, or gone back)
                    self._frames[index] = frame
                self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread (the source itself is closed by its owner, after this)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
