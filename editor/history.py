"""Undo/redo as snapshots: each step holds the graph's JSON before and after one command.

Graphs are small (tens of nodes), so a snapshot of the whole document per step is cheap and
cannot drift from the model the way hand-written inverse commands can. Consecutive pushes
with the same non-None merge token (a slider drag, a drag of several nodes) extend the
open step instead of adding one; any other push, an undo, a redo or `end_merge` closes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Snapshot = dict[str, Any]  # Graph.model_dump(mode="json", by_alias=True)


@dataclass
class Step:
    before: Snapshot
    after: Snapshot
    kind: str  # the change kind the listeners get: "structure", "param", "layout"
    token: object = None


class History:
    def __init__(self, limit: int = 500):
        self.limit = limit
        self.undo_steps: list[Step] = []
        self.redo_steps: list[Step] = []
        self.open_token: object = None  # merge token of the open (last) step, None when closed

    def clear(self) -> None:
        self.undo_steps.clear()
        self.redo_steps.clear()
        self.open_token = None

    def end_merge(self) -> None:
        self.open_token = None

    def push(self, before: Snapshot, after: Snapshot, kind: str, merge_key: object = None) -> None:
        token = None if merge_key is None else (kind, merge_key)
        self.redo_steps.clear()
        if token is not None and token == self.open_token and self.undo_steps:
            top = self.undo_steps[-1]
            top.after = after
            if top.after == top.before:  # dragged back to where it started: no step at all
                self.undo_steps.pop()
                self.open_token = None
            return
        self.undo_steps.append(Step(before, after, kind, token))
        self.open_token = token
        del self.undo_steps[:-self.limit]

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_steps)

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_steps)

    def undo(self) -> Step | None:
        self.open_token = None
        if not self.undo_steps:
            return None
        step = self.undo_steps.pop()
        self.redo_steps.append(step)
        return step

    def redo(self) -> Step | None:
        self.open_token = None
        if not self.redo_steps:
            return None
        step = self.redo_steps.pop()
        self.undo_steps.append(step)
        return step
