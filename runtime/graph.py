"""The graph document: pydantic models built from the node registry, and saving them.

Reading a file into a Graph (every problem reported, --set, migration) is runtime/loader.py;
graph-level checks are runtime/validate.py. This module imports neither.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from fusegraph.nodes import REGISTRY
from fusegraph.runtime.atomic import write_atomic
from fusegraph.runtime.migrate import FORMAT_VERSION, migrate

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ENDPOINT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)$")


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    src: str = Field(alias="from", description="output endpoint 'node.port'")
    dst: str = Field(alias="to", description="input endpoint 'node.port'")
    via: tuple[tuple[float, float], ...] = Field(default=(), description="the editor's reroute dots on the way")

    @property
    def src_node(self) -> str:
        return self.src.split(".", 1)[0]

    @property
    def src_port(self) -> str:
        return self.src.split(".", 1)[-1]

    @property
    def dst_node(self) -> str:
        return self.dst.split(".", 1)[0]

    @property
    def dst_port(self) -> str:
        return self.dst.split(".", 1)[-1]


class NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN)
    pos: tuple[float, float] = (0.0, 0.0)

    @field_validator("pos")
    @classmethod
    def _finite_pos(cls, pos: tuple[float, float]) -> tuple[float, float]:
        """A NaN or infinite position (only layout) puts the node at 0: JSON cannot hold it."""
        return tuple(x if math.isfinite(x) else 0.0 for x in pos)


def _node_model(kind: str, params_model: type[BaseModel]) -> type[NodeBase]:
    return create_model(
        f"Node_{kind}", __base__=NodeBase,
        type=(Literal[kind], ...),  # type: ignore[valid-type]
        params=(params_model, Field(default_factory=params_model)),
    )


NODE_MODELS: dict[str, type[NodeBase]] = {k: _node_model(k, s.Params) for k, s in REGISTRY.items()}
AnyNode = Annotated[Union[tuple(NODE_MODELS.values())], Field(discriminator="type")]  # type: ignore[misc]


class Comment(BaseModel):
    """A frame with a note around a group of nodes (the editor's; the engine ignores it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=ID_PATTERN)
    text: str = ""
    rect: tuple[float, float, float, float] = (0.0, 0.0, 300.0, 200.0)  # x, y, width, height


class Graph(BaseModel):
    """A whole graph document (presets/*.json)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal[FORMAT_VERSION] = FORMAT_VERSION  # type: ignore[valid-type]
    nodes: list[AnyNode] = Field(default_factory=list)  # type: ignore[valid-type]
    links: list[Link] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)

    def node(self, node_id: str) -> Any:
        return next((n for n in self.nodes if n.id == node_id), None)


def make_node(kind: str, node_id: str, params: dict | None = None, pos=(0.0, 0.0)) -> Any:
    """A node of `kind` with validated params (raises pydantic.ValidationError)."""
    return NODE_MODELS[kind].model_validate({"id": node_id, "type": kind, "params": params or {}, "pos": pos})


def json_schema() -> dict:
    return Graph.model_json_schema(by_alias=True)


def _finite(value: Any) -> Any:
    """NaN and infinities (which strict JSON cannot hold) as null, anywhere in a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def unloaded(doc: Any, graph: Graph) -> dict:
    """What a graph document holds that `graph`, its loadable part (GraphInvalid.partial), does
    not, as it was: node records that did not load (unknown type, bad value, no id), links that
    did not, unknown top-level keys. `document` writes them back, so a save loses nothing."""
    try:
        doc = migrate(doc)
    except (ValueError, AttributeError):
        return {}
    loaded = [n.model_dump(mode="json", by_alias=True) for n in graph.nodes]
    linked = [l.model_dump(mode="json", by_alias=True) for l in graph.links]
    raw_nodes, raw_links = doc.get("nodes"), doc.get("links")
    keep = {
        "nodes": [n for n in raw_nodes if not (isinstance(n, dict) and _as_loaded(n) in loaded)]
        if isinstance(raw_nodes, list) else [],
        "links": [l for l in raw_links if l not in linked] if isinstance(raw_links, list) else [],
        "keys": {k: v for k, v in doc.items() if k not in ("format", "nodes", "links", "comments")},
    }
    return keep if any(keep.values()) else {}


def _as_loaded(raw: dict) -> Any:
    """A raw node record as the graph would dump it (None when it does not load)."""
    try:
        return NODE_MODELS[raw.get("type")].model_validate(raw).model_dump(mode="json", by_alias=True)
    except (KeyError, TypeError, ValidationError):
        return None


def document(graph: Graph, keep: dict | None = None) -> dict:
    """The JSON document of `graph`, plus what `keep` (from `unloaded`) holds that still fits:
    every kept node; a kept link when its nodes are still there and nothing else now feeds its
    input (a malformed one always); unknown keys. A NaN or infinity anywhere becomes null."""
    doc = tidy(graph.model_dump(mode="json", by_alias=True))
    if not keep:
        return _finite(doc)
    ids = {n.id for n in graph.nodes} | {n.get("id") for n in keep["nodes"] if isinstance(n, dict)}
    fed = {l.dst for l in graph.links}
    for raw in keep["links"]:
        try:
            l = Link.model_validate(raw)
        except ValidationError:
            doc["links"].append(raw)
            continue
        if l.src_node in ids and l.dst_node in ids and l.dst not in fed:
            doc["links"].append(raw)
    doc["nodes"] += keep["nodes"]
    return _finite({**doc, **{k: v for k, v in keep["keys"].items() if k not in doc}})


def tidy(doc: dict) -> dict:
    """A graph's JSON without the empty optional parts (no comments, a link without reroutes)."""
    if not doc.get("comments"):
        doc.pop("comments", None)
    for link in doc.get("links", []):
        if not link.get("via"):
            link.pop("via", None)
    return doc


def save_graph(graph: Graph, path: str | os.PathLike, keep: dict | None = None) -> None:
    """Atomic save (runtime.atomic: a partial beside the file, fsync, rename; the file keeps its
    mode, a symlink its target). `keep`: what the file held that the graph could not load, written
    back as it was (see `document`). A failure leaves the old file."""
    write_text_atomic(Path(path), to_json(document(graph, keep)))


def to_json(doc: dict) -> str:
    """Strict JSON (no NaN or Infinity literals: other readers refuse them)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` through a temporary file beside `path` and a rename: whole or not at all."""
    write_atomic(path, text.encode("utf-8"))
