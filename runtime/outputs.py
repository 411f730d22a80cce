"""Which nodes write files, and where: the editor's Record toggles and Render ask this.

A file sink is a sink whose params hold a path to save to (`path_field(save=True)`). A live run
opens only the file sinks it is told to record (`Engine(record=...)`): running a graph in the
editor writes no file the user did not ask for; `fusegraph run` and Render write them all."""
from __future__ import annotations

import os

from fusegraph.nodes import REGISTRY
from fusegraph.runtime.graph import Graph


def output_param(kind: str) -> str | None:
    """The name of the param that says where a node of `kind` writes (None: it writes no file)."""
    spec = REGISTRY[kind]
    if spec.role != "sink":
        return None
    for name, field in spec.Params.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("widget") == "file" and extra.get("save"):
            return name
    return None


def output_paths(graph: Graph) -> dict[str, str]:
    """node id -> the absolute path it writes, for every file sink of `graph` with a path
    (relative to the working directory, as the sinks take them)."""
    out = {}
    for node in graph.nodes:
        name = output_param(node.type)
        path = getattr(node.params, name, "") if name else ""
        if path:
            out[node.id] = os.path.abspath(path)
    return out


def is_file_sink(kind: str) -> bool:
    return output_param(kind) is not None
