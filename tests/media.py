"""Test media made on the spot: a clip of a real photo of a person moving over a textured wall.

scikit-image ships the photo (NASA's portrait of Eileen Collins, public domain); nothing is
downloaded. Tests and benchmarks share these so they measure the same frames.
"""
from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np


def wall(width: int, height: int, seed: int = 1) -> np.ndarray:
    """A textured background (BGR): tiles, stripes, grain; detail a blur visibly removes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    tiles = ((x // 64 + y // 64) % 2) * 40
    stripes = 30 * (np.sin((x + 2 * y) / 7.0) > 0)
    grain = rng.normal(0, 12, (height, width)).astype(np.float32)
    base = np.stack([90 + tiles + grain, 120 + stripes + grain, 70 + 0.5 * tiles + grain], -1)
    return np.clip(base, 0, 255).astype(np.uint8)


def photo_box(width: int, height: int, frames: int, i: int) -> tuple[int, int, int]:
    """Where frame i puts the photo: (x0, y0, side)."""
    t = i / max(1, frames - 1)
    side = int(512 * height / 512 * (0.85 + 0.15 * math.sin(2 * math.pi * t)))
    return int((width - side) * (0.15 + 0.7 * t)), height - side, side


def face_box(width: int, height: int, frames: int, i: int) -> tuple[int, int, int, int]:
    """Rows and columns (y0, y1, x0, x1) of her face in frame i."""
    x0, y0, side = photo_box(width, height, frames, i)
    k = side / 512
    return y0 + int(70 * k), y0 + int(190 * k), x0 + int(200 * k), x0 + int(300 * k)


def person_frames(width: int, height: int, frames: int, seed: int = 1):
    """Frames (BGR uint8) of the astronaut photo panned and scaled across a textured wall."""
    from skimage import data

    photo = data.astronaut()[..., ::-1]  # RGB -> BGR
    bg = wall(width, height, seed)
    for i in range(frames):
        x0, y0, side = photo_box(width, height, frames, i)
        img = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        frame = bg.copy()
        xa, xb = max(0, x0), min(width, x0 + side)
        frame[y0:y0 + side, xa:xb] = img[:, xa - x0:xb - x0]
        yield frame


def write_clip(path: str | Path, width: int = 1280, height: int = 720, frames: int = 30, fps: int = 30) -> Path:
    """An H.264 MP4 of person_frames (what a user would feed the background-blur preset)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for frame in person_frames(width, height, frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
