"""The Ray engine: the same jobs as Ray tasks on a cluster (`pip install 'fusegraph[ray]'`).

Ray does the distribution, the retries and the resource accounting: a task takes one CPU (and
one GPU where the cluster has them), and a task whose worker process dies is run again by Ray
(`max_retries`), not by us. The graph document and the files it reads besides the inputs (its
models, a backdrop image) go through Ray's object store, once per batch, and each worker
keeps them in a local cache by content hash: a worker needs only fusegraph installed. Inputs
and outputs are paths every worker sees (a shared filesystem).
"""
from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from typing import Any

from fusegraph.runtime.batch.jobs import Job
from fusegraph.runtime.batch.local import failed
from fusegraph.runtime.batch.worker import STOPPED, JobStopped


class RayMissing(Exception):
    pass


def fusegraph_job(job: Job, doc: dict, assets: dict[str, tuple[str, str, Any]], board) -> dict | None:
    """A Ray task (its worker's title reads `ray::fusegraph_job`): fetch the assets, run the job.
    None: the batch was stopping when Ray got to it, so it did not start."""
    import ray

    from fusegraph.runtime.batch.worker import run_job

    if not ray.get(board.start.remote(job.index, socket.gethostname(), os.getpid())):
        return None
    local = {key: materialise(name, digest, ref) for key, (name, digest, ref) in assets.items()}
    try:
        return run_job(job, doc, lambda frames: board.progress.remote(job.index, frames), assets=local)
    except JobStopped:  # Ray's own cancel, or a signal from outside
        return failed(job, STOPPED, 0)


class Board:
    """A Ray actor, the batch's notice board: tasks post their start and progress there and ask it
    whether they may start at all (after one Ctrl+C they may not: no race with a cancel)."""

    def __init__(self):
        self.messages: list[tuple] = []
        self.stopping = False

    def start(self, index: int, host: str, pid: int) -> bool:
        if not self.stopping:
            self.messages.append(("start", index, host, pid))
        return not self.stopping

    def progress(self, index: int, frames: int) -> None:
        self.messages.append(("progress", index, frames))

    def take(self) -> list[tuple]:
        out, self.messages = self.messages, []
        return out

    def stop(self) -> None:
        self.stopping = True


def materialise(name: str, digest: str, ref) -> str:
    """A shipped file on this worker's disk (kept by content hash, written atomically once)."""
    import ray

    folder = os.path.join(tempfile.gettempdir(), "fusegraph-batch-assets", digest[:32])
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        os.makedirs(folder, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        with os.fdopen(fd, "wb") as f:
            f.write(ray.get(ref))
        os.replace(temp, path)
    return path


def reachable(address: str | None, timeout: float = 10.0) -> None:
    """A HOST:PORT that nothing answers on fails here, in seconds (Ray itself retries for minutes)."""
    host, colon, port = (address or "").rpartition(":")
    if not colon or not port.isdigit():
        return  # None (start a local Ray), "auto", ray://...: Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayMissing(f"cannot connect to Ray at '{address}': {exc.strerror or exc}") from None


class RayEngine:
    name = "ray"

    def __init__(self, address: str | None, retries: int, workers: int | None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise RayMissing("--engine ray needs Ray: pip install 'fusegraph[ray]'") from None
        self.address, self.retries, self.cap = address, retries, workers

    def describe(self, jobs: int) -> str:
        import ray

        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        return (f"Ray at {self.address or 'a new local instance'}: {nodes} node(s), {res.get('CPU', 0):g} CPU(s), "
                f"{res.get('GPU', 0):g} GPU(s)")

    def connect(self) -> None:
        """Join the cluster (or start a local one without --address); errors are the user's to fix."""
        import logging

        import ray

        reachable(self.address)
        try:
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=True, include_dashboard=False if self.address is None else None)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError across Ray versions
            raise RayMissing(f"cannot connect to Ray at '{self.address}': {str(exc).splitlines()[0]}") from None

    def run(self, jobs: list[Job], doc: dict, events, control) -> None:
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(fusegraph_job).options(num_cpus=1, num_gpus=gpus, max_retries=self.retries,
                                                  retry_exceptions=False)
        board = ray.remote(Board).options(num_cpus=0).remote()
        doc_ref = ray.put(doc)
        assets = {}
        for key, path in (jobs[0].assets if jobs else {}).items():
            with open(path, "rb") as f:
                data = f.read()
            assets[key] = (os.path.basename(path), hashlib.sha256(data).hexdigest(), ray.put(data))
        waiting, running, stopped = list(jobs), {}, False
        by_index = {j.index: j for j in jobs}
        starts = {j.index: 0 for j in jobs}
        try:
            while waiting or running:
                if control.discard:
                    break
                if control.stopping and not stopped:  # Ctrl+C once: what has not started never will
                    ray.get(board.stop.remote())
                    stopped = True
                while waiting and not control.stopping and (self.cap is None or len(running) < self.cap):
                    job = waiting.pop(0)
                    running[task.remote(job, doc_ref, assets, board)] = job
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.25)
                self._drain(board, by_index, starts, events)
                for ref in done:
                    job = running.pop(ref)
                    try:
                        result = ray.get(ref)
                        if result is None:
                            continue  # not started: the batch was stopping
                        record = {**result, "attempts": starts[job.index]}
                    except ray.exceptions.RayError as exc:  # its worker died more than max_retries times
                        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        record = failed(job, f"{type(exc).__name__}: {why}; tried {starts[job.index]} time(s)",
                                        starts[job.index])
                    events.done(job, record)
        finally:
            for ref, job in running.items():  # Ctrl+C twice: end them now
                ray.cancel(ref, force=True)
                if starts[job.index]:  # what never started is not recorded: a rerun runs it
                    events.done(job, failed(job, STOPPED, starts[job.index]))
            ray.kill(board)
            ray.shutdown()

    def _drain(self, board, by_index, starts, events) -> None:
        import ray

        for kind, index, *data in ray.get(board.take.remote()):
            job = by_index[index]
            if kind == "start":
                starts[index] += 1
                if starts[index] > 1:
                    events.retry(job, "its Ray worker died", starts[index], self.retries + 1)
                events.start(job, data[0], data[1], starts[index])
            else:
                events.progress(job, data[0])
