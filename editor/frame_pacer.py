"""When the editor draws a frame: at most at the display's rate, and only when something changed.

Dear PyGui redraws the whole window every frame, and on software GL that costs a core. So between
frames the window waits in GLFW (glfwWaitEventsTimeout from Dear PyGui's own library, the GIL
released) until input comes, `wake()` is called (a new preview frame: any thread may call it; it
posts GLFW's empty event) or a quarter of a second passes (status, autosave, a render's progress;
it also bounds a wake lost by GLFW 3.3 on X11, which can miss an empty event posted from another
thread); Dear PyGui itself only polls. After input it keeps drawing at the display's rate for
0.3 s and at least six frames (Dear PyGui settles hovers, popups and drags over several frames, and
takes in one event of a key per frame: on a slow machine 0.3 s may be one frame). Where GLFW's
functions cannot be found in Dear PyGui's library, it draws every frame, as before, capped at the
display's rate.

While a live run makes a frame, a frame drawn for input waits for its end (the engine's wake), up
to MIN_HZ's period since the window's last frame: on two cores the window's rasterisers and the
engine's passes otherwise run at once and each takes longer (the worst node 1.4-1.6x its offline
time with the pointer moving over the canvas, 1.1-1.2x now; measured: ./fg bench --only live).
Input is still drawn at MIN_HZ or more, and at the display's rate when the engine leaves time.
"""
from __future__ import annotations

import ctypes
import threading
import time
from typing import Callable

import dearpygui._dearpygui as dpg_core

DEFAULT_HZ = 60.0  # where the display does not say (Xvfb)
TICK_S = 0.25  # the slowest the window redraws (status bar, autosave, render progress)
SETTLE_S = 0.3  # drawing on at the display's rate after input ...
MIN_HZ = 30.0  # input is drawn at least this often, a live frame in the making or not
SETTLE_FRAMES = 6  # ... and for at least this many frames (Dear PyGui takes in one event of a key
# per frame: a key's release, or Ctrl's after Ctrl+V, waits in its queue for the next frames)


class _VidMode(ctypes.Structure):  # GLFWvidmode
    _fields_ = [(name, ctypes.c_int) for name in ("width", "height", "red", "green", "blue", "refresh")]


def _glfw():
    try:
        lib = ctypes.CDLL(dpg_core.__file__)
        post, wait = lib.glfwPostEmptyEvent, lib.glfwWaitEventsTimeout
    except (OSError, AttributeError):
        return None, None
    wait.argtypes, wait.restype = [ctypes.c_double], None
    return lib, post


class FramePacer:
    def __init__(self):
        self._lib, self._post = _glfw()
        self.waits = self._post is not None
        self.hz = DEFAULT_HZ
        self.last = 0.0
        self.awake_until = 0.0
        self.awake_frames = 0
        self._stop = threading.Event()
        self.busy: Callable[[], bool] = lambda: False  # a live engine is making a frame now
        self.min_hz = MIN_HZ

    def start(self) -> None:
        """After the viewport is shown: the display's refresh rate."""
        self.hz = self._refresh_rate() or DEFAULT_HZ
        self._stop.clear()

    def _refresh_rate(self) -> float | None:
        if self._lib is None:
            return None
        try:
            self._lib.glfwGetPrimaryMonitor.restype = ctypes.c_void_p
            self._lib.glfwGetVideoMode.restype = ctypes.POINTER(_VidMode)
            self._lib.glfwGetVideoMode.argtypes = [ctypes.c_void_p]
            monitor = self._lib.glfwGetPrimaryMonitor()
            mode = self._lib.glfwGetVideoMode(monitor) if monitor else None
            hz = mode.contents.refresh if mode else 0
        except (AttributeError, ValueError):
            return None
        return float(hz) if 20 <= hz <= 500 else None

    def wake(self) -> None:
        """Draw a frame soon (thread-safe)."""
        if self.waits:
            self._post()

    def keep_awake(self, seconds: float = SETTLE_S, frames: int = SETTLE_FRAMES) -> None:
        self.awake_until = max(self.awake_until, time.perf_counter() + seconds)
        self.awake_frames = max(self.awake_frames, frames)

    def before_frame(self, now_wanted: bool = False) -> None:
        """Wait for the display's next slot; then the frame is drawn at once when wanted (or while
        input settles), else when the next event or wake comes, or the tick."""
        rest = self.last + 1.0 / self.hz - time.perf_counter()
        if rest > 0:
            time.sleep(rest)
        if now_wanted or self.awake_frames > 0 or time.perf_counter() < self.awake_until:
            self.awake_frames = max(0, self.awake_frames - 1)
            self._between_live_frames()
        elif self.waits and not self._stop.is_set():
            self._lib.glfwWaitEventsTimeout(TICK_S)  # ctypes lets the GIL go meanwhile

    def _between_live_frames(self) -> None:
        """Wait while the engine makes a frame, up to MIN_HZ's period since the last frame drawn."""
        deadline = self.last + 1.0 / self.min_hz
        while self.busy() and not self._stop.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            if self.waits:  # the engine's wake, input or the deadline ends it
                self._lib.glfwWaitEventsTimeout(left)
            else:
                time.sleep(min(left, 0.002))

    def after_frame(self) -> None:
        self.last = time.perf_counter()

    def close(self) -> None:
        """No more waiting (the window is going)."""
        self._stop.set()
