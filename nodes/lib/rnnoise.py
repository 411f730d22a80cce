"""RNNoise (Valin 2018) through ctypes: librnnoise as the ``pyrnnoise`` wheel ships it.

One state per channel; 480-sample frames at 48 kHz in [-1, 1]; the output lags the input by
DELAY samples (overlap-add plus RNNoise's own look-ahead, measured by cross-correlation).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np

FRAME = 480  # RNNoise's frame: 10 ms at 48 kHz
DELAY = 960  # RNNoise's output lags its input by two frames (measured by cross-correlation)
SCALE = 32768.0  # RNNoise works on 16-bit sample values held in floats

_LIB = None


def _lib():
    """librnnoise from the pyrnnoise wheel, loaded without importing pyrnnoise's Python side
    (which pulls in file I/O packages the node does not need)."""
    global _LIB
    if _LIB is None:
        spec = importlib.util.find_spec("pyrnnoise")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the pyrnnoise package is not installed (pip install pyrnnoise)")
        folder = list(spec.submodule_search_locations)[0]
        for name in ("librnnoise.so", "librnnoise.dylib", "rnnoise.dll"):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                break
        else:
            raise RuntimeError(f"no librnnoise in {folder}")
        lib = ctypes.CDLL(path)
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != FRAME:
            raise RuntimeError(f"librnnoise frame size is {lib.rnnoise_get_frame_size()}, expected {FRAME}")
        _LIB = lib
    return _LIB


class RNNoise:
    """One RNNoise state (one channel). process(frame of 480 floats in [-1, 1]) -> 480 floats,
    lagging the input by DELAY samples; also returns the voice probability."""

    def __init__(self) -> None:
        self.lib = _lib()
        self.state = self.lib.rnnoise_create(None)
        self._in = np.zeros(FRAME, np.float32)
        self._out = np.zeros(FRAME, np.float32)
        self._pin = self._in.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._pout = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self.vad = 0.0

    def process(self, frame: np.ndarray) -> np.ndarray:
        np.multiply(frame, SCALE, out=self._in, casting="unsafe")
        np.clip(self._in, -32768.0, 32767.0, out=self._in)
        self.vad = float(self.lib.rnnoise_process_frame(self.state, self._pout, self._pin))
        out = self._out / SCALE
        if not np.all(np.isfinite(out)):  # never hand NaN on; start the state over instead
            self.close()
            self.state = self.lib.rnnoise_create(None)
            out = np.zeros(FRAME, np.float32)
        return out

    def close(self) -> None:
        if getattr(self, "state", None):
            self.lib.rnnoise_destroy(self.state)
            self.state = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
