"""The graph document: pydantic models built from the node registry, load, save, migrate.

Loading is pure data (json + pydantic): no code, no pickle, no eval.
"""
from __future__ import annotations

import difflib
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.input_files import read_bounded
from fusegraph.runtime.atomic import write_atomic
from fusegraph.runtime.errors import GraphError, GraphInvalid
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


# ---- parsing with every problem reported --------------------------------------------


def _pydantic_errors(exc: ValidationError, node_id: str | None) -> list[GraphError]:
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        param = ".".join(loc[1:]) if loc[:1] == ["params"] and len(loc) > 1 else None
        kind = e["type"]
        if kind == "extra_forbidden":
            code = "unknown_param" if param else "unknown_key"
            msg = "unknown parameter" if param else f"unknown key '{'.'.join(loc)}'"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            code, msg = "param_range", e["msg"].lower()
        else:
            code = "param_invalid" if param else "invalid"
            text = e["msg"].removeprefix("Value error, ")  # a validator's own sentence
            msg = text if param else f"'{'.'.join(loc)}': {text}"
        received = e.get("input") if kind != "missing" else None
        if isinstance(received, dict):
            received = None
        out.append(GraphError(code, msg, node=node_id, param=param, received=received))
    return out


def parse_graph(doc: Any, source: str = "") -> Graph:
    """dict -> Graph, or GraphInvalid listing every problem (with `.partial`: what could be loaded)."""
    errors: list[GraphError] = []
    if not isinstance(doc, dict):
        raise GraphInvalid([GraphError("invalid", "a graph document must be a JSON object")], source)
    try:
        doc = migrate(doc)
    except ValueError as exc:
        raise GraphInvalid([GraphError("format", str(exc), received=doc.get("format"))], source) from None
    for key in doc:
        if key not in ("format", "nodes", "links", "comments"):
            errors.append(GraphError("unknown_key", f"unknown key '{key}'"))
    comments = []
    for i, raw in enumerate(doc.get("comments", []) if isinstance(doc.get("comments", []), list) else [None]):
        try:
            comments.append(Comment.model_validate(raw))
        except ValidationError as exc:
            errors.append(GraphError("invalid", f"comments[{i}]: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in exc.errors()), received=raw))
    nodes, seen = [], set()
    raw_nodes = doc.get("nodes", [])
    if not isinstance(raw_nodes, list):
        errors.append(GraphError("invalid", "'nodes' must be a list"))
        raw_nodes = []
    for i, raw in enumerate(raw_nodes):
        node_id = raw.get("id") if isinstance(raw, dict) else None
        label = node_id if isinstance(node_id, str) else f"nodes[{i}]"
        if not isinstance(raw, dict) or not isinstance(node_id, str):
            errors.append(GraphError("invalid", "a node needs an 'id' string", node=label))
            continue
        if node_id in seen:  # also when the first node of that id failed to parse
            errors.append(GraphError("duplicate_id", "node id used twice", node=node_id))
            continue
        seen.add(node_id)
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in NODE_MODELS:
            close = difflib.get_close_matches(str(kind), NODE_MODELS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errors.append(GraphError("unknown_type", f"unknown node type{hint}", node=label, received=kind))
            continue
        try:
            nodes.append(NODE_MODELS[kind].model_validate(raw))
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, label))
    links = []
    raw_links = doc.get("links", [])
    if not isinstance(raw_links, list):
        errors.append(GraphError("invalid", "'links' must be a list"))
        raw_links = []
    for i, raw in enumerate(raw_links):
        try:
            link = Link.model_validate(raw)
        except ValidationError as exc:
            errors.append(GraphError("invalid_link", f"links[{i}]: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in exc.errors()), received=raw))
            continue
        links.append(link)
    # Graph-level checks run on what parsed; links touching unparsed nodes are not reported twice.
    from fusegraph.runtime.validate import check_links  # local: validate imports this module

    partial = Graph(nodes=nodes, links=[])
    good_links, link_errors = check_links(partial, links, known_ids=_strings(raw_nodes, "id"))
    errors += link_errors
    partial = Graph(nodes=nodes, links=good_links, comments=comments)
    from fusegraph.runtime.validate import check_graph

    # Whole-graph problems are reported with the rest, except those that only follow from a
    # problem already reported: an input whose link was refused or whose source did not parse
    # is not also "missing"; a sink (or a node of unknown type) that did not parse still counts.
    linked = {l.dst for l in links}
    has_sink = any(t not in REGISTRY or REGISTRY[t].role == "sink" for t in _strings(raw_nodes, "type"))
    for err in check_graph(partial):
        if err.code == "missing_input" and f"{err.node}.{err.port}" in linked:
            continue
        if err.code == "no_sink" and has_sink:
            continue
        errors.append(err)
    if errors:
        exc = GraphInvalid(errors, source)
        exc.partial = partial
        raise exc
    return partial


# A preset is a few kilobytes (a 5000-node graph about 1 MB): these bounds only stop hostile
# or mistaken input (/dev/zero, a FIFO, a 2 GB file, a 100000-deep nest, a 5000-digit number)
# from costing unbounded memory, time or a traceback.
MAX_PRESET_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32  # arrays/objects inside each other (presets use 5)
MAX_NUMBER_DIGITS = 64  # a float keeps 17 significant digits; more is no number a param takes


class JsonRefused(ValueError):
    """JSON beyond the bounds: too deep, a number too long."""


def _number(kind: type):
    def parse(text: str):
        if len(text) > MAX_NUMBER_DIGITS:
            raise JsonRefused(f"a number of {len(text)} digits (at most {MAX_NUMBER_DIGITS})")
        return kind(text)
    return parse


def _depth_over(doc: Any, limit: int) -> bool:
    todo = [(doc, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            todo += [(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return False


def _strings(raw_nodes: list, key: str) -> set[str]:
    """The string values of `key` in the raw nodes (any other value, even a dict, is skipped)."""
    return {n[key] for n in raw_nodes if isinstance(n, dict) and isinstance(n.get(key), str)}


def read_document(path: str | os.PathLike) -> Any:
    """The raw JSON of a preset; file, size, syntax and nesting problems as GraphInvalid."""
    path = Path(path)

    def bad(code: str, message: str) -> GraphInvalid:
        return GraphInvalid([GraphError(code, message)], str(path))

    try:
        text = read_bounded(path, MAX_PRESET_BYTES, "the preset").decode("utf-8")
    except FileNotFoundError:
        raise bad("file", f"preset file '{path}' not found") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise bad("file", f"cannot read preset '{path}': {reason}") from None
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        raise bad("json", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except JsonRefused as exc:
        raise bad("json", f"not a preset: {exc}") from None


def parse_json(text: str) -> Any:
    """JSON within the bounds above (presets, --set values): JSONDecodeError for bad syntax,
    JsonRefused for what is too deep or too long."""
    try:
        doc = json.loads(text, parse_int=_number(int), parse_float=_number(float))
    except RecursionError:  # deeper than the parser goes: deeper than MAX_DEPTH too
        doc = None
    else:
        if not _depth_over(doc, MAX_DEPTH):
            return doc
    raise JsonRefused(f"arrays or objects nested more than {MAX_DEPTH} deep")


def load_graph(path: str | os.PathLike) -> Graph:
    return parse_graph(read_document(path), str(path))


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
