"""The local engine: N worker processes on this machine (multiprocessing, 'spawn': each has its
own GL context and model sessions, nothing inherited from the parent's).

A worker runs jobs one after another over a pipe (imports, GL context and ONNX sessions are
paid once per worker, not per file). A worker that dies mid-job (killed, out of memory, a GL
crash) is seen by its process sentinel: the job goes back to the front of the queue, up to
`retries` more times, on a fresh worker. Workers sit in their own process group, so the
terminal's Ctrl+C reaches only the batch, which decides what they do (driver.Control).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import sys
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from fusegraph.runtime.batch.jobs import Job
from fusegraph.runtime.batch.worker import STOPPED, JobStopped


def worker_main(conn) -> None:
    """A worker process: run each job it is sent until it is sent None (or the batch is gone)."""
    os.setpgrp()  # out of the terminal's foreground group: Ctrl+C is the batch's to handle
    from fusegraph.runtime.batch.worker import run_job

    host, pid = socket.gethostname(), os.getpid()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the batch went away
        if msg is None:
            return
        job, doc = msg
        try:
            conn.send(("start", job.index, host, pid))
            record = run_job(job, doc, lambda frames: conn.send(("progress", job.index, frames)))
            conn.send(("done", job.index, record))
        except OSError:
            return  # the batch went away mid-job (run_job has discarded the job's output)
        except JobStopped as exc:  # someone signalled this worker: it ends like a killed one
            sys.exit(exc.code)


@dataclass
class Worker:
    process: Any
    conn: Any
    job: Job | None = None


def death(process) -> str:
    """Why a worker process ended, in words."""
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed, or out of memory)" if -code == signal.SIGKILL else ""
        return f"the worker process died of {name}{hint}"
    if code is not None and code > 128:  # run_offline stopped by a signal, then the worker ended
        try:
            return f"the worker process was stopped by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"the worker process exited with code {code} mid-job"


class LocalEngine:
    name = "local"

    def __init__(self, workers: int, retries: int):
        self.size, self.retries = workers, retries
        self.ctx = mp.get_context("spawn")

    def describe(self, jobs: int) -> str:
        return f"{min(self.size, jobs)} local worker process(es)"

    def _spawn(self) -> Worker:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=worker_main, args=(child,), name="fusegraph-batch-worker", daemon=True)
        p.start()
        child.close()
        return Worker(p, parent)

    def run(self, jobs: list[Job], doc: dict, events, control) -> None:
        queue = deque(jobs)
        attempts = {j.index: 0 for j in jobs}
        workers: list[Worker] = []
        try:
            while queue or any(w.job for w in workers):
                if control.discard:
                    break
                while queue and not control.stopping and (len(workers) < self.size or any(not w.job for w in workers)):
                    w = next((w for w in workers if not w.job), None)
                    if w is None:
                        w = self._spawn()
                        workers.append(w)
                    w.job = queue.popleft()
                    attempts[w.job.index] += 1
                    try:
                        w.conn.send((w.job, doc))
                    except OSError:  # it died idle: the sentinel below sees to it
                        pass
                busy = [w for w in workers if w.job]
                if not busy:
                    break  # stopping, and nothing runs any more
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.25)
                for w in busy:
                    if self._drain(w, events, attempts):
                        continue
                    if not w.process.is_alive():  # died mid-job
                        w.process.join()
                        job, why = w.job, death(w.process)
                        workers.remove(w)
                        w.conn.close()
                        if attempts[job.index] <= self.retries:
                            events.retry(job, why, attempts[job.index] + 1, self.retries + 1)
                            queue.appendleft(job)
                        else:
                            events.done(job, failed(job, f"{why}; tried {attempts[job.index]} time(s)",
                                                    attempts[job.index]))
                for w in [w for w in workers if not w.job and not w.process.is_alive()]:
                    workers.remove(w)  # died between jobs: nothing lost
        finally:
            for w in workers:
                if w.job:  # Ctrl+C twice (or a failure here): stop it now; the batch clears its staging
                    w.process.kill()
                    events.done(w.job, failed(w.job, STOPPED, attempts[w.job.index]))
                else:
                    try:
                        w.conn.send(None)
                    except OSError:
                        pass
            for w in workers:
                w.process.join(timeout=10)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
                w.conn.close()

    def _drain(self, w: Worker, events, attempts: dict[int, int]) -> bool:
        """Handle what the worker sent; True once its job is done (the worker is free again)."""
        try:
            while w.conn.poll():
                kind, index, *data = w.conn.recv()
                if kind == "start":
                    events.start(w.job, data[0], data[1], attempts[index])
                elif kind == "progress":
                    events.progress(w.job, data[0])
                else:
                    job, w.job = w.job, None
                    events.done(job, {**data[0], "attempts": attempts[index]})
                    return True
        except (EOFError, OSError):
            pass  # it died: the caller sees the process gone
        return False


def failed(job: Job, error: str, attempts: int) -> dict[str, Any]:
    return {"input": job.input, "output": job.output, "status": "failed", "frames": 0, "seconds": None,
            "ms_per_frame": None, "host": socket.gethostname(), "pid": None, "error": error,
            "attempts": attempts}
