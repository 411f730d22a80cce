"""Where a graph writes: every file path param a sink saves to, and which of them lead outside
the current folder (an absolute path, or `..`). `fusegraph plan` and the editor's plan view
list them; `fusegraph run` writes outside the current folder only what the user named
(--set) or allowed (--allow-outside), never what a shared preset alone asks for."""
from __future__ import annotations

import os

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import printable
from fusegraph.runtime.graph import Graph


def written_paths(graph: Graph) -> list[tuple[str, str, str]]:
    """(node, param, path) for each file a sink of `graph` would write (empty paths left out)."""
    out = []
    for node in graph.nodes:
        fields = REGISTRY[node.type].Params.model_fields
        for name, field in fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            value = getattr(node.params, name, "")
            if extra.get("save") and isinstance(value, str) and value:
                out.append((node.id, name, value))
    return out


def is_outside(path: str, folder: str | None = None) -> bool:
    """Whether `path` (relative to `folder`, default the CWD) leads outside that folder,
    symbolic links followed."""
    base = os.path.realpath(folder or os.getcwd())
    target = os.path.realpath(os.path.join(base, path))
    return os.path.commonpath([base, target]) != base


def describe_outputs(graph: Graph) -> str:
    """One line per file the graph writes, those outside the current folder marked."""
    lines = []
    for node, param, path in written_paths(graph):
        where = os.path.abspath(path)
        mark = "  (OUTSIDE the current folder)" if is_outside(path) else ""
        lines.append(f"  writes  {node}.{param}: {printable(where, 600)}{mark}")  # the preset's text, made safe
    return "\n".join(["files written:"] + lines) if lines else ""
