"""Streaming speech denoiser: a learned core (DeepFilterNet3 or RNNoise) inside the project's DSP.

The chain, per channel, on 10 ms frames (480 samples at 48 kHz) cut from the stream's start:

1. ``HumRemover`` (nodes/lib/audio_hum.py): mains hum (50 or 60 Hz and harmonics) subtracted as
   adaptively estimated sinusoids, only while a harmonic is a steady line; no look-ahead.
2. ``Declicker`` (nodes/lib/audio_declick.py, off by default): clicks repaired by AR prediction.
3. The core: ``Dfn3Core`` (nodes/lib/dfn3.py: the official DeepFilterNet3 export on onnxruntime,
   40 ms) or ``RnnoiseCore`` (nodes/lib/rnnoise.py: librnnoise through ctypes, 30 ms).
4. The mix with the input delayed by the core's delay (nodes/lib/audio_guard.py): ``strength``
   moves from the untouched input (0) to the full effect (1); ``limit_db`` keeps a floor of
   the input under the output, for steady noise only (``TransientFloor``: a keystroke the
   model took out does not come back); ``SnrGuard`` estimates the SNR with the model as voice
   detector and eases off towards the input where the speech is already clean, and
   ``TalkerGuard`` (DeepFilterNet3 only) where the noise is other voices: a second encoder of
   the model judges what the model removed, and when that is speech eases off (do no harm).

Latency: the core's delay (960 samples for RNNoise, 1440 for DeepFilterNet3) plus the 10 ms
frame. Output never depends on how the input is cut into blocks: all work is on whole frames.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fusegraph.nodes.lib.audio_declick import Declicker
from fusegraph.nodes.lib.audio_guard import SnrGuard, TalkerGuard, TransientFloor
from fusegraph.nodes.lib.audio_hum import HumMode, HumRemover
from fusegraph.nodes.lib.dfn3 import DELAY as DFN3_DELAY
from fusegraph.nodes.lib.rnnoise import DELAY as RNN_DELAY
from fusegraph.nodes.lib.rnnoise import RNNoise

RATE = 48000
FRAME = 480  # both models' hop: 10 ms at 48 kHz

ModelName = Literal["rnnoise", "deepfilternet3"]
DEFAULT_MODEL: ModelName = "deepfilternet3"


# ---------------------------------------------------------------- the learned cores

class RnnoiseCore:
    """RNNoise behind the chain's core contract: process(frame) -> wet frame, `delay` samples late;
    `guard_db`: the SNR range over which the do-no-harm guard eases it off (measured);
    `listens`: whether listen(removed) gives the talker guard a local SNR of what was removed."""

    delay = RNN_DELAY
    guard_db = (18.0, 28.0)
    listens = False  # no estimate of its own for the talker guard (see TalkerGuard)

    def __init__(self) -> None:
        self.rnn = RNNoise()

    def process(self, frame: np.ndarray) -> np.ndarray:
        return self.rnn.process(frame)

    def close(self) -> None:
        self.rnn.close()


_DFN3: dict[tuple[str, float], object] = {}
_DFN3_LOCK = threading.Lock()


def dfn3_model(archive: Path):
    """The streamable DeepFilterNet3 graphs, made once per archive file (cheap to share: each
    stream has its own onnxruntime sessions and state)."""
    from fusegraph.nodes.lib.dfn3 import Dfn3Model

    key = (str(archive), archive.stat().st_mtime)
    with _DFN3_LOCK:
        if key not in _DFN3:
            _DFN3[key] = Dfn3Model(archive)
        return _DFN3[key]


class Dfn3Core:
    """DeepFilterNet3 (nodes/lib/dfn3.py) behind the same contract."""

    delay = DFN3_DELAY
    guard_db = (28.0, 38.0)
    listens = True  # listen(): the talker guard's ear

    def __init__(self, archive: Path) -> None:
        from fusegraph.nodes.lib.dfn3 import Dfn3Stream

        self.stream = Dfn3Stream(dfn3_model(archive))
        self.listener = Dfn3Stream(dfn3_model(archive), encoder_only=True)  # judges what was removed

    def process(self, frame: np.ndarray) -> np.ndarray:
        out = self.stream.process(frame)
        if not np.all(np.isfinite(out)):  # never hand NaN on; start the state over instead
            self.stream.reset()
            out = np.zeros(len(frame), np.float32)
        return out

    def listen(self, removed: np.ndarray) -> float:
        """The model's local SNR (dB) of what it removed: high when that was speech."""
        lsnr = self.listener.listen(removed)
        if not np.isfinite(lsnr):
            self.listener.reset()
            return -15.0
        return lsnr

    def close(self) -> None:
        pass


def model_archive(model: ModelName) -> Path | None:
    """The cached file a model needs (NodeError with the fetch command when it is not there)."""
    if model == "rnnoise":
        return None
    from fusegraph.nodes.lib.model_registry import resolve_archive

    return resolve_archive(model)


@dataclass
class _Channel:
    hum: HumRemover
    declick: Declicker
    core: RnnoiseCore | Dfn3Core
    guard: SnrGuard
    talkers: TalkerGuard
    floor: TransientFloor
    raw: np.ndarray  # the last `delay` raw input samples (the dry path's delay line)
    clean: np.ndarray  # the same for the hum/click-cleaned input
    frames: int = 0  # frames through so far


