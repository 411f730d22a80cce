"""numpy float64 versions of what GL does for us (clamped texel reads, bilinear sampling).

The node references use these so that they state the same maths as the shaders.
Images are HxWxC float arrays in [0,1]; row 0 is the top row.
"""
from __future__ import annotations

import numpy as np


def bilinear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """GL texture() with LINEAR filtering and clamp-to-edge, sampled at the texel centres of `size`."""
    w, h = size
    ih, iw = img.shape[:2]
    x = (np.arange(w) + 0.5) * iw / w - 0.5
    y = (np.arange(h) + 0.5) * ih / h - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    xa, xb = np.clip(x0, 0, iw - 1), np.clip(x0 + 1, 0, iw - 1)
    ya, yb = np.clip(y0, 0, ih - 1), np.clip(y0 + 1, 0, ih - 1)
    if img.ndim == 3:
        fx, fy = fx[None, :, None], fy[:, None, None]
    else:
        fx, fy = fx[None, :], fy[:, None]
    top = img[ya][:, xa] * (1 - fx) + img[ya][:, xb] * fx
    bot = img[yb][:, xa] * (1 - fx) + img[yb][:, xb] * fx
    return top * (1 - fy) + bot * fy


def nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    ih, iw = img.shape[:2]
    xs = np.minimum(np.floor((np.arange(w) + 0.5) * iw / w).astype(int), iw - 1)
    ys = np.minimum(np.floor((np.arange(h) + 0.5) * ih / h).astype(int), ih - 1)
    return img[ys][:, xs]


def fit_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A thin stage's input of another size is sampled bilinearly at the pass's size."""
    return img if img.shape[1::-1] == tuple(size) else bilinear(img, size)


def to_8bit(img: np.ndarray) -> np.ndarray:
    """Storage in an 8-bit texture: GL rounds to nearest with ties up (numpy's round goes to even)."""
    return np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5) / 255.0


def luma(img: np.ndarray) -> np.ndarray:
    return img[..., :3] @ np.array([0.2126, 0.7152, 0.0722]) if img.ndim == 3 else img
