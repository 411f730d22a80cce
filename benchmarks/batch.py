"""Batch throughput: the same files through a shell loop of `fusegraph run`, `fusegraph batch` with
1 and 2 local workers, and with Ray on a local cluster of 2 CPUs (or `--address` of a real one),
side by side in one run. `./fg bench --only batch [--address HOST:PORT]`

Per engine: files per minute and frames per second over the wall clock of the whole command
(process start-up included, as a user waits for it), the overhead per job (what a worker slot
spends not running a job: start-up, imports, GL context, scheduling, shipping the graph), what
one more 1-frame file adds to a batch (the engine's cost per job once its workers are up), and
scaling efficiency (throughput of 2 workers / 2 x that of 1).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from tests.media import write_clip  # noqa: E402

PRESET = str(Path(__file__).resolve().parent.parent / "presets" / "background_blur.json")
TINY = 42


def fusegraph() -> str:
    exe = Path(sys.executable).parent / "fusegraph"
    return str(exe) if exe.exists() else "fusegraph"


def timed(args: list[str], cwd: Path, env: dict | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run([fusegraph(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"fusegraph {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def job_seconds(out: Path) -> tuple[float, int]:
    """(sum of the jobs' own seconds, frames) from a batch's manifest."""
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in recs), recs
    return sum(r["seconds"] for r in recs), sum(r["frames"] for r in recs)


def run(files: int = 8, frames: int = 30, size=(640, 360), address: str | None = None) -> dict:
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "clips").mkdir()
        for i in range(files):
            write_clip(work / "clips" / f"take{i:02d}.mp4", width=size[0], height=size[1], frames=frames)
        total_frames = files * frames
        (work / "tiny").mkdir()
        for i in range(TINY):  # one frame each: what a job costs when the work itself is nothing
            write_clip(work / "tiny" / f"t{i:02d}.mp4", width=64, height=48, frames=1)
        rows: dict[str, dict] = {}

        def record(name: str, wall: float, slots: int, busy: float | None, args: list[str] = (),
                   env: dict | None = None) -> None:
            over = (wall * slots - busy) / files if busy is not None else None
            marginal = None
            if busy is not None:  # (wall of TINY jobs - wall of 2) / (TINY - 2): start-up cancels out
                few = timed(["batch", PRESET, *[f"tiny/t{i:02d}.mp4" for i in range(2)], "--out-dir",
                             str(work / f"few{len(rows)}"), "--quiet", *args], work, env)
                many = timed(["batch", PRESET, "tiny", "--out-dir", str(work / f"many{len(rows)}"), "--quiet",
                              *args], work, env)
                marginal = (many - few) / (TINY - 2) * slots  # a worker's time per job
            rows[name] = {"wall": wall, "files_min": files * 60.0 / wall, "fps": total_frames / wall,
                          "overhead": over, "marginal": marginal, "slots": slots}

        t = time.perf_counter()  # what users do today: one `run` after another
        for i in range(files):
            timed(["run", PRESET, "--quiet", "--set", f"source.path=clips/take{i:02d}.mp4",
                   "--set", f"out.path=loop_{i:02d}.mp4"], work)
        record("shell loop of run", time.perf_counter() - t, 1, None)
        for workers in (1, 2):
            out = work / f"local{workers}"
            wall = timed(["batch", PRESET, "clips", "--out-dir", str(out), "--workers", str(workers), "--quiet"], work)
            record(f"batch, local x{workers}", wall, workers, job_seconds(out)[0], ["--workers", str(workers)])
        ray_row = "batch, ray x2" + ("" if address else " (local cluster)")
        if address:
            ray_args = ["--engine", "ray", "--address", address, "--workers", "2"]
            wall = timed(["batch", PRESET, "clips", "--out-dir", str(work / "ray"), *ray_args, "--quiet"], work)
            record(ray_row, wall, 2, job_seconds(work / "ray")[0], ray_args)
        else:
            from tests.ray_head import local_ray_head

            with local_ray_head(cpus=2) as (addr, _, env):
                ray_args = ["--engine", "ray", "--address", addr, "--workers", "2"]
                wall = timed(["batch", PRESET, "clips", "--out-dir", str(work / "ray"), *ray_args, "--quiet"],
                             work, env)
                record(ray_row, wall, 2, job_seconds(work / "ray")[0], ray_args, env)
    one, two = rows["batch, local x1"], rows["batch, local x2"]
    speedup = two["fps"] / one["fps"]
    print(f"\n== batch: background_blur.json over {files} clips of {frames} frames at {size[0]}x{size[1]}, "
          f"{os.cpu_count()} cores ==")
    print(table([["engine", "wall s", "files/min", "frames/s", "overhead per job s", "1-frame job, worker s"],
                 *[[k, f"{r['wall']:.1f}", f"{r['files_min']:.1f}", f"{r['fps']:.1f}",
                    "-" if r["overhead"] is None else f"{r['overhead']:.2f}",
                    "-" if r["marginal"] is None else f"{r['marginal']:.3f}"] for k, r in rows.items()]]))
    print(f"2 local workers / 1: {speedup:.2f}x throughput, scaling efficiency {speedup / 2:.0%}; "
          f"batch x1 vs the shell loop: {one['fps'] / rows['shell loop of run']['fps']:.2f}x; "
          f"ray x2 vs local x2: {rows[ray_row]['fps'] / two['fps']:.2f}x")
    print(f"(load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: the machine is shared; "
          "overhead per job = (wall x workers - the jobs' own seconds) / files; 1-frame job = what one more 1-frame "
          f"64x48 file costs a worker: (wall of {TINY} - wall of 2) / {TINY - 2} x workers)")
    return {"rows": rows, "speedup": speedup}


if __name__ == "__main__":
    run()
