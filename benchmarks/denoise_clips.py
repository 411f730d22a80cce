"""Test clips for video denoising, made from real photographs (scikit-image's): a slow sub-pixel
pan and zoom over a photo with a fast textured disc crossing it, and the noises of the issue
(Gaussian, and Poisson-Gaussian sensor noise in linear light, so it is strongest in the dark
after the gamma). Frames are RGB uint8 arrays, kept in memory (lossless)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PHOTOS = ("coffee", "astronaut", "rocket")
SPRITE = "chelsea"  # the moving object's texture (a cat's face)


def photo(name: str) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[..., :3])


@dataclass
class Clip:
    name: str
    clean: list[np.ndarray]
    moving: list[np.ndarray]  # per frame, where the disc is (bool HxW): the moving region


def pan_zoom_clip(name: str, size: tuple[int, int] = (640, 360), n: int = 40, speed: float = 11.0,
                  pan: tuple[float, float] = (0.37, 0.23), zoom: float = 0.0015) -> Clip:
    """The photo seen through a camera panning `pan` px/frame (right, down) and zooming in by
    `zoom` per frame (cubic resampling), a disc of radius height/8 crossing at `speed` px/frame."""
    src = photo(name).astype(np.float32)
    w, h = size
    ph, pw = src.shape[:2]
    base = max(w / pw, h / ph) * 1.15
    sprite = photo(SPRITE).astype(np.float32)
    r = h / 8.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    clean, moving = [], []
    for i in range(n):
        s = base * (1.0 + zoom * i)
        cx, cy = pw / 2 + (pan[0] * i - 20) / s, ph / 2 + pan[1] * i / s
        m = np.float32([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]])
        frame = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        ox, oy = r + 10 + speed * i, h / 2 + 0.25 * h * np.sin(i / 7.0)  # the disc's centre
        ms = np.float32([[1, 0, ox - sprite.shape[1] / 2], [0, 1, oy - sprite.shape[0] / 2]])
        face = cv2.warpAffine(sprite, ms, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        cover = np.clip(r - np.hypot(xx - ox, yy - oy) + 0.5, 0, 1)[..., None]
        frame = frame * (1 - cover) + face * cover
        clean.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
        moving.append(cover[..., 0] > 0)
    return Clip(name, clean, moving)


def gaussian(frames: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(f + rng.normal(0, sigma, f.shape)), 0, 255).astype(np.uint8) for f in frames]


def sensor(frames: list[np.ndarray], full_well: float = 60.0, read: float = 0.012, seed: int = 0) -> list[np.ndarray]:
    """Shot noise (Poisson, `full_well` electrons at white) plus read noise (Gaussian, a share of
    white) in linear light, then the 2.2 gamma back: strong in the shadows, weaker in the lights."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        lin = (f.astype(np.float64) / 255.0) ** 2.2
        noisy = rng.poisson(lin * full_well) / full_well + rng.normal(0, read, f.shape)
        out.append(np.clip(np.round(np.clip(noisy, 0, 1) ** (1 / 2.2) * 255.0), 0, 255).astype(np.uint8))
    return out


NOISES = {"sigma10": lambda f: gaussian(f, 10.0, 1), "sigma20": lambda f: gaussian(f, 20.0, 2),
          "sensor": lambda f: sensor(f, seed=3)}
