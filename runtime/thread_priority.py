"""A thread's priority (Linux): a live run may make its worker nicer than the UI's thread.

Measured and not kept (./fg bench --only live, 2026-11-30): running the threads beside the frame
(source readers, the network) at nice +5 or +10 kept them out of the frame's passes on a quiet
machine (live/offline per node 1.3-1.45x -> 1.0-1.3x) but, with two busy programs beside it, nice
+5 cost the pipeline 8-12% of its frame rate and nice +10 half of it (the engine waits on the
reader, and a nice thread gives way to every other program, not only to the frame).
"""
from __future__ import annotations

import os
import sys
import threading


def lower_this_thread(nice: int) -> None:
    """Make the calling thread (and the threads it starts from now on, e.g. the GL driver's) this
    much nicer than it is."""
    if not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS takes a process id, not a thread's
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError):  # not allowed: the thread keeps its priority
        pass
