"""Mains hum cancelling: 50 or 60 Hz and harmonics, subtracted as adaptively estimated sinusoids.

Works on 480-sample frames at 48 kHz; no look-ahead, so no delay.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

RATE = 48000
FRAME = 480

HumMode = Literal["auto", "50", "60", "off"]

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
