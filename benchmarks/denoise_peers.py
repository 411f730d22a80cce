"""The denoisers a user would otherwise pick, run on the same frames as video_denoise: FFmpeg's
bm3d, nlmeans and hqdn3d (the `ffmpeg` CLI; raw RGB frames piped in and out, nothing lossy),
OpenCV's NL-means, and a Gaussian blur as the floor. Each takes a strength; `tune` picks the
best of a few for a noise level on a few frames (an advantage ours does not get: it runs its
defaults)."""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

Frames = list[np.ndarray]


def ffmpeg_filter(frames: Frames, vf: str) -> Frames:
    """Frames (RGB uint8) through an FFmpeg filter chain, as planar RGB (no YUV round trip)."""
    h, w = frames[0].shape[:2]
    cmd = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "30", "-i", "-",
           "-vf", f"format=gbrp,{vf},format=rgb24", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    run = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                         capture_output=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"ffmpeg -vf {vf}: {run.stderr.decode(errors='replace').strip()}")
    out = np.frombuffer(run.stdout, np.uint8).reshape(-1, h, w, 3)
    return list(out[: len(frames)])


@dataclass
class Peer:
    name: str
    run: Callable[[Frames, float], Frames]  # (frames, strength) -> frames
    strengths: Callable[[float], list[float]]  # the noise deviation (8-bit) -> strengths to try
    causal: str  # "yes" (uses past frames only), "per frame"
    needs_ffmpeg: bool = False


def _bm3d(frames: Frames, s: float) -> Frames:
    return ffmpeg_filter(frames, f"bm3d=sigma={s:.2f}")


def _nlmeans(frames: Frames, s: float) -> Frames:
    return ffmpeg_filter(frames, f"nlmeans=s={s:.2f}")


def _hqdn3d(frames: Frames, s: float) -> Frames:
    return ffmpeg_filter(frames, f"hqdn3d={4 * s:.2f}:{3 * s:.2f}:{6 * s:.2f}:{4.5 * s:.2f}")


def _cv_nlmeans(frames: Frames, s: float) -> Frames:
    return [cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(f), None, s, s, 7, 21) for f in frames]


def _gauss(frames: Frames, s: float) -> Frames:
    return [cv2.GaussianBlur(f, (0, 0), s) for f in frames]


PEERS = [
    # (bm3d's sigma works at about 3x the noise's deviation here; its `group` > 1 is 10x slower
    # and did not denoise in our tries)
    Peer("FFmpeg bm3d", _bm3d, lambda n: [2.2 * n, 3.0 * n, 4.0 * n], "per frame", True),
    Peer("FFmpeg nlmeans", _nlmeans, lambda n: [min(30.0, f * n) for f in (0.6, 0.8, 1.0)], "per frame", True),
    Peer("FFmpeg hqdn3d", _hqdn3d, lambda n: [0.3 * n, 0.5 * n, 0.8 * n], "yes", True),
    Peer("OpenCV NL-means", _cv_nlmeans, lambda n: [0.6 * n, 0.8 * n, 1.0 * n], "per frame"),
    Peer("Gaussian blur", _gauss, lambda n: [0.5, 0.7, 0.9, 1.2], "yes"),
]


def available(peer: Peer) -> bool:
    return not peer.needs_ffmpeg or shutil.which("ffmpeg") is not None


def tune(peer: Peer, noisy: Frames, clean: Frames, noise: float, score: Callable[[Frames, Frames], float]) -> float:
    """The strength of those tried that scores best on these frames."""
    return max(peer.strengths(noise), key=lambda s: score(peer.run(noisy, s), clean))


def ms_per_frame(peer: Peer, frames: Frames, strength: float) -> float:
    """Wall time per frame over the frames, less a pass-through of the same frames (for FFmpeg:
    its start and the pipes)."""
    t = time.perf_counter()
    peer.run(frames, strength)
    total = time.perf_counter() - t
    if peer.needs_ffmpeg:
        t = time.perf_counter()
        ffmpeg_filter(frames, "null")
        total -= time.perf_counter() - t
    return max(total, 0.0) * 1000.0 / len(frames)
