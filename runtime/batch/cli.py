"""`fusegraph batch PRESET INPUT... --out-dir DIR`: the driver. runtime/cli.py only calls
add_batch_parser.

Exit codes as for `run`: 0 every input ok (or skipped: already done), 1 some failed (the others
still ran), 2 invalid graph or arguments (nothing started), 130 / 143 / 129 stopped by Ctrl+C /
SIGTERM / SIGHUP. Ctrl+C once: no new job starts, the running ones finish and are recorded;
twice (or SIGTERM, SIGHUP): they are stopped and discarded. Either way the manifest says what
is done and a rerun continues.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from fusegraph.runtime.batch.jobs import Job, PlanError, plan_jobs
from fusegraph.runtime.batch.manifest import Busy, Manifest
from fusegraph.runtime.batch.progress import Progress, short

OK, FAILED, INVALID = 0, 1, 2


def default_workers() -> int:
    """What this machine can hold: one worker per GPU where there are (NVIDIA), else per core."""
    gpus = [d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()] if os.path.isdir("/dev") else []
    return len(gpus) or len(os.sched_getaffinity(0))


class Control:
    """Signals, as the engines see them: Ctrl+C once stops handing out jobs (the running ones
    finish), twice discards the running ones; SIGTERM and SIGHUP (kill, timeout, the terminal
    closed) discard at once. The exit code is 128 + the first signal's number."""

    def __init__(self, say):
        self.stopping = self.discard = False
        self.signal = 0
        self.say = say

    def __call__(self, signum, frame) -> None:
        self.signal = self.signal or signum
        if self.stopping or signum != signal.SIGINT:
            self.stopping = self.discard = True
            self.say("fusegraph: stopping now: the running files are discarded")
        else:
            self.stopping = True
            self.say("fusegraph: stopping: no new files start; the running ones finish "
                     "(Ctrl+C again to discard them)")


class Events:
    """What the engines report: each finished job goes into the manifest and on the screen."""

    def __init__(self, manifest: Manifest, progress: Progress):
        self.manifest, self.view = manifest, progress
        self.records: list[dict] = []

    def start(self, job: Job, host: str, pid: int, attempt: int) -> None:
        self.view.start(job.index)

    def progress(self, job: Job, frames: int) -> None:
        self.view.progress(job.index, frames)

    def retry(self, job: Job, why: str, attempt: int, of: int) -> None:
        self.view.frames.pop(job.index, None)
        self.view.line(f"retry   {short(job.input)}: {why}; attempt {attempt} of {of}")

    def done(self, job: Job, rec: dict) -> None:
        self.manifest.add(rec)
        self.records.append(rec)
        self.view.done(job.index, rec)


def cmd_batch(args) -> int:
    from fusegraph.runtime.cli import preset_dirs
    from fusegraph.runtime.loader import UsageError, load

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if args.retries < 0:
        raise UsageError("--retries must be 0 or more")
    if args.address and args.engine != "ray":
        raise UsageError("--address is for --engine ray")
    graph = load(args.preset, args.set)
    try:
        jobs = plan_jobs(graph, args.inputs, args.out_dir, input_at=args.input, output_at=args.output,
                         name=args.name, search_dirs=preset_dirs(args.preset))
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UsageError(f"--out-dir '{args.out_dir}' is a file, not a folder")
    if args.engine == "ray":
        from fusegraph.runtime.batch.ray_engine import RayEngine, RayMissing

        try:
            engine = RayEngine(args.address, args.retries, args.workers)
            engine.connect()
        except RayMissing as exc:
            raise UsageError(str(exc)) from None
    else:
        from fusegraph.runtime.batch.local import LocalEngine

        engine = LocalEngine(args.workers or default_workers(), args.retries)
    try:
        os.makedirs(args.out_dir, exist_ok=True)
        if not os.access(args.out_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "no permission to write in it")
        manifest = Manifest(args.out_dir)
    except Busy as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out-dir '{args.out_dir}': {exc.strerror or exc}") from None
    try:
        return run_batch(engine, jobs, graph.model_dump(mode="json", by_alias=True), manifest, args)
    finally:
        manifest.close()


def run_batch(engine, jobs: list[Job], doc: dict, manifest: Manifest, args) -> int:
    todo, skipped = [], 0
    for job in jobs:
        rec = None if args.force else manifest.done(job.input, job.output)
        if rec is None:
            todo.append(job)
        else:
            manifest.add({**rec, "status": "skipped"})
            skipped += 1
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"fusegraph: batch of {len(jobs)} file(s): {len(todo)} to run, {skipped} already done (skipped)"
        + (f", on {engine.describe(len(todo))}" if todo else ""))
    progress = Progress(len(todo), quiet=args.quiet)
    events = Events(manifest, progress)
    control = Control(lambda text: progress.bar.write(text, file=sys.stderr))
    previous = {s: signal.signal(s, control) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        if todo:
            engine.run(todo, doc, events, control)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        progress.close()
    failed = [r for r in events.records if r["status"] != "ok"]
    left = len(todo) - len(events.records)
    say(f"fusegraph: {len(events.records) - len(failed)} ok, {len(failed)} failed, {skipped} skipped"
        + (f", {left} not started" if left else "") + f"; manifest: {short(manifest.path)}")
    if control.signal:
        return 128 + control.signal
    return FAILED if failed else OK


def add_batch_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    b = sub.add_parser("batch", help="run a preset over many files, in parallel (local processes or Ray)",
                       description="Run a preset over many input files, one job per file; see README 'Batch'.")
    b.add_argument("preset", help="a graph file, or a shipped preset's name")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (their media files) or globs")
    b.add_argument("--out-dir", required=True, metavar="DIR", help="where outputs and manifest.jsonl go")
    b.add_argument("--input", action="append", default=[], metavar="NODE.PARAM",
                   help="the param each input replaces (default: the path of the one file source; repeatable)")
    b.add_argument("--output", metavar="NODE.PARAM", help="the param each output replaces (default: the one file sink)")
    b.add_argument("--name", default="{stem}{ext}",
                   help="output file name: {stem} {ext} (the preset output's) {name} {input_ext} {parent}")
    b.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", help="as for run, every job")
    b.add_argument("--workers", type=int, help="jobs at once (local default: cores, or GPUs; ray: the cluster's)")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: worker processes here (default); ray: tasks on a Ray cluster (fusegraph[ray])")
    b.add_argument("--address", help="Ray cluster address (host:port, or auto); without it a local Ray starts")
    b.add_argument("--retries", type=int, default=2, help="reruns of a job whose worker process died")
    b.add_argument("--force", action="store_true", help="redo inputs the manifest says are done")
    b.add_argument("--quiet", action="store_true", help="no progress bar (the per-file lines stay)")
    b.set_defaults(func=cmd_batch)
    return b
