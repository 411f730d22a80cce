"""Reading graph files: JSON -> migration (once) -> --set overrides -> a validated Graph, with
every problem reported together (GraphInvalid), never a traceback.

Loading is pure data (json + pydantic): no code, no pickle, no eval.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.lib.input_files import read_bounded
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.graph import NODE_MODELS, Comment, Graph, Link
from fusegraph.runtime.migrate import migrate
from fusegraph.runtime.validate import check_graph, check_links


class UsageError(Exception):
    """A malformed command-line argument (e.g. --set without '=')."""


def parse_set(items: list[str]) -> list[tuple[str, str, Any]]:
    """--set node.param=value; value is JSON when it parses (numbers, booleans), else a string."""
    out = []
    for item in items:
        target, eq, raw = item.partition("=")
        node, dot, param = target.partition(".")
        if not eq or not dot or not node or not param:
            raise UsageError(f"--set '{item[:80]}': expected node.param=value")
        try:
            value = parse_json(raw)  # the bounds of preset files
        except json.JSONDecodeError:
            value = raw
        except JsonRefused as exc:
            raise UsageError(f"--set {target}: {exc}") from None
        out.append((node, param, value))
    return out


def load(path: str, sets: list[str] = ()) -> Graph:
    """A preset with --set overrides applied before validation (so they are checked too)."""
    overrides = parse_set(list(sets))
    doc = migrated(read_document(path), path)
    if overrides:
        if not isinstance(doc.get("nodes"), list):
            return _parse(doc, path)  # reports what is wrong with it
        nodes = {n["id"]: n for n in doc["nodes"] if isinstance(n, dict) and isinstance(n.get("id"), str)}
        missing = [GraphError("unknown_node", "--set names a node that is not in the graph", node=node)
                   for node, _, _ in overrides if node not in nodes]
        if missing:
            raise GraphInvalid(missing, path)
        for node, param, value in overrides:
            if not isinstance(nodes[node].get("params"), dict):
                nodes[node]["params"] = {}
            nodes[node]["params"][param] = value
    return _parse(doc, path)


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


def migrated(doc: Any, source: str = "") -> dict:
    """A document of any format version as the current one, or GraphInvalid."""
    if not isinstance(doc, dict):
        raise GraphInvalid([GraphError("invalid", "a graph document must be a JSON object")], source)
    try:
        return migrate(doc)
    except ValueError as exc:
        raise GraphInvalid([GraphError("format", str(exc), received=doc.get("format"))], source) from None


def parse_graph(doc: Any, source: str = "") -> Graph:
    """dict -> Graph, or GraphInvalid listing every problem (with `.partial`: what could be loaded)."""
    return _parse(migrated(doc, source), source)


def _parse(doc: dict, source: str) -> Graph:
    """A migrated document -> Graph."""
    errors: list[GraphError] = []
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
    partial = Graph(nodes=nodes, links=[])
    good_links, link_errors = check_links(partial, links, known_ids=_strings(raw_nodes, "id"))
    errors += link_errors
    partial = Graph(nodes=nodes, links=good_links, comments=comments)
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
