"""resample: change the sample rate and the channel count of sound.

Inputs:  in (audio)
Outputs: out (audio)
Params:  rate (Hz; 0 keeps the input's), channels (0 keeps the input's; 1 mixes down to mono,
         2 makes stereo), quality (soxr's: "VHQ" best, "HQ" good and faster, "QQ" quick)
Notes:   The validator asks for this node where a node needs another rate or channel count
         than arrives (the denoiser's 48 kHz, a device's rates): nothing is resampled silently.
         Uses libsoxr (python-soxr), streaming: the output is time-aligned with the input (no
         added delay offline) and the total length is exactly rate_out / rate_in of the input.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import soxr
from pydantic import Field

from fusegraph.nodes.spec import AudioFormat, AudioProcessor, NodeError, NodeSpec, Params, Port


class ResampleParams(Params):
    rate: int = Field(48000, ge=0, le=384000, description="Hz; 0 keeps the input's")
    channels: int = Field(0, ge=0, le=8, description="0 keeps the input's; 1 mono, 2 stereo")
    quality: Literal["VHQ", "HQ", "MQ", "LQ", "QQ"] = "HQ"


def out_format(p: ResampleParams, ins: dict[str, AudioFormat]) -> AudioFormat:
    src = ins.get("in")
    if src is None:
        raise NodeError("no sound arrives", port="in")
    if 0 < p.rate < 1000:
        raise NodeError(f"rate {p.rate} Hz is too low for sound (use 8000 or more)")
    return AudioFormat(p.rate or src.rate, p.channels or src.channels)


def remix(block: np.ndarray, channels: int) -> np.ndarray:
    """Mono from the mean of the channels; more channels by repeating (mono -> stereo)."""
    have = block.shape[1]
    if have == channels:
        return block
    if channels == 1:
        return block.mean(axis=1, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(block, channels, axis=1)
    mono = block.mean(axis=1, keepdims=True, dtype=np.float32)
    return np.repeat(mono, channels, axis=1)


class Resampler(AudioProcessor):
    latency = 0  # soxr holds samples back but keeps its output aligned in time

    def __init__(self, p: ResampleParams, src: AudioFormat):
        self.src, self.out = src, out_format(p, {"in": src})
        self.stream = None
        if self.out.rate != src.rate:
            # mixing down first (fewer channels to filter), up afterwards
            self.mid = min(src.channels, self.out.channels)
            self.stream = soxr.ResampleStream(src.rate, self.out.rate, self.mid, dtype="float32",
                                              quality=p.quality)

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._run(block, last=False)

    def flush(self) -> np.ndarray:
        return self._run(np.zeros((0, self.src.channels), np.float32), last=True)

    def _run(self, block: np.ndarray, last: bool) -> np.ndarray:
        if self.stream is None:
            return remix(block, self.out.channels)
        y = self.stream.resample_chunk(np.ascontiguousarray(remix(block, self.mid)), last=last)
        return remix(y.reshape(-1, self.mid), self.out.channels)


SPEC = NodeSpec(
    type="resample", category="audio", role="audio", Params=ResampleParams, doc=__doc__,
    inputs=(Port("in", "audio"),), outputs=(Port("out", "audio"),),
    audio_format=out_format, stream=lambda p, ins: Resampler(p, ins["in"]),
)
