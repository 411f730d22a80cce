"""Older graph formats migrate forward, one step per version.

Version 1 (the first prototype's files): links were a list of 4-item arrays
[from_node, from_port, to_node, to_port] under "edges", and positions were {"x":, "y":}.
Version 2 -> 3: the editor's comments (frames around groups of nodes: "comments", a list of
{"id", "text", "rect": [x, y, w, h]}) and reroute dots (a link's "via": [[x, y], ...]) came in;
both optional, so a version 2 file is a version 3 file as it is (the number tells an older
fusegraph that it cannot read what a newer one saved, instead of failing on unknown keys).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

FORMAT_VERSION = 3


def _v1_to_v2(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k not in ("edges", "version")}
    edges = doc.get("edges", [])
    # edges or nodes that are not lists are left as they are, for the loader to report once
    out["links"] = [{"from": f"{e[0]}.{e[1]}", "to": f"{e[2]}.{e[3]}"}
                    if isinstance(e, list) and len(e) == 4 else e for e in edges] if isinstance(edges, list) else edges
    for node in out.get("nodes", []) if isinstance(out.get("nodes"), list) else ():
        pos = node.get("position") if isinstance(node, dict) else None
        if isinstance(pos, dict):
            node.pop("position")
            node["pos"] = [pos.get("x", 0.0), pos.get("y", 0.0)]
    return out


def _v2_to_v3(doc: dict) -> dict:
    return doc  # comments and reroutes are optional: nothing to change


STEPS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a document to FORMAT_VERSION (raises ValueError for unknown or future versions)."""
    version = doc.get("format", doc.get("version", 1 if "edges" in doc else FORMAT_VERSION))
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"unknown format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"format version {version} is newer than this fusegraph reads ({FORMAT_VERSION})")
    doc = copy.deepcopy(doc)
    while version < FORMAT_VERSION:
        doc = STEPS[version](doc)
        version += 1
    doc["format"] = FORMAT_VERSION
    return doc
