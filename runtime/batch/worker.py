"""One batch job, on whichever engine runs it: exactly the `fusegraph run` path (the engine,
run_offline, the sinks' own atomic publish), writing into the job's staging folder; only a
finished, published file is then moved to the output name (one rename, same filesystem).

A worker that is killed mid-job leaves at most its staging folder, which the next attempt
(or the batch, at the end) clears: the output name never holds a half-written file.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import time
from contextlib import redirect_stderr
from typing import Any, Callable

from fusegraph.runtime.atomic import Partial, publish
from fusegraph.runtime.batch.jobs import Job, job_doc
from fusegraph.runtime.errors import GraphInvalid

STOPPED = "stopped before it finished (Ctrl+C)"

_GPU = None  # one GL context per worker process, kept across its jobs


def worker_gpu():
    global _GPU
    if _GPU is None:
        from fusegraph.runtime.gpu import Gpu

        _GPU = Gpu()
    return _GPU


class JobStopped(Exception):
    """A signal (SIGTERM, SIGINT, SIGHUP) made run_offline stop the job; its output was not published.
    The local worker exits with `code` (its job is then retried as after any death); a Ray task
    reports the job stopped."""

    def __init__(self, code: int):
        super().__init__(f"stopped by a signal (exit code {code})")
        self.code = code


def error_text(captured: str) -> str:
    """What run_offline printed for the user, as one line (its `fusegraph: ` prefix dropped)."""
    lines = [ln.strip() for ln in captured.splitlines() if ln.strip()]
    lines = [ln.removeprefix("fusegraph: ") for ln in lines]
    return "; ".join(lines) or "failed"


def run_job(job: Job, doc: dict[str, Any], report: Callable[[int], None],
            assets: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one job; returns its manifest record. report(frames) is called a few times a second."""
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.loader import parse_graph
    from fusegraph.runtime.runner import FAILED, INVALID, OK, run_offline

    t0 = time.perf_counter()
    shutil.rmtree(job.staging, ignore_errors=True)  # what a killed attempt left
    os.makedirs(job.staging)
    engine = None
    captured = io.StringIO()
    try:
        graph = parse_graph(job_doc(doc, job, job.staged, job.assets if assets is None else assets))
        engine = Engine(graph, gpu=worker_gpu(), search_dirs=job.search_dirs)
        engine.process = counted(engine.process, lambda: engine.frames_done, report)
        with redirect_stderr(captured):
            rc = run_offline(engine, quiet=True)
        if rc > FAILED and rc != INVALID:  # a signal stopped it (130, 143, 129): not a failure of the file
            raise JobStopped(rc)
        error = None if rc == OK else error_text(captured.getvalue())
        if error is None and not os.path.isfile(job.staged):
            error = "no frames: nothing was written"
        if error is None:
            try:
                publish_output(job)
            except OSError as exc:  # the output folder went away, the disk is full
                error = f"cannot write '{job.output}': {exc.strerror or exc}"
    except GraphInvalid as exc:
        error = "; ".join(str(e) for e in exc.errors)
    except JobStopped:
        raise
    except Exception as exc:  # a bug or a GL failure: reported against this file, the batch goes on
        error = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(job.staging, ignore_errors=True)
    seconds = time.perf_counter() - t0
    frames = engine.frames_done if engine is not None else 0
    return {"input": job.input, "output": job.output, "status": "failed" if error else "ok",
            "frames": frames, "seconds": round(seconds, 3),
            "ms_per_frame": round(seconds * 1000.0 / frames, 2) if frames else None,
            "host": socket.gethostname(), "pid": os.getpid(), "error": error}


def publish_output(job: Job) -> None:
    """The finished file over the output name, as every fusegraph output is published (under the
    folder's lock, the old file's permissions kept, flushed to disk)."""
    run = f"{os.getpid()}-{secrets.token_hex(4)}"
    target = os.path.realpath(job.output)
    publish([Partial(job.staged, target, run, job.output, job.output_at[0])])


def counted(process: Callable[[int], bool], frames: Callable[[], int], report: Callable[[int], None],
            every: float = 0.25) -> Callable[[int], bool]:
    """engine.process that also reports the frames done so far, at most every `every` seconds."""
    last = [0.0]

    def run(index: int) -> bool:
        ok = process(index)
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            report(frames())
        return ok

    return run
