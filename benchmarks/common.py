"""Benchmark helpers: synchronised frame timing, side-by-side runs and their results, memory, a table printer."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from fusegraph.runtime.engine import Engine


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def time_frames(engine: Engine, frames: int, warmup: int = 3, start: int = 0, after=None,
                cpu: list[float] | None = None) -> list[float]:
    """Wall-clock ms per frame, the GPU synchronised at the end of each frame (llvmpipe's timer
    queries do not report real time, so we measure with glFinish). after(engine): called after
    each timed frame, outside the timing (e.g. to read that frame's per-step timings). cpu: gets
    each frame's CPU ms (the process's, every thread: llvmpipe's rasterisers too), which other
    load on the machine moves much less than wall time."""
    for i in range(warmup):
        engine.process(start + i)
    engine.gpu.ctx.finish()
    out = []
    for i in range(frames):
        t, c = time.perf_counter(), time.process_time()
        engine.process(start + warmup + i)
        engine.gpu.ctx.finish()
        out.append((time.perf_counter() - t) * 1000.0)
        if cpu is not None:
            cpu.append((time.process_time() - c) * 1000.0)
        if after is not None:
            after(engine)
    return out


def alternate(engines: dict[str, Engine], rounds: int, frames: int, after=None,
              cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """ms per frame of each engine, the engines taking turns round after round so that all see
    the same machine load (the order reversed every other round). after(name, engine): called
    after each timed frame. cpu: gets each engine's CPU ms per frame, by name."""
    times: dict[str, list[float]] = {k: [] for k in engines}
    for r in range(rounds):
        for name, e in (engines.items() if r % 2 == 0 else reversed(engines.items())):
            times[name] += time_frames(e, frames, warmup=2, start=r * (frames + 2),
                                       after=None if after is None else (lambda e, n=name: after(n, e)),
                                       cpu=None if cpu is None else cpu.setdefault(name, []))
    return times


def finish(engines: dict[str, Engine], sink: str = "view") -> tuple[dict, dict[str, int]]:
    """After a side-by-side run: each engine's last frame at `sink` (as int, for differences) and
    its pass count; then the engines are closed."""
    outs = {k: np.array(e.sinks[sink].last, dtype=int) for k, e in engines.items()}
    passes = {k: len(e.plan.passes) for k, e in engines.items()}
    for e in engines.values():
        e.close()
    return outs, passes


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
