"""The graph document: pydantic models built from the node registry, load, save, migrate.

Loading is pure data (json + pydantic): no code, no pickle, no eval.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from fusegraph.nodes import REGISTRY
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.migrate import FORMAT_VERSION, migrate

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ENDPOINT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)$")


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    src: str = Field(alias="from", description="output endpoint 'node.port'")
    dst: str = Field(alias="to", description="input endpoint 'node.port'")

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


def _node_model(kind: str, params_model: type[BaseModel]) -> type[NodeBase]:
    return create_model(
        f"Node_{kind}", __base__=NodeBase,
        type=(Literal[kind], ...),  # type: ignore[valid-type]
        params=(params_model, Field(default_factory=params_model)),
    )


NODE_MODELS: dict[str, type[NodeBase]] = {k: _node_model(k, s.Params) for k, s in REGISTRY.items()}
AnyNode = Annotated[Union[tuple(NODE_MODELS.values())], Field(discriminator="type")]  # type: ignore[misc]


class Graph(BaseModel):
    """A whole graph document (presets/*.json)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal[FORMAT_VERSION] = FORMAT_VERSION  # type: ignore[valid-type]
    nodes: list[AnyNode] = Field(default_factory=list)  # type: ignore[valid-type]
    links: list[Link] = Field(default_factory=list)

    def node(self, node_id: str) -> Any:
        return next((n for n in self.nodes if n.id == node_id), None)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"


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
            msg = e["msg"] if param else f"'{'.'.join(loc)}': {e['msg']}"
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
        if key not in ("format", "nodes", "links"):
            errors.append(GraphError("unknown_key", f"unknown key '{key}'"))
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
        if kind not in NODE_MODELS:
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
    good_links, link_errors = check_links(partial, links, known_ids={n.get("id") for n in raw_nodes
                                                                      if isinstance(n, dict)})
    errors += link_errors
    partial = Graph(nodes=nodes, links=good_links)
    from fusegraph.runtime.validate import check_graph

    # Whole-graph problems are reported with the rest, except those that only follow from a
    # problem already reported: an input whose link was refused or whose source did not parse
    # is not also "missing"; a sink (or a node of unknown type) that did not parse still counts.
    linked = {l.dst for l in links}
    meant = {n.get("type") for n in raw_nodes if isinstance(n, dict)}
    has_sink = any(t not in REGISTRY or REGISTRY[t].role == "sink" for t in meant if isinstance(t, str))
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


def read_document(path: str | os.PathLike) -> Any:
    """The raw JSON of a preset; file and syntax problems as GraphInvalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphInvalid([GraphError("file", f"preset file '{path}' not found")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphInvalid([GraphError("file", f"cannot read preset '{path}': {exc}")], str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphInvalid([GraphError("json", f"not valid JSON at line {exc.lineno}, column {exc.colno}: "
                                                 f"{exc.msg}")], str(path)) from None


def load_graph(path: str | os.PathLike) -> Graph:
    return parse_graph(read_document(path), str(path))


def save_graph(graph: Graph, path: str | os.PathLike) -> None:
    """Atomic save: a temporary file in the same folder, fsync, rename. A failure leaves the old file."""
    write_text_atomic(Path(path), graph.to_json())


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` through a temporary file beside `path` and a rename: whole or not at all."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
