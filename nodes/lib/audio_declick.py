"""Click repair: short impulses found against a robust running level, the damaged samples
replaced by autoregressive prediction from both sides. 480-sample frames, no look-ahead.
"""
from __future__ import annotations

import numpy as np

FRAME = 480

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
