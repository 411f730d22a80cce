"""A private X server for the editor tests (its number chosen by the server: -displayfd)."""
from __future__ import annotations

import os
import subprocess


def start_xvfb() -> tuple[str, subprocess.Popen]:
    """(":N", the Xvfb process); terminate the process when done."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    assert number, "Xvfb did not start"
    return f":{number}", proc
