"""Chrome / Perfetto trace (the JSON array format): one row per node or fused pass."""
from __future__ import annotations

import json
import os

from fusegraph.runtime.atomic import write_atomic


def write_trace(path: str | os.PathLike, events: list[tuple[str, float, float]], meta: dict | None = None) -> None:
    """events: (row name, start seconds, duration seconds). Rows keep the order they first appear in."""
    rows: dict[str, int] = {}
    out = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "fusegraph"}}]
    for name, start, dur in events:
        if name not in rows:
            rows[name] = len(rows) + 1
            out.append({"ph": "M", "pid": 1, "tid": rows[name], "name": "thread_name", "args": {"name": name}})
            out.append({"ph": "M", "pid": 1, "tid": rows[name], "name": "thread_sort_index",
                        "args": {"sort_index": rows[name]}})
        out.append({"ph": "X", "pid": 1, "tid": rows[name], "name": name,
                    "ts": round(start * 1e6, 3), "dur": round(dur * 1e6, 3)})
    doc = {"traceEvents": out, "displayTimeUnit": "ms", "otherData": meta or {}}
    write_atomic(path, json.dumps(doc).encode("utf-8"))  # whole or not at all, per run
