"""DIR/manifest.jsonl: one JSON record per input (input, output, status, frames, seconds,
ms_per_frame, host, attempts, error, finished).

Records are appended as jobs end (one write of one line, flushed), so a batch that is killed
leaves every finished job recorded; a torn last line is ignored when read. The last record of
an input wins, and at the end the file is rewritten (temporary name, then rename) with one
record per input. The output folder is locked while a batch runs, so two batches never write
the same manifest or outputs.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any

DONE = ("ok", "skipped")  # statuses whose output a rerun keeps


class Busy(Exception):
    pass


class Manifest:
    def __init__(self, folder: str):
        self.path = os.path.join(folder, "manifest.jsonl")
        self._lock = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise Busy(f"another batch is writing to '{folder}' (it holds the folder's lock)") from None
        self.records: dict[str, dict[str, Any]] = {}
        self._read()

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
        """Rewrite with one record per input, atomically; release the folder."""
        try:
            if self.records:
                temp = os.path.join(os.path.dirname(self.path), ".manifest.jsonl.partial")
                with open(temp, "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(r) + "\n" for r in self.records.values())
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, self.path)
        finally:
            os.close(self._lock)
