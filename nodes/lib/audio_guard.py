"""Do no harm: ease a denoiser off where the speech is already clean; keep its floor for steady noise.

A denoiser always changes some speech along with the noise it takes out; on noisy input that
is a good trade, on clean input it is pure loss (PESQ and STOI fall below the untouched
input's). ``SnrGuard`` estimates the stream's SNR with the model as voice detector: a frame the
model takes down by more than 10 dB counts as noise, one it keeps at least half of as speech;
the input powers of each are averaged over the last seconds. That is right on any noise the
model knows, impulsive (typing) included, but it cannot tell clean speech the model partly
takes for noise (synthetic voices: espeak's fricatives) from noisy speech; so a second, blunt
test: when the quietest 10 ms of the last 2 s is digital silence, nothing is noisy, and the
estimate is infinite. From `lo_db` to `hi_db` the output moves from the model's to the
(delayed) input. The ranges are the models' own (measured with benchmarks/audio_quality.py):
RNNoise costs speech quality from about 20 dB SNR up, DeepFilterNet3 only on near-clean input.

Model-agnostic (it sees only the core's input and output), per channel, no look-ahead.
"""
from __future__ import annotations

import numpy as np

FRAME = 480
RATE = 48000
SILENT = 1e-10  # frame power below this (-100 dBFS) is digital silence: noise of power zero


class SnrGuard:
    BLOCK = 25  # frames per block of the minimum search (0.25 s)
    BLOCKS = 8  # blocks searched (2 s)

    def __init__(self, lo_db: float, hi_db: float, tau_s: float = 3.0):
        self.lo, self.hi = lo_db, hi_db
        self.lam = float(np.exp(-FRAME / (tau_s * RATE)))
        self.down = float(np.exp(-FRAME / (0.05 * RATE)))  # towards the model's output: at once
        self.up = float(np.exp(-FRAME / (0.15 * RATE)))  # towards the input: smoothly, no pumping
        self.reset()

    def reset(self) -> None:
        self.speech = [0.0, 0.0]  # averaged power, weight (the average starts from nothing)
        self.noise = [0.0, 0.0]
        self.minima: list[float] = []  # the quietest frame of each finished block
        self.block_min = np.inf
        self.block_n = 0
        self.share = 1.0  # untouched input until the model has judged a frame
        self.snr_db = None

    def _add(self, acc: list[float], p: float) -> None:
        acc[0] = self.lam * acc[0] + (1 - self.lam) * p
        acc[1] = self.lam * acc[1] + (1 - self.lam)

    def _quietest(self, p: float) -> float:
        """The lowest frame power of the last 2 s (in blocks, so it costs nothing per frame)."""
        self.block_min = min(self.block_min, p)
        self.block_n += 1
        if self.block_n == self.BLOCK:
            self.minima = (self.minima + [self.block_min])[-self.BLOCKS:]
            self.block_min, self.block_n = np.inf, 0
        return min(self.minima + [self.block_min])

    def update(self, p_dry: float, p_wet: float) -> float:
        """p_dry, p_wet: the powers of one output frame before and after the model; returns the
        dry share."""
        if p_dry < SILENT or p_wet < 0.1 * p_dry:
            self._add(self.noise, p_dry if p_dry >= SILENT else 0.0)
        elif p_wet > 0.5 * p_dry:
            self._add(self.speech, p_dry)
        if self._quietest(p_dry) < SILENT:
            self.snr_db = np.inf  # digital silence within the last 2 s: no noise at all
        elif self.noise[1] > 0 and self.speech[1] > 0:
            speech, noise = self.speech[0] / self.speech[1], self.noise[0] / self.noise[1]
            self.snr_db = 10.0 * np.log10(max(speech - noise, 1e-20) / max(noise, 1e-20))
        elif self.noise[1] > 0:
            self.snr_db = -np.inf  # only noise so far
        if self.snr_db is None:
            target = 1.0  # only speech so far: nothing says it is noisy
        else:
            target = float(np.clip((self.snr_db - self.lo) / (self.hi - self.lo), 0.0, 1.0))
        k = self.down if target < self.share else self.up
        self.share = k * self.share + (1 - k) * target
        return self.share


class TransientFloor:
    """The attenuation floor for steady noise only.

    The floor mixes a trace of the input back under the model's output (limit_db): on steady
    noise that keeps the room's tone and sounds (and scores) better than silence, but a loud
    transient the model took out (a keystroke, a knock) comes back with it, `limit_db` down and
    still plainly there. So the floor is scaled per frame by how much more the model removed in this
    frame than it steadily removes (a minimum-tracked level): sqrt(steady / now), at most 1,
    ramped across the frame so it never clicks.
    """

    RISE = 10 ** (3.0 / 10 / 100)  # the steady level may rise by 3 dB a second

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.steady = None
        self.scale = 1.0

    def update(self, p_dry: float, p_removed: float) -> np.ndarray | float:
        """p_dry: an output frame's power before the model, p_removed: the power of what it took
        out; returns the factor on the floor's dry share, per sample (or a float while it holds)."""
        now = p_removed
        if now < SILENT or p_dry < SILENT:
            return self.scale  # nothing came in (digital silence, the delay line filling): no news
        self.steady = now if self.steady is None else min(now, self.steady * self.RISE)
        new = min(1.0, float(np.sqrt(self.steady / now)))
        old, self.scale = self.scale, new
        if old == new:
            return new
        return old + (new - old) * (np.arange(FRAME, dtype=np.float32) + 1) / FRAME


