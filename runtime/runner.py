"""Offline (headless) runs: every frame in order, a progress bar, clean stop on Ctrl+C."""
from __future__ import annotations

import signal
import sys

from tqdm import tqdm

from fusegraph.nodes.spec import NodeError
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.trace import write_trace

OK, FAILED, INVALID, INTERRUPTED = 0, 1, 2, 130


def run_offline(engine: Engine, frames: int | None = None, trace: str | None = None, quiet: bool = False) -> int:
    """Run to the end (or `frames`); returns the CLI exit code. Errors are printed, not raised."""
    try:
        engine.open()
    except NodeError as exc:  # missing file, no camera, bad output path: the user's to fix
        print(f"fusegraph: {exc}", file=sys.stderr)
        return INVALID
    total = engine.frame_count()
    if frames is not None:
        total = frames if total is None else min(frames, total)
    if total is None:
        engine.close(ok=False)
        print("fusegraph: every source is endless (camera, looping video, pattern with frames=0): "
              "pass --frames N", file=sys.stderr)
        return INVALID
    stop = {"asked": False}

    def on_sigint(signum, frame):  # finish the frame in hand, then finalise the outputs
        stop["asked"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    done = 0
    try:
        with tqdm(total=total, unit="frame", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            while done < total and not stop["asked"]:
                if not engine.process(done):
                    break
                done += 1
                bar.update(1)
    except NodeError as exc:
        engine.close(ok=False)
        print(f"fusegraph: frame {done}: {exc}", file=sys.stderr)
        return FAILED
    except Exception:
        engine.close(ok=False)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    lost = engine.audio.counters() if engine.audio else {}
    engine.close(ok=True)
    for node, counts in lost.items():  # sound a device could not take or give in time
        for what, n in counts.items():
            if n:
                print(f"fusegraph: {node}: {n} block(s) lost ({what})", file=sys.stderr)
    if trace:
        write_trace(trace, engine.trace, {"frames": done, "renderer": engine.gpu.renderer})
    if stop["asked"]:
        print(f"fusegraph: stopped after {done} frame(s); outputs finalised", file=sys.stderr)
        return INTERRUPTED
    return OK
