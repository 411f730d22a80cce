"""DIR/manifest.jsonl: one JSON record per input (input, output, status, frames, seconds,
ms_per_frame, host, attempts, error, finished).

Records are appended as jobs end (one write of one line, flushed), so a batch that is killed
leaves every finished job recorded; a torn last line is ignored when read. The last record of
an input wins, and at the end the file is rewritten (temporary name, then rename) with one
record per input. The batch's staging folder (DIR/.fusegraph-batch) is locked while it runs,
so two batches never write the same manifest or outputs.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from typing import Any

from fusegraph.runtime.atomic import write_atomic
from fusegraph.runtime.batch.jobs import STAGING

DONE = ("ok", "skipped")  # statuses whose output a rerun keeps


class Busy(Exception):
    pass


class Manifest:
    def __init__(self, folder: str):
        self.path = os.path.join(folder, "manifest.jsonl")
        self.staging = os.path.join(folder, STAGING)
        self._lock = self._take(folder)
        self.records: dict[str, dict[str, Any]] = {}
        self._read()

    def _take(self, folder: str) -> int:
        """Lock the batch's staging folder (not the output folder: that one's flock is for the
        atomic publishes in it, runtime/atomic.py). A folder another batch removed while we
        waited is a stale one: take the new one."""
        for _ in range(10):
            os.makedirs(self.staging, exist_ok=True)
            fd = os.open(self.staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.stat(self.staging).st_ino == os.fstat(fd).st_ino:
                    return fd
            except BlockingIOError:
                os.close(fd)
                raise Busy(f"another batch is writing to '{folder}' (it holds {STAGING}/)") from None
            except FileNotFoundError:
                pass
            os.close(fd)
        raise Busy(f"cannot lock '{self.staging}'")

    def _read(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a kill: that job is simply not recorded
                    if isinstance(rec, dict) and isinstance(rec.get("input"), str):
                        self.records.pop(rec["input"], None)  # last wins, and moves to the end
                        self.records[rec["input"]] = rec
        except FileNotFoundError:
            pass

    def done(self, input: str, output: str) -> dict[str, Any] | None:
        """The record that lets a rerun skip this input: ok, same output, and the output is there."""
        rec = self.records.get(input)
        if rec and rec.get("status") in DONE and rec.get("output") == output and os.path.isfile(output):
            return rec
        return None

    def add(self, rec: dict[str, Any]) -> None:
        rec = {**rec, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.records.pop(rec["input"], None)
        self.records[rec["input"]] = rec
        line = (json.dumps(rec) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: a line is whole or (killed) torn at the end
        finally:
            os.close(fd)

    def close(self) -> None:
        """Rewrite with one record per input, atomically; clear the staging folder (what killed or
        stopped jobs left there) and let go of the lock."""
        try:
            if self.records:
                write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records.values()).encode())
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)  # still locked: no other batch uses it
            os.close(self._lock)
