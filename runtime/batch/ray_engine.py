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

from runtime.batch.jobs import Job
from runtime.batch.local import STOPPED, failed


class RayMissing(Exception):
    pass


def fusegraph_job(job: Job, doc: dict, assets: dict[str, tuple[str, str, Any]], queue) -> dict:
    """A Ray task (its worker's title reads `ray::fusegraph_job`): fetch the assets, run the job."""
    from runtime.batch.worker import run_job

    queue.put(("start", job.index, socket.gethostname(), os.getpid()))
    local = {key: materialise(name, digest, ref) for key, (name, digest, ref) in assets.items()}
    record = run_job(job, doc, lambda frames: queue.put(("progress", job.index, frames)), assets=local)
    return record


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
        from ray.util.queue import Queue

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(fusegraph_job).options(num_cpus=1, num_gpus=gpus, max_retries=self.retries,
                                                  retry_exceptions=False)
        queue = Queue(actor_options={"num_cpus": 0})
        doc_ref = ray.put(doc)
        assets = {}
        for key, path in (jobs[0].assets if jobs else {}).items():
            data = open(path, "rb").read()
            assets[key] = (os.path.basename(path), hashlib.sha256(data).hexdigest(), ray.put(data))
        waiting, running, withdrawn = list(jobs), {}, set()
        by_index = {j.index: j for j in jobs}
        starts = {j.index: 0 for j in jobs}
        try:
            while waiting or running:
                if control.discard:
                    break
                if control.stopping:  # Ctrl+C once: what Ray has not started yet is withdrawn
                    for ref, job in running.items():
                        if not starts[job.index] and ref not in withdrawn:
                            ray.cancel(ref)
                            withdrawn.add(ref)
                while waiting and not control.stopping and (self.cap is None or len(running) < self.cap):
                    job = waiting.pop(0)
                    running[task.remote(job, doc_ref, assets, queue)] = job
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.25)
                self._drain(queue, by_index, starts, events)
                for ref in done:
                    job = running.pop(ref)
                    try:
                        record = {**ray.get(ref), "attempts": starts[job.index]}
                    except ray.exceptions.TaskCancelledError:
                        if not starts[job.index]:
                            continue  # withdrawn before it started: not run, not recorded
                        record = failed(job, STOPPED, starts[job.index])
                    except ray.exceptions.RayError as exc:  # its worker died more than max_retries times
                        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        record = failed(job, f"{type(exc).__name__}: {why}; tried {starts[job.index]} time(s)",
                                        starts[job.index])
                    events.done(job, record)
        finally:
            for ref, job in running.items():  # Ctrl+C twice: end them now
                ray.cancel(ref, force=True)
                events.done(job, failed(job, STOPPED, starts[job.index]))
            ray.kill(queue.actor)
            ray.shutdown()

    def _drain(self, queue, by_index, starts, events) -> None:
        for kind, index, *data in queue.get_nowait_batch(queue.qsize()):
            job = by_index[index]
            if kind == "start":
                starts[index] += 1
                if starts[index] > 1:
                    events.retry(job, "its Ray worker died", starts[index], self.retries + 1)
                events.start(job, data[0], data[1], starts[index])
            else:
                events.progress(job, data[0])
