"""Source frames ready to upload: RGBA uint8, checked, and (offline) read one frame ahead.

Offline runs know which frame comes next, so a worker thread reads and converts frame i+1
(decoding, drawing the pattern, BGR -> RGBA: OpenCV and FFmpeg release the GIL) while the GPU
works on frame i. Live runs take the latest frame when asked and never read ahead.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from fusegraph.nodes.spec import NodeError, Source


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
