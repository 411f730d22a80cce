"""audio_denoise: the streaming speech denoiser (RNNoise + hum cancelling) and its node.

Material is made here: speech from espeak-ng (a Debian package ./fg installs), a speech-like
signal (a gliding voiced source through moving formants, syllable-rate envelope, pauses: RNNoise
does not take it for speech, so it serves the tests that do not depend on that), white noise,
mains hum with clicks. No downloads.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import pytest

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.audio_denoise import AudioDenoiseParams, DenoiseProcessor
from fusegraph.nodes.audio_denoiser import FRAME, RATE, HumRemover, SpeechDenoiser
from fusegraph.nodes.spec import AudioFormat, AudioProcessor, NodeError

LAT = SpeechDenoiser.latency


def speech_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Voiced syllables: harmonics of a gliding 110-220 Hz pitch shaped by three moving formants,
    a 4 Hz syllable envelope and pauses; some breath noise; -26 dBFS RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t) + 15 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formants = [(500 + 200 * np.sin(2 * np.pi * 0.9 * t), 80.0), (1500 + 400 * np.sin(2 * np.pi * 0.6 * t + 1), 120.0),
                (2500 + 300 * np.sin(2 * np.pi * 0.4 * t + 2), 180.0)]
    x = np.zeros(n)
    for k in range(1, int(4000 / 100)):
        fk = k * f0
        amp = sum(np.exp(-0.5 * ((fk - fc) / (bw * 2.5)) ** 2) for fc, bw in formants) / k ** 0.5
        x += amp * np.where(fk < RATE / 2 - 1000, np.sin(k * phase), 0.0)
    env = np.clip(np.sin(2 * np.pi * 2.0 * t) * 1.5, 0, 1) ** 0.7  # syllables, 4 per second
    env *= (np.sin(2 * np.pi * 0.33 * t) > -0.5)  # pauses
    x = x * env + 0.02 * rng.standard_normal(n) * env
    return (x * 10 ** (-26 / 20) / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def hum(n: int, f0: float = 50.0, level: float = 0.05) -> np.ndarray:
    t = np.arange(n) / RATE
    h = np.sin(2 * np.pi * f0 * t) + 0.6 * np.sin(2 * np.pi * 2 * f0 * t + 1) + 0.4 * np.sin(2 * np.pi * 3 * f0 * t + 2)
    return (level * h / np.sqrt(np.mean(h ** 2))).astype(np.float32)


def clicks(n: int, seed: int = 1, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, np.float32)
    for s in rng.integers(0, n - 100, int(6 * n / RATE)):
        length = int(rng.integers(15, 70))
        out[s:s + length] += level * np.exp(-np.arange(length) / (length / 4)) * rng.standard_normal(length)
    return out


def run(x: np.ndarray, blocks=None, **kw) -> np.ndarray:
    """The whole stream through a fresh denoiser, output aligned to the input (latency dropped)."""
    x2 = x[:, None] if x.ndim == 1 else x
    d = SpeechDenoiser(RATE, x2.shape[1], **kw)
    outs, i = [], 0
    sizes = iter(blocks) if blocks is not None else None
    while i < len(x2):
        n = next(sizes) if sizes is not None else 1000
        outs.append(d.process(x2[i:i + n]))
        i += n
    outs.append(d.flush())
    y = np.concatenate(outs)
    assert len(y) == len(x2) + LAT
    y = y[LAT:]
    return y[:, 0] if x.ndim == 1 else y


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    a = np.dot(est, ref) / np.dot(ref, ref)
    return float(10 * np.log10(np.sum((a * ref) ** 2) / np.sum((est - a * ref) ** 2)))


def lag_of(ref: np.ndarray, out: np.ndarray, max_lag: int = 3000) -> int:
    from scipy.signal import correlate
    c = correlate(out, ref, mode="full", method="fft")
    zero = len(ref) - 1
    return int(np.argmax(c[zero - max_lag:zero + max_lag + 1])) - max_lag


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()


@pytest.fixture(scope="module")
def spoken() -> np.ndarray:
    """Two sentences from espeak-ng, at 48 kHz, -26 dBFS."""
    exe = shutil.which("espeak-ng")
    if not exe:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng; ./fg installs it)")
    from scipy.signal import resample_poly
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.wav")
        subprocess.run([exe, "-v", "en-us", "-w", path, "Glue the sheet to the dark blue background. "
                        "It is easy to tell the depth of a well."], check=True, capture_output=True)
        with wave.open(path) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32768.0
    g = np.gcd(rate, RATE)
    x = resample_poly(x, RATE // g, rate // g)
    return (x * 10 ** (-26 / 20) / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def test_registered_with_audio_contract():
    spec = REGISTRY["audio_denoise"]
    assert spec.role == "audio" and spec.category == "filter"
    assert spec.input("in").type == "audio" and spec.output("out").type == "audio"
    p = AudioDenoiseParams()
    assert spec.audio_format(p, {"in": AudioFormat(48000, 2)}) == AudioFormat(48000, 2)
    proc = spec.stream(p, {"in": AudioFormat(48000, 1)})
    assert isinstance(proc, AudioProcessor) and proc.latency == LAT
    for bad in ({"strength": 1.5}, {"hum": "55"}, {"limit_db": -1}, {"nope": 1}):
        with pytest.raises(Exception):
            AudioDenoiseParams(**bad)


def test_wrong_rate_names_the_port():
    spec = REGISTRY["audio_denoise"]
    with pytest.raises(NodeError) as e:
        spec.audio_format(AudioDenoiseParams(), {"in": AudioFormat(44100, 1)})
    assert e.value.port == "in"
    assert "48000 Hz" in e.value.message and "44100 Hz" in e.value.message and "resample" in e.value.message
    with pytest.raises(NodeError):
        spec.stream(AudioDenoiseParams(), {"in": AudioFormat(16000, 1)})


def test_block_partition_invariance(speech):
    x = speech[:RATE] + hum(RATE) + clicks(RATE) + 0.01 * np.random.default_rng(3).standard_normal(RATE).astype(np.float32)
    rng = np.random.default_rng(7)
    ref = run(x, blocks=[len(x)], declick=True)
    odd = run(x, blocks=[int(v) for v in rng.integers(1, 1500, 400)], declick=True)
    tiny = run(x, blocks=[1, 2, 3, 479, 481, 960, 7] * 200, declick=True)
    np.testing.assert_array_equal(ref, odd)
    np.testing.assert_array_equal(ref, tiny)


def test_declared_latency_is_the_measured_delay(speech):
    noisy = speech + 0.005 * np.random.default_rng(1).standard_normal(len(speech)).astype(np.float32)
    d = SpeechDenoiser(RATE, 1)
    y = np.concatenate([d.process(noisy[:, None]), d.flush()])[:, 0]
    assert lag_of(speech, y) == LAT == 960
    # and the processor's own accounting: n in -> n + latency out, in whole frames while streaming
    d = SpeechDenoiser(RATE, 1)
    assert len(d.process(np.zeros((FRAME - 1, 1), np.float32))) == 0
    assert len(d.process(np.zeros((1, 1), np.float32))) == FRAME
    assert len(d.flush()) == LAT


def test_strength_zero_passes_the_input_through(speech):
    x = speech + hum(len(speech)) + clicks(len(speech))
    y = run(x, strength=0.0, declick=True)
    np.testing.assert_allclose(y, np.clip(x, -1, 1), atol=1e-7)


def test_white_noise_improves_clearly(spoken):
    speech = spoken
    noise = np.random.default_rng(2).standard_normal(len(speech)).astype(np.float32)
    noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) * 10 ** (-5 / 20)  # 5 dB SNR
    x = speech + noise
    y = run(x)
    skip = RATE // 2  # learning time
    before, after = si_sdr(speech[skip:], x[skip:]), si_sdr(speech[skip:], y[skip:])
    assert after > before + 5.0, (before, after)
    # a weaker setting suppresses less
    half = si_sdr(speech[skip:], run(x, strength=0.5)[skip:])
    assert before < half < after


def test_hum_and_clicks_improve_clearly(spoken):
    speech = spoken
    x = speech + hum(len(speech), f0=49.97, level=0.05) + clicks(len(speech))
    y = run(x)
    skip = RATE // 2
    before, after = si_sdr(speech[skip:], x[skip:]), si_sdr(speech[skip:], y[skip:])
    assert after > before + 6.0, (before, after)
    # the hum stage is what carries most of it: without it RNNoise alone does less
    plain = si_sdr(speech[skip:], run(x, hum="off")[skip:])
    assert after > plain + 2.0, (plain, after)


@pytest.mark.parametrize("f0,mode", [(50.0, "auto"), (60.0, "auto"), (50.03, "50"), (59.95, "60")])
def test_hum_removal_on_pure_hum(f0, mode):
    n = 3 * RATE
    h = hum(n, f0=f0, level=0.1)
    rem = HumRemover(mode)
    out = np.concatenate([rem.process(h[i:i + FRAME]) for i in range(0, n, FRAME)])
    tail = slice(2 * RATE, n)  # after learning
    atten = 10 * np.log10(np.mean(out[tail] ** 2) / np.mean(h[tail] ** 2))
    assert atten < -30.0, atten
    if mode == "auto":
        assert rem.active == int(round(f0))


def test_hum_stage_leaves_speech_and_noise_alone(speech):
    """Off by itself: no hum, so the stage must not change the signal."""
    x = speech + 0.01 * np.random.default_rng(5).standard_normal(len(speech)).astype(np.float32)
    rem = HumRemover("auto")
    n = len(x) // FRAME * FRAME
    out = np.concatenate([rem.process(x[i:i + FRAME]) for i in range(0, n, FRAME)])
    err = 10 * np.log10(np.mean((out - x[:n]) ** 2) / np.mean(x[:n] ** 2) + 1e-30)
    assert err < -30.0, err


def test_silence_stays_silence():
    y = run(np.zeros(RATE, np.float32), declick=True)
    assert np.max(np.abs(y)) < 1e-6


@pytest.mark.parametrize("kind", ["full_scale_noise", "dc", "square", "nan"])
def test_extreme_input_stays_finite(kind):
    rng = np.random.default_rng(4)
    n = RATE // 2
    x = {"full_scale_noise": rng.uniform(-1, 1, n), "dc": np.ones(n),
         "square": np.sign(np.sin(2 * np.pi * 50 * np.arange(n) / RATE)),
         "nan": np.where(rng.random(n) < 0.01, np.nan, 0.1 * rng.standard_normal(n))}[kind].astype(np.float32)
    y = run(x, declick=True)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0


def test_channels_are_independent(speech):
    noisy = speech[:RATE] + 0.01 * np.random.default_rng(6).standard_normal(RATE).astype(np.float32)
    stereo = np.stack([noisy, np.zeros(RATE, np.float32)], axis=1)
    y = run(stereo)
    np.testing.assert_array_equal(y[:, 0], run(noisy))
    assert np.max(np.abs(y[:, 1])) < 1e-6


def test_node_processor_and_live_param_edit(speech):
    x = (speech[:RATE] + hum(RATE))[:, None]
    proc = DenoiseProcessor(AudioDenoiseParams(strength=0.0), AudioFormat(RATE, 1))
    a = proc.process(x[:RATE // 2])
    proc.set_params(AudioDenoiseParams(strength=1.0, hum="50", limit_db=20.0))
    b = proc.process(x[RATE // 2:])
    y = np.concatenate([a, b, proc.flush()])[:, 0]
    assert len(y) == RATE + proc.latency and np.all(np.isfinite(y))
    early = y[LAT:LAT + RATE // 4]
    np.testing.assert_allclose(early, x[:RATE // 4, 0], atol=1e-7)  # strength 0: untouched


def test_the_default_floor_keeps_a_trace_of_the_room():
    """limit_db (25 dB by default) bounds how far steady noise is taken down; 100 lifts the bound."""
    rng = np.random.default_rng(5)
    noise = (0.03 * rng.standard_normal(3 * RATE)).astype(np.float32)
    tail = slice(RATE, None)  # after the first second: RNNoise has learnt the noise

    def drop_db(**kw):
        y = run(noise, **kw)
        return 20 * np.log10(np.sqrt(np.mean(y[tail] ** 2)) / np.sqrt(np.mean(noise[tail] ** 2)))

    assert AudioDenoiseParams().limit_db == 25.0
    default, unlimited = drop_db(), drop_db(limit_db=100.0)
    assert -26.0 < default < -20.0
    assert unlimited < default - 3.0