class TalkerGuard:
    """Do no harm where the noise is other voices (babble, a café): ease off towards the input.

    A model trained to keep speech cannot tell the target voice from competing ones: in babble
    it keeps part of the other talkers and cuts whole syllables of the target, and the output
    falls below the input's intelligibility (STOI) while hardly gaining in quality (PESQ).
    Easing off towards the input restores what was cut (measured on the benchmark's babble: a
    dry share of about half brings STOI back to the input's at 10 dB SNR, at 0 dB it takes
    nearly all); DeepFilterNet's own answer is the same mix, its attenuation limit
    (atten_lim_db), but fixed and set by hand.

    The test: what the model removed, is it speech? A second encoder of the same model listens
    to the removed signal (``Dfn3Stream.listen``) and gives its local SNR: about -15 dB for
    white, pink, brown noise, fans and typing, -3 to -5 dB for babble. Two features, averaged:
    L, that local SNR (dB, 2 s, weighted by the removed power: a loud click judged noise
    outweighs the faint speech-like remainder between clicks), and M, the modulation of the
    removed signal's level (the deviation of its frame power in dB from its 1 s mean, 1 s):
    speech comes and goes at the syllable rate, steady noise does not. How far to ease off
    depends on how loud the other voices are: at 0 dB SNR the model only does harm (nearly the
    input is best), at 10 dB it still helps (about half and half scores best). The ratio of
    what the model kept to what it removed (2 s) stands in for the SNR. The dry share is
    top(kept/removed: 1 at -5 dB and below, 0.7 at +3 dB and above) x ramp(L, -8 .. -5 dB) x
    ramp(M, 3 .. 5.5 dB), smoothed over 0.15 s. Per channel, no look-ahead.
    """

    L_DB = (-8.0, -5.0)
    M_DB = (3.0, 5.5)
    KEPT_DB = (-5.0, 3.0)
    TOP = (1.0, 0.7)  # the most dry share at KEPT_DB's two ends (0.6 left synthetic speech in
    # babble at 10 dB 0.001 under the input's STOI; 0.7 is above it, at 0.013 PESQ there)

    def __init__(self) -> None:
        self.lam_l = float(np.exp(-FRAME / (2.0 * RATE)))
        self.lam_m = float(np.exp(-FRAME / (1.0 * RATE)))
        self.k = float(np.exp(-FRAME / (0.15 * RATE)))
        self.reset()

    def reset(self) -> None:
        # running averages as [sum, weight]: they start from nothing, so the first frames
        # already judge (a stream that opens in a café is not first taken apart for seconds)
        self.level_acc = [0.0, 0.0]  # L: the local SNR of what the model removed (dB)
        self.mean_acc = [0.0, 0.0]  # the removed signal's frame power (dB)
        self.var_acc = [0.0, 0.0]  # its squared deviation from that mean
        self.kept_acc = [0.0, 0.0]  # the power the model kept
        self.removed_acc = [0.0, 0.0]  # the power it removed
        self.share = 1.0  # untouched input until the model's removals have been heard (as SnrGuard)

    def _add(self, acc: list[float], lam: float, v: float, weight: float = 1.0) -> float:
        acc[0] = lam * acc[0] + (1 - lam) * weight * v
        acc[1] = lam * acc[1] + (1 - lam) * weight
        return acc[0] / acc[1]

    @property
    def level(self) -> float:
        return self.level_acc[0] / self.level_acc[1] if self.level_acc[1] else -15.0

    @property
    def modulation(self) -> float:
        return float(np.sqrt(self.var_acc[0] / self.var_acc[1])) if self.var_acc[1] else 0.0

    def update(self, p_kept: float, p_removed: float, lsnr: float) -> float:
        """p_kept, p_removed: the powers of what the model kept of this frame and what it
        removed; lsnr: the model's local SNR of the removed signal (dB); returns the dry share."""
        if p_removed < SILENT:  # nothing removed: no news
            return self.share
        kept = self._add(self.kept_acc, self.lam_l, p_kept) / self._add(self.removed_acc, self.lam_l, p_removed)
        k_lo, k_hi = self.KEPT_DB
        top = float(np.interp(10.0 * np.log10(max(kept, 1e-10)), [k_lo, k_hi], self.TOP))
        # weighted by the removed power: a loud click (judged noise) outweighs the faint
        # speech-like remainder between clicks
        self._add(self.level_acc, self.lam_l, min(lsnr, 10.0), p_removed)
        db = 10.0 * np.log10(p_removed)
        mean = self._add(self.mean_acc, self.lam_m, db)
        self._add(self.var_acc, self.lam_m, (db - mean) ** 2)
        (l_lo, l_hi), (m_lo, m_hi) = self.L_DB, self.M_DB
        target = top * float(np.clip((self.level - l_lo) / (l_hi - l_lo), 0.0, 1.0)
                             * np.clip((self.modulation - m_lo) / (m_hi - m_lo), 0.0, 1.0))
        self.share = self.k * self.share + (1 - self.k) * target
        return self.share
