"""Thread priorities for a live run: work beside the frame yields to the frame.

Live, the frame's GPU passes (the engine's thread and the GL driver's rasterisers) want both cores
for ~20 ms of every 33, and the threads beside it (the source's reader, the network's inference)
have the rest of the frame period to do their work in. At the same priority they take cores from
the frame's passes while those run, and every pass in the frame is slower live than offline; a
lower priority (a higher niceness: the kernel's weight, not a strict order) moves their work into
the frame's gaps. Linux only; elsewhere, or where not allowed, the thread keeps its priority.
"""
from __future__ import annotations

import os
import sys
import threading

BESIDE_FRAME_NICE = 5  # ~1/3 of the frame's weight: they keep up (a few ms of work per frame), but give way


def lower_this_thread(nice: int = BESIDE_FRAME_NICE) -> None:
    """Make the calling thread (and the threads it starts from now on, e.g. FFmpeg's decoder
    threads) this much nicer than it is."""
    if not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS takes a process id, not a thread's
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError):
        pass
