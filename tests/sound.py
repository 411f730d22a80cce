"""Test sound made on the spot: WAV files, a clip with a flash and a click at one instant,
and sound devices for PortAudio made of ALSA's file plugin (no sound card needed)."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import av
import numpy as np


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """float samples (n,) or (n, channels) in [-1, 1] as a 16-bit WAV."""
    a = np.asarray(samples, np.float64)
    a = a.reshape(len(a), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(a, -1, 1 - 1 / 32768) * 32768).round().astype("<i2").tobytes())
    return Path(path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples (n, channels) float32, rate) of a 16-bit WAV."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def voiced(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A speech-like signal: harmonic syllables with a wandering pitch, pauses between them."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * tone * syllables).astype(np.float32)


def click(rate: int, at: float, seconds: float) -> np.ndarray:
    """Silence with one click (a 2 ms burst at full height) starting at time `at`."""
    x = np.zeros(int(seconds * rate), np.float32)
    i, n = int(round(at * rate)), int(0.002 * rate)
    x[i:i + n] = 0.8 * np.hanning(n) * np.sign(np.sin(np.arange(n)))
    return x


def write_flash_click_clip(path: str | Path, fps: int, frames: int, flash: int, rate: int,
                           size: tuple[int, int] = (160, 96), sound_starts: float = 0.0) -> Path:
    """An MP4 (H.264 + AAC) that is black but for one white frame `flash`, and silent but for
    a click at the same instant (flash / fps). sound_starts: the sound track begins that many
    seconds after the first frame (as in some cameras' files)."""
    w, h = size
    sound = click(rate, flash / fps - sound_starts, frames / fps - sound_starts)
    first = int(round(sound_starts * rate))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=rate)
        aus.layout = "mono"
        for i in range(frames):
            img = np.full((h, w, 3), 255 if i == flash else 0, np.uint8)
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        for i in range(0, len(sound), 1024):
            fr = av.AudioFrame.from_ndarray(sound[None, i:i + 1024].copy(), format="flt", layout="mono")
            fr.sample_rate, fr.pts = rate, first + i
            out.mux(aus.encode(fr))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return Path(path)


def flash_and_click_times(path: str | Path) -> tuple[float, float]:
    """(time of the brightest frame, time of the loudest sample) of a file with both."""
    with av.open(str(path)) as c:
        best = max(((float(f.time), f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)),
                   key=lambda x: x[1])
    with av.open(str(path)) as c:
        loudest, t_click = 0.0, 0.0
        for f in c.decode(audio=0):
            a = f.to_ndarray().reshape(-1) if not f.format.is_planar else f.to_ndarray()[0]
            i = int(np.argmax(np.abs(a)))
            if abs(a[i]) > loudest:
                loudest, t_click = abs(a[i]), float(f.time) + i / f.sample_rate
    return best[0], t_click


def alsa_devices(folder: Path, infile: Path, rate: int = 48000) -> dict[str, str]:
    """The environment for a child process whose PortAudio sees two sound devices made of
    ALSA's file plugin: "fgmic" records 16-bit mono from `infile` (raw), "fgspk" plays into
    folder/speaker.raw. Not paced by a clock: they run as fast as they are used."""
    conf = folder / "asound.conf"
    conf.write_text(f"""
pcm.fgmic_raw {{ type file slave.pcm "null" file "/dev/null" infile "{infile}" format "raw" }}
pcm.fgmic {{ type plug slave {{ pcm "fgmic_raw" format S16_LE rate {rate} channels 1 }}
  hint {{ show on description "test microphone" }} }}
pcm.fgspk_raw {{ type file slave.pcm "null" file "{folder / 'speaker.raw'}" format "raw" }}
pcm.fgspk {{ type plug slave {{ pcm "fgspk_raw" format S16_LE rate {rate} channels 1 }}
  hint {{ show on description "test speaker" }} }}
""")
    return {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"}
