"""Texture pool by liveness: values whose lifetimes do not overlap share one texture."""
from __future__ import annotations

from fusegraph.runtime.plan import Step, Value


def assign_slots(steps: list[Step], values: list[Value]) -> list[tuple[tuple[int, int], int, str]]:
    """Give each materialised value a physical texture slot; return the slots' formats.

    A value lives from the step that writes it to the last step that reads it (inclusive,
    so a pass never reads and writes the same texture).
    """
    pos = {s: i for i, s in enumerate(steps)}
    writer: dict[Value, int] = {}
    last_read: dict[Value, int] = {}
    for s in steps:
        for v in s.writes():
            writer[v] = pos[s]
        for v in s.reads():
            last_read[v] = max(last_read.get(v, -1), pos[s])
    slots: list[tuple[tuple[int, int], int, str]] = []
    free_at: list[int] = []  # step index after which the slot is free
    for v in sorted((v for v in values if v.texture), key=lambda v: writer[v]):
        fmt = (v.size, v.components, v.dtype)
        start, end = writer[v], last_read.get(v, writer[v])
        for i, f in enumerate(slots):
            if f == fmt and free_at[i] < start:
                v.slot = i
                free_at[i] = end
                break
        else:
            v.slot = len(slots)
            slots.append(fmt)
            free_at.append(end)
    return slots