class SpeechDenoiser:
    """Streaming speech denoiser for 48 kHz float32 blocks shaped (n, channels).

    process(block) returns the output available so far; it lags the input by `latency`
    samples (the model's delay). flush() returns the rest (n samples in, n + latency out).
    """

    def __init__(self, rate: int = RATE, channels: int = 1, strength: float = 1.0, limit_db: float = 35.0,
                 hum: HumMode = "auto", declick: bool = False, model: ModelName = DEFAULT_MODEL,
                 guard: bool = True):
        if rate != RATE:
            raise ValueError(f"needs {RATE} Hz audio, got {rate} Hz")
        if channels < 1:
            raise ValueError("needs at least one channel")
        self.rate = rate
        self.channels = channels
        self.strength = strength
        self.limit_db = limit_db
        self.hum_mode: HumMode = hum
        self.declick = declick
        self.model = model
        self.guard = guard
        self.archive = model_archive(model)
        self.latency = RNN_DELAY if model == "rnnoise" else DFN3_DELAY
        self._mix = self._target_mix()
        self.pending = np.zeros((0, channels), np.float32)
        self.chans = [self._new_channel() for _ in range(channels)]

    def _core(self) -> RnnoiseCore | Dfn3Core:
        return RnnoiseCore() if self.archive is None else Dfn3Core(self.archive)

    def _new_channel(self) -> _Channel:
        core = self._core()
        return _Channel(HumRemover(self.hum_mode), Declicker(), core, SnrGuard(*core.guard_db), TalkerGuard(),
                        TransientFloor(), np.zeros(self.latency, np.float32), np.zeros(self.latency, np.float32))

    def _target_mix(self) -> tuple[float, float]:
        """(how much of the cleaned input goes into the dry path, dry share of the output)."""
        s = float(self.strength)
        floor = 10.0 ** (-float(self.limit_db) / 20.0) if self.limit_db < 100 else 0.0
        return s, max(1.0 - s, floor)

    def set_params(self, strength: float | None = None, limit_db: float | None = None,
                   hum: HumMode | None = None, declick: bool | None = None) -> None:
        if strength is not None:
            self.strength = strength
        if limit_db is not None:
            self.limit_db = limit_db
        if hum is not None and hum != self.hum_mode:
            self.hum_mode = hum
            for c in self.chans:
                c.hum.set_mode(hum)
        if declick is not None and declick != self.declick:
            self.declick = declick
            for c in self.chans:
                c.declick.reset()

    def reset(self) -> None:
        for c in self.chans:
            c.core.close()
        self.pending = np.zeros((0, self.channels), np.float32)
        self.chans = [self._new_channel() for _ in range(self.channels)]
        self._mix = self._target_mix()

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        out = np.empty((FRAME, self.channels), np.float32)
        old_s, old_g = self._mix
        new_s, new_g = self._mix = self._target_mix()
        if (old_s, old_g) == (new_s, new_g):
            s, g = new_s, new_g
        else:  # a param edit: ramp over the frame (no click)
            r = (np.arange(FRAME, dtype=np.float32) + 1) / FRAME
            s, g = old_s + (new_s - old_s) * r, old_g + (new_g - old_g) * r
        for ch, c in enumerate(self.chans):
            x = np.nan_to_num(frame[:, ch], nan=0.0, posinf=1.0, neginf=-1.0)
            x = np.clip(x, -1.0, 1.0)
            y = c.hum.process(x)
            if self.declick:
                y = c.declick.process(y)
            wet = c.core.process(y)
            raw_d = np.concatenate([c.raw, x])
            clean_d = np.concatenate([c.clean, y])
            c.raw, c.clean = raw_d[FRAME:], clean_d[FRAME:]
            then = clean_d[:FRAME]  # what the model took in, aligned with what it gave out
            dry = (1 - s) * raw_d[:FRAME] + s * then
            removed = then - wet
            p_in, p_wet, p_removed = (float(np.dot(v, v)) / FRAME for v in (then, wet, removed))
            gg = g * c.floor.update(p_in, p_removed) if self.strength >= 1.0 else g
            if self.guard:  # clean speech, or other voices as the noise: ease off towards the input
                # (not while the delay line still holds its initial zeros: no digital silence)
                c.frames += 1
                started = c.frames * FRAME > self.latency
                w = c.guard.update(p_in, p_wet) if started else c.guard.share
                t = 0.0
                if c.core.listens:  # the talker guard (a core that can judge what it removed)
                    t = c.talkers.update(p_wet, p_removed, c.core.listen(removed)) if started else c.talkers.share
                gg = 1.0 - (1.0 - gg) * (1.0 - w) * (1.0 - t)
            out[:, ch] = np.clip(gg * dry + (1 - gg) * wet, -1.0, 1.0)
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float32)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {block.shape[1]}")
        buf = np.concatenate([self.pending, block]) if len(self.pending) else block
        n = len(buf) // FRAME * FRAME
        outs = [self._frame(buf[i:i + FRAME]) for i in range(0, n, FRAME)]
        self.pending = buf[n:].copy()
        if not outs:
            return np.zeros((0, self.channels), np.float32)
        return np.concatenate(outs)

    def flush(self) -> np.ndarray:
        """The held-back output at the end of a stream; the state starts over afterwards."""
        want = len(self.pending) + self.latency
        pad = self.latency + (-len(self.pending)) % FRAME  # zeros that push it all out in whole frames
        out = self.process(np.zeros((pad, self.channels), np.float32))
        self.reset()
        return out[:want]
