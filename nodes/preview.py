"""preview: show the frames (the editor's preview panel); headless, keeps the last one.

Inputs:  in (video, or a mask: shown grey)
Params:  max_width (frames wider than this are scaled down, keeping the aspect ratio)
Notes:   Another thread (the editor UI) may read `last` at any time: it always gets a whole,
         consistent frame that the engine will not change. Counts the frames it has seen.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np
from pydantic import Field

from fusegraph.nodes.spec import NodeSpec, OpenContext, Params, Port, Sink


class PreviewParams(Params):
    max_width: int = Field(640, ge=16, le=3840)


def shrink(img: np.ndarray, max_width: int) -> np.ndarray:
    """A copy of `img` at most `max_width` wide (area-averaged, the aspect ratio kept)."""
    h, w = img.shape[:2]
    if w <= max_width:
        return np.array(img, copy=True)  # a copy: the engine may reuse its buffer
    size = (max_width, max(1, round(h * max_width / w)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class Preview(Sink):
    def __init__(self, p: PreviewParams, ctx: OpenContext):
        self.max_width = p.max_width
        self._lock = threading.Lock()
        self._last: np.ndarray | None = None
        self._count = 0
        self._index = -1

    def write(self, inputs: dict, index: int) -> None:
        img = shrink(np.asarray(inputs["in"]), self.max_width)  # outside the lock: readers never wait on it
        img.flags.writeable = False  # shared with the UI thread: nobody may change it
        with self._lock:
            self._last, self._index = img, index
            self._count += 1

    @property
    def last(self) -> np.ndarray | None:
        """The newest frame (read-only HxWx4 RGBA, or HxW for a mask), None before the first."""
        with self._lock:
            return self._last

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def snapshot(self) -> tuple[np.ndarray | None, int, int]:
        """(last frame, its index, frames seen), consistent with each other."""
        with self._lock:
            return self._last, self._index, self._count


def open_preview(p: PreviewParams, ctx: OpenContext) -> Preview:
    return Preview(p, ctx)


SPEC = NodeSpec(
    type="preview", category="sink", role="sink", Params=PreviewParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), open=open_preview,
)
