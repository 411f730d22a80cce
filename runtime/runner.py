"""Offline (headless) runs: every frame in order, a progress bar, a clean stop on Ctrl+C,
SIGTERM or SIGHUP: the frame in hand is finished and the outputs are finalised (playable files),
exit code 128 + the signal's number (130, 143, 129)."""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from tqdm import tqdm

from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.cli import FAILED, INTERRUPTED, INVALID, OK  # noqa: F401  (the exit codes)
from fusegraph.runtime.trace import write_trace

if TYPE_CHECKING:  # the engine (GL, OpenCV) is imported by whoever runs one, not by the CLI's start
    from fusegraph.runtime.engine import Engine
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals() -> Iterator[dict]:
    """While inside: Ctrl+C, SIGTERM (kill, timeout) and SIGHUP (the terminal closed) only ask
    the run to stop (`stop["signal"]`), so it can finalise its outputs. Outside the main thread
    (tests) signals are left alone."""
    stop: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum, frame):
        stop["signal"] = stop["signal"] or signum

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)



def run_offline(engine: Engine, frames: int | None = None, trace: str | None = None, quiet: bool = False) -> int:
    """Run to the end (or `frames`); returns the CLI exit code. Errors are printed, not raised."""
    with stop_on_signals() as stop:  # from the first output opened to the last one published
        return _run(engine, frames, trace, quiet, stop)


def _run(engine: Engine, frames: int | None, trace: str | None, quiet: bool, stop: dict) -> int:
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
    done = 0
    try:
        with tqdm(total=total, unit="frame", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            while done < total and not stop["signal"]:
                if not engine.process(done):
                    break
                done += 1
                bar.update(1)
    except NodeError as exc:
        engine.close(ok=False)
        print(f"fusegraph: frame {done}: {exc}", file=sys.stderr)
        return FAILED
    except BaseException:
        engine.close(ok=False)
        raise
    lost = engine.audio.counters() if engine.audio else {}
    try:
        engine.close(ok=True)  # all outputs published together, or none (the disk is full)
    except NodeError as exc:
        print(f"fusegraph: {exc}", file=sys.stderr)
        return FAILED
    for node, counts in lost.items():  # sound a device could not take or give in time
        for what, n in counts.items():
            if n:
                print(f"fusegraph: {node}: {n} block(s) lost ({what})", file=sys.stderr)
    if trace:
        try:
            write_trace(trace, engine.trace, {"frames": done, "renderer": engine.gpu.renderer})
        except OSError as exc:
            print(f"fusegraph: cannot write the trace '{trace}': {exc.strerror or exc}", file=sys.stderr)
            return FAILED
    if stop["signal"]:
        name = signal.Signals(stop["signal"]).name
        print(f"fusegraph: stopped ({name}) after {done} frame(s); outputs finalised", file=sys.stderr)
        return 128 + stop["signal"]
    return OK
