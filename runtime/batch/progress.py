"""What a batch shows: one bar (files done / failed / running, frames per second summed over
the workers, ETA) on stderr, and a line per finished file on stdout."""
from __future__ import annotations

import os
import sys
import time
from collections import deque

from tqdm import tqdm


def short(path: str) -> str:
    """A path as the user would write it: relative to the current folder when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


class Progress:
    def __init__(self, total: int, quiet: bool = False):
        self.bar = tqdm(total=total, unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        self.ok = self.failed = 0
        self.frames: dict[int, int] = {}  # running job -> frames so far
        self.finished_frames = 0
        self.samples: deque[tuple[float, int]] = deque()  # (time, all frames done): the recent rate
        self._shown = 0.0

    def fps(self) -> float:
        now, total = time.monotonic(), self.finished_frames + sum(self.frames.values())
        self.samples.append((now, total))
        while len(self.samples) > 2 and now - self.samples[0][0] > 5.0:
            self.samples.popleft()
        t0, f0 = self.samples[0]
        return (total - f0) / (now - t0) if now > t0 else 0.0

    def _show(self, force: bool = False) -> None:
        fps = self.fps()
        if force or time.monotonic() - self._shown > 0.25:
            self._shown = time.monotonic()
            self.bar.set_postfix_str(f"ok {self.ok}, failed {self.failed}, running {len(self.frames)}, "
                                     f"{fps:.1f} frames/s", refresh=True)

    def start(self, index: int) -> None:
        self.frames[index] = 0
        self._show(force=True)

    def progress(self, index: int, frames: int) -> None:
        if index in self.frames:
            self.frames[index] = frames
        self._show()

    def done(self, index: int, rec: dict) -> None:
        self.frames.pop(index, None)
        self.finished_frames += rec.get("frames") or 0
        if rec["status"] == "ok":
            self.ok += 1
            ms = f", {rec['ms_per_frame']:.1f} ms/frame" if rec.get("ms_per_frame") else ""
            self.line(f"ok      {short(rec['input'])} -> {short(rec['output'])}: {rec['frames']} frames in "
                      f"{rec['seconds']:.1f} s{ms} on {rec['host']}")
        else:
            self.failed += 1
            self.line(f"failed  {short(rec['input'])}: {rec['error']}")
        self.bar.update(1)
        self._show(force=True)

    def line(self, text: str) -> None:
        self.bar.write(text, file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()
