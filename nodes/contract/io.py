"""What sources, sinks and sound nodes are when they run: the objects `open` and `stream` return."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusegraph.nodes.contract.declare import MAX_TEXTURE
from fusegraph.nodes.contract.stages import Size
from fusegraph.nodes.contract.types import PortTypeName as PortType


@dataclass
class SourceInfo:
    size: Size
    fps: float
    frame_count: int | None  # None: endless (camera, looping video, endless pattern, still image)
    still: bool = False  # a still image: the same frame every time
    out_type: PortType = "video"


class Source:
    """An opened source: frames come as HxWx3 (BGR) or HxWx4 (BGRA) uint8 arrays."""

    info: SourceInfo
    read_ahead = True  # live runs may read the next frames on a thread before they are asked for

    def read(self, index: int) -> Any:  # raise EndOfStream when there is no frame `index`
        raise NotImplementedError

    def close(self) -> None:
        pass


class EndOfStream(Exception):
    pass


class Sink:
    """An opened sink: receives, per input port, HxWx4 RGBA uint8 (video) or HxW uint8 (mask)."""

    def write(self, inputs: dict[str, Any], index: int) -> None:
        raise NotImplementedError

    def write_audio(self, block: np.ndarray) -> None:
        """Sinks with an audio input: the next samples, float32 (n, channels), in order from
        the stream's start (time 0 is the first video frame's time)."""
        raise NotImplementedError

    def finish(self) -> list:
        """Closing, phase one (runtime.audio.close_sinks): complete the output under temporary
        names and return them (runtime.atomic Partials), published with every other sink's.
        Sinks without files just close."""
        self.close()
        return []

    def close(self) -> None:
        """Finalise the output: a complete, playable file replaces the target (also after Ctrl+C)."""

    def discard(self) -> None:
        """The run failed: drop the partial output, leave any existing target untouched."""


# ---- audio ------------------------------------------------------------------------
# Audio travels as float32 blocks shaped (samples, channels) in [-1, 1] at a known rate. It is
# processed on the CPU, on its own path beside the video plan (runtime/audio.py).


@dataclass(frozen=True)
class AudioFormat:
    rate: int  # samples per second
    channels: int

    def __str__(self) -> str:
        return f"{self.rate} Hz, {self.channels} channel{'s' if self.channels != 1 else ''}"


class AudioSource:
    """An opened audio source. Offline, read(n) returns up to n samples (fewer at the end,
    0 when done); live (a microphone) it blocks until a block has arrived."""

    format: AudioFormat
    frames: int | None = None  # samples in all, when known (a file); None for a device or a loop
    device: bool = False  # paced by a device's clock (read() waits for it); else by ours, live
    missing: str | None = None  # a planning stand-in for a device that is not there: why
    overruns: int = 0  # blocks the device delivered that we had no room for (live)

    def read(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class AudioProcessor:
    """A streaming audio node body: process() takes a block (n, in channels) and returns the
    output available so far (any length, the out format's channels). The output lags the
    input by `latency` samples at the output rate; flush() returns what is still held back
    at the end of a stream. Offline runs drop the first `latency` samples of a path and
    flush at the end, so the written track lines up with the input sample for sample."""

    latency: int = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def flush(self) -> np.ndarray:
        return np.zeros((0, 1), np.float32)

    def set_params(self, params: Any) -> bool | None:
        """A param edit while running (live): take the new values without a restart, or return
        False when they need one (the stream is then rebuilt)."""


@dataclass(frozen=True)
class OpenContext:
    """What a source or sink may know when it opens."""

    node_id: str
    fps: float = 30.0  # the graph's frame rate (from its first source)
    in_size: Size | None = None  # sinks: size of their input
    in_type: PortType | None = None
    audio: AudioFormat | None = None  # sinks with an audio input: what arrives there
    live: bool = False
    search_dirs: tuple[str, ...] = ()  # where relative input paths are looked for after the CWD
    max_texture: int = MAX_TEXTURE  # sources: the GPU's largest texture side (GL_MAX_TEXTURE_SIZE)
    # only planning (`fusegraph plan`): a device source need not start; one that is missing may
    # answer with a stand-in whose `missing` says why, so the rest of the graph is still planned
    plan_only: bool = False

    def find_input(self, path: str) -> str:
        """A relative input file: the current directory first, then next to the preset."""
        if not path or os.path.isabs(path) or os.path.exists(path):
            return path
        for folder in self.search_dirs:
            candidate = os.path.join(folder, path)
            if os.path.exists(candidate):
                return candidate
        return path
