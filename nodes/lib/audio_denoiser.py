"""Streaming speech denoiser: RNNoise (the learned core) behind the project's own DSP.

The chain, per channel, on 10 ms frames (480 samples at 48 kHz) cut from the stream's start:

1. ``HumCanceller``: mains hum (50 or 60 Hz and its harmonics) modelled as a sum of sinusoids
   whose amplitudes and phases are estimated online by exponentially weighted least squares;
   a slow phase-locked loop follows the mains frequency (+-0.5 Hz). A harmonic is subtracted
   only while it is a steady line (a fast and a slow estimate agree), so the stage switches
   itself off when there is no hum. No look-ahead.
2. ``Declicker`` (off by default): short impulses (clicks, crackle) are found on a high-passed
   signal against a robust running level (median of the last 10 ms) and the damaged samples
   are replaced by autoregressive prediction from both sides (from the past only when the
   click runs over the end of the frame; the next frame joins the gap smoothly). No look-ahead
   beyond the frame. Measured: RNNoise already tames clicks, and the detector also takes
   plosives and buzzy voices (espeak) for clicks, so on the benchmark it costs PESQ; it is
   there for crackle-heavy material (vinyl, a bad cable).
3. RNNoise (``librnnoise`` as shipped by the ``pyrnnoise`` wheel, called through ctypes): it
   holds the output 960 samples behind its input (overlap-add plus its own look-ahead).

The result is mixed with the input delayed by the same 960 samples: ``strength`` moves from the
untouched input (0) to the full effect (1), ``limit_db`` caps the attenuation.

Latency: 960 samples (20 ms) of constant delay plus the 10 ms frame = 30 ms, exactly RNNoise's.
Output never depends on how the input is cut into blocks: all work happens on whole frames.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

RATE = 48000
FRAME = 480  # RNNoise's frame: 10 ms at 48 kHz
RNN_DELAY = 960  # RNNoise's output lags its input by two frames (measured by cross-correlation)
SCALE = 32768.0  # RNNoise works on 16-bit sample values held in floats

HumMode = Literal["auto", "50", "60", "off"]


# ---------------------------------------------------------------- RNNoise (ctypes)

_LIB = None


def _lib():
    """librnnoise from the pyrnnoise wheel, loaded without importing pyrnnoise's Python side
    (which pulls in file I/O packages the node does not need)."""
    global _LIB
    if _LIB is None:
        spec = importlib.util.find_spec("pyrnnoise")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the pyrnnoise package is not installed (pip install pyrnnoise)")
        folder = list(spec.submodule_search_locations)[0]
        for name in ("librnnoise.so", "librnnoise.dylib", "rnnoise.dll"):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                break
        else:
            raise RuntimeError(f"no librnnoise in {folder}")
        lib = ctypes.CDLL(path)
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != FRAME:
            raise RuntimeError(f"librnnoise frame size is {lib.rnnoise_get_frame_size()}, expected {FRAME}")
        _LIB = lib
    return _LIB


class RNNoise:
    """One RNNoise state (one channel). process(frame of 480 floats in [-1, 1]) -> 480 floats,
    lagging the input by RNN_DELAY samples; also returns the voice probability."""

    def __init__(self) -> None:
        self.lib = _lib()
        self.state = self.lib.rnnoise_create(None)
        self._in = np.zeros(FRAME, np.float32)
        self._out = np.zeros(FRAME, np.float32)
        self._pin = self._in.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._pout = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self.vad = 0.0

    def process(self, frame: np.ndarray) -> np.ndarray:
        np.multiply(frame, SCALE, out=self._in, casting="unsafe")
        np.clip(self._in, -32768.0, 32767.0, out=self._in)
        self.vad = float(self.lib.rnnoise_process_frame(self.state, self._pout, self._pin))
        out = self._out / SCALE
        if not np.all(np.isfinite(out)):  # never hand NaN on; start the state over instead
            self.close()
            self.state = self.lib.rnnoise_create(None)
            out = np.zeros(FRAME, np.float32)
        return out

    def close(self) -> None:
        if getattr(self, "state", None):
            self.lib.rnnoise_destroy(self.state)
            self.state = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------- mains hum

class HumCanceller:
    """Adaptive cancellation of one hum family: f0 (50 or 60 Hz) and its harmonics up to `top` Hz.

    Each harmonic k is a phasor c_k estimated by heterodyning: the input times exp(-j k theta),
    averaged exponentially over frames (a notch of about 1 / (pi tau) Hz around k f0, learned
    while running); the hum is then synthesised from the c_k and subtracted. theta runs at
    the nominal f0 (the per-frame bases are periodic and precomputed) plus a phase offset that
    a slow phase-locked loop advances, so the mains' real frequency (a few hundredths of a Hz
    off) is followed. Two time constants: the slow estimate is what gets subtracted; the fast
    one only serves the detector: a harmonic counts as hum while its slow amplitude clearly
    exceeds the fast estimate's wander around it (a steady line), else it is faded out, so
    the stage switches itself off when there is no hum.
    """

    def __init__(self, f0: float, rate: int = RATE, top: float = 660.0, tau_slow: float = 0.25,
                 tau_fast: float = 0.04, track: bool = True):
        self.nominal = float(f0)
        self.rate = rate
        self.K = max(1, int(top // f0))
        self.k = np.arange(1, self.K + 1, dtype=np.float64)
        self.lam_s = float(np.exp(-FRAME / (tau_slow * rate)))
        self.lam_f = float(np.exp(-FRAME / (tau_fast * rate)))
        self.lam_v = float(np.exp(-FRAME / (0.3 * rate)))  # smoothing of the detector statistics
        self.track = track
        period = rate / np.gcd(int(rate), int(round(f0)))  # samples until theta repeats (whole)
        self.P = int(np.lcm(int(period), FRAME) // FRAME)  # frames until the bases repeat
        n = np.arange(self.P * FRAME, dtype=np.float64)
        ph = np.outer(2 * np.pi * self.nominal / rate * n, self.k)
        e = np.exp(1j * ph)  # (P*FRAME, K)
        self.synth = [np.ascontiguousarray(e[i * FRAME:(i + 1) * FRAME]) for i in range(self.P)]
        self.demod = [np.ascontiguousarray(np.conj(s).T) * (2.0 / FRAME) for s in self.synth]
        self.reset()

    def reset(self) -> None:
        self.i = 0  # frame index modulo P
        self.phi = 0.0  # phase offset of the fundamental from the nominal clock (radians)
        self.df = 0.0  # frequency offset (Hz) the loop has found
        self.cs = np.zeros(self.K, complex)
        self.cf = np.zeros(self.K, complex)
        self.wander = np.zeros(self.K)  # smoothed |fast - slow|^2 per harmonic
        self.line = np.zeros(self.K)  # smoothed |slow|^2 per harmonic
        self.gain = np.zeros(self.K)  # 0..1 per harmonic: how much of it is subtracted
        self.prev = None
        self.frames = 0

    def estimate(self, x: np.ndarray) -> float:
        """Learn from frame x (FRAME samples); returns the detected hum strength (sum of
        gain-weighted line powers). hum() then gives the frame's hum as it would be subtracted
        (only the canceller that subtracts pays for that synthesis)."""
        rot = np.exp(-1j * self.k * self.phi)
        # einsum, not @: these small products must not wake BLAS threads (they spin and cost a
        # live stream more CPU than the arithmetic)
        z = np.einsum("kn,n->k", self.demod[self.i], x) * rot  # this frame's demodulated harmonics
        self.cs = self.lam_s * self.cs + (1 - self.lam_s) * z
        self.cf = self.lam_f * self.cf + (1 - self.lam_f) * z
        lam = self.lam_v
        self.line = lam * self.line + (1 - lam) * (self.cs.real ** 2 + self.cs.imag ** 2)
        dv = self.cf - self.cs
        self.wander = lam * self.wander + (1 - lam) * (dv.real ** 2 + dv.imag ** 2)
        # a steady line: its power well above how much the fast estimate wanders (noise and
        # speech make the fast estimate wander by about as much as the line itself)
        target = np.clip((self.line / (self.wander + 1e-20) - 2.0) / 4.0, 0.0, 1.0)
        target[self.line < 1e-11] = 0.0  # below -110 dBFS: nothing worth touching
        self.frames += 1
        warm = min(1.0, self.frames * FRAME / (0.15 * self.rate))  # let the estimates settle first
        self.gain = 0.8 * self.gain + 0.2 * target * warm
        self._last = (self.i, self.gain * self.cs * np.conj(rot))  # what hum() synthesises
        if self.track and self.frames > 10:
            self._track()
        self.i = (self.i + 1) % self.P
        self.phi = (self.phi + 2 * np.pi * self.df * FRAME / self.rate) % (2 * np.pi)
        return float(np.sum(self.gain * self.line))

    def hum(self) -> np.ndarray:
        """The hum in the frame estimate() last saw."""
        i, coeffs = self._last
        return np.einsum("nk,k->n", self.synth[i], coeffs).real

    def _track(self) -> None:
        """Follow the mains frequency: a steady error in f0 makes the estimated phasors turn."""
        c = self.cs
        if self.prev is not None:
            w = self.gain * np.abs(c) * np.abs(self.prev)
            if w.sum() > 0:
                turn = np.angle(c * np.conj(self.prev)) / self.k  # radians per frame, per unit harmonic
                err = float(np.sum(w * turn) / w.sum()) * self.rate / (2 * np.pi * FRAME)  # Hz
                self.df = float(np.clip(self.df + 0.05 * err, -0.3, 0.3))
        self.prev = c.copy()


class HumRemover:
    """hum = "50" / "60": one canceller; "auto": both, the one hearing the stronger steady hum
    wins (with hysteresis), the other only listens; "off": nothing."""

    def __init__(self, mode: HumMode = "auto"):
        self.set_mode(mode)

    def set_mode(self, mode: HumMode) -> None:
        self.mode = mode
        self.units = {} if mode == "off" else {f: HumCanceller(float(f)) for f in ((50, 60) if mode == "auto" else (int(mode),))}
        self.active = None if mode == "auto" else (int(mode) if mode != "off" else None)

    def reset(self) -> None:
        for u in self.units.values():
            u.reset()
        if self.mode == "auto":
            self.active = None

    def process(self, x: np.ndarray) -> np.ndarray:
        if not self.units:
            return x
        x64 = x.astype(np.float64)
        est = {f: u.estimate(x64) for f, u in self.units.items()}
        if self.mode == "auto":
            s50, s60 = est[50], est[60]
            if self.active is None:
                if max(s50, s60) > 0:
                    self.active = 50 if s50 >= s60 else 60
            elif est[110 - self.active] > 4.0 * est[self.active]:
                self.active = 110 - self.active
        if self.active is None:
            return x
        return (x64 - self.units[self.active].hum()).astype(np.float32)


# ---------------------------------------------------------------- clicks

def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """AR coefficients a (a[0] = 1) from autocorrelation r by Levinson-Durbin."""
    a = np.zeros(order + 1); a[0] = 1.0
    err = r[0]
    for i in range(1, order + 1):
        if err <= 0:
            break
        k = -(r[i] + np.dot(a[1:i], r[i - 1:0:-1])) / err
        a[1:i + 1] = a[1:i + 1] + k * np.concatenate([a[i - 1:0:-1], [1.0]])
        err *= 1.0 - k * k
    return a


def _ar_fit(seg: np.ndarray, order: int) -> np.ndarray:
    seg = seg * np.hanning(len(seg))
    n = len(seg)
    spec = np.fft.rfft(seg, 2 * n)
    r = np.fft.irfft(np.abs(spec) ** 2)[:order + 1]
    r[0] *= 1.0 + 1e-4  # white-noise correction: keeps the predictor stable
    if r[0] <= 0:
        return np.zeros(order + 1)
    return _levinson(r, order)


def _predict(history: np.ndarray, a: np.ndarray, n: int) -> np.ndarray:
    """Continue `history` by n samples with the AR predictor a."""
    p = len(a) - 1
    buf = np.concatenate([history[-p:], np.zeros(n)])
    c = -a[1:][::-1]
    for i in range(n):
        buf[p + i] = np.dot(c, buf[i:i + p])
    return buf[p:]


class Declicker:
    """Finds clicks in each frame and repairs them in place; keeps the last 20 ms as history."""

    ORDER = 24
    HIST = 960  # samples of history kept (fits the AR model, holds the detector's level)
    THRESH = 30.0  # x the median of the high-passed magnitude over the last 10 ms
    PRE, POST = 12, 48  # samples added around a detection (onset, decay tail)
    MERGE = 48  # detections closer than this join one gap
    MAX_GAP = 240  # longer "clicks" are not clicks (5 ms): left alone
    FIT = 384  # samples each side used to fit the AR model

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hist = np.zeros(self.HIST)  # repaired past input
        self.open = 0  # samples of a gap still running into the next frame
        self.repaired = 0  # count of gaps repaired (diagnostics, tests)

    def process(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self.hist, x.astype(np.float64)])
        h = len(self.hist)
        d = np.empty_like(buf)
        d[2:] = buf[2:] - 2 * buf[1:-1] + buf[:-2]
        d[:2] = 0.0
        mag = np.abs(d)
        level = float(np.median(mag[h - FRAME:])) + 1e-7
        hits = np.flatnonzero(mag[h:] > self.THRESH * level) + h
        gaps: list[list[int]] = []
        if self.open:
            gaps.append([h, h + self.open])
            self.open = 0
        for i in hits:
            a, b = i - self.PRE, i + self.POST
            if gaps and a <= gaps[-1][1] + self.MERGE:
                gaps[-1][1] = max(gaps[-1][1], b)
            else:
                gaps.append([a, b])
        for a, b in gaps:
            a = max(a, h)  # the past is already committed
            if b - a > self.MAX_GAP or b <= a:
                continue
            end = len(buf)
            if b >= end:
                # runs over the frame's end: predict from the past to the end, go on next frame
                self.open = b - end
                a_fwd = _ar_fit(buf[a - self.FIT:a], self.ORDER)
                buf[a:end] = _predict(buf[:a], a_fwd, end - a)
                self.repaired += 1
                continue
            n = b - a
            fwd = _predict(buf[:a], _ar_fit(buf[a - self.FIT:a], self.ORDER), n)
            after = buf[b:min(end, b + self.FIT)]
            if len(after) >= 2 * self.ORDER:
                a_bwd = _ar_fit(after[::-1], self.ORDER)
                bwd = _predict(after[::-1], a_bwd, n)[::-1]
                w = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
                buf[a:b] = (1 - w) * fwd + w * bwd
            else:
                # little known after the gap: predict forward and fade into what follows
                buf[a:b] = fwd
            self.repaired += 1
        out = buf[h:]
        lim = np.max(np.abs(buf[:h])) * 4 + 1e-3
        np.clip(out, -lim, lim, out=out)  # an unstable prediction never explodes
        self.hist = buf[-self.HIST:].copy()
        return out.astype(np.float32)


# ---------------------------------------------------------------- the whole chain

@dataclass
class _Channel:
    hum: HumRemover
    declick: Declicker
    rnn: RNNoise
    raw: np.ndarray  # the last RNN_DELAY raw input samples (the dry path's delay line)
    clean: np.ndarray  # the same for the hum/click-cleaned input


class SpeechDenoiser:
    """Streaming speech denoiser for 48 kHz float32 blocks shaped (n, channels).

    process(block) returns the output available so far; it lags the input by `latency`
    samples. flush() returns the rest (a stream of n samples yields n + latency in all).
    """

    latency = RNN_DELAY

    def __init__(self, rate: int = RATE, channels: int = 1, strength: float = 1.0, limit_db: float = 25.0,
                 hum: HumMode = "auto", declick: bool = False):
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
        self._mix = self._target_mix()
        self.pending = np.zeros((0, channels), np.float32)
        self.chans = [self._new_channel() for _ in range(channels)]

    def _new_channel(self) -> _Channel:
        return _Channel(HumRemover(self.hum_mode), Declicker(), RNNoise(),
                        np.zeros(RNN_DELAY, np.float32), np.zeros(RNN_DELAY, np.float32))

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
            c.rnn.close()
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
            wet = c.rnn.process(y)
            raw_d = np.concatenate([c.raw, x])
            clean_d = np.concatenate([c.clean, y])
            c.raw, c.clean = raw_d[FRAME:], clean_d[FRAME:]
            dry = (1 - s) * raw_d[:FRAME] + s * clean_d[:FRAME]
            out[:, ch] = np.clip(g * dry + (1 - g) * wet, -1.0, 1.0)
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
