"""The editor's document: one pydantic Graph (the model the headless runner uses) and every
user action as a command on it, with undo/redo, files, recent files and crash recovery.

No Dear PyGui here: the views call these methods and redraw from `listeners`.

- `graph` is always a valid pydantic Graph (it may fail `check_graph` while being built). It
  is replaced, never mutated in place, by each change (copy on write; nodes a change does not
  touch are the same objects in the new graph), so another thread may hold an old one safely.
- Refused edits (a link of the wrong type, a value out of range) return a GraphError and
  change nothing; the views show it.
- `errors` lists what is wrong with the document now: `check_graph`, type conflicts that
  follow from `follows` outputs, and the problems of the file it was opened from (those stay
  until the next save, new or open: they describe parts of the file that did not load).
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from fusegraph.editor import files
from fusegraph.editor.history import History, Snapshot
from fusegraph.nodes import REGISTRY
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.graph import (ID_PATTERN, Comment, Graph, Link, document, make_node, to_json, unloaded,
                                     write_text_atomic)
from fusegraph.runtime.loader import parse_graph, read_document
from fusegraph.runtime.migrate import FORMAT_VERSION
from fusegraph.runtime.validate import check_graph, link_error, type_errors

log = logging.getLogger(__name__)

KINDS = ("structure", "param", "layout", "file")
_ID = re.compile(ID_PATTERN)
_RANGE = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def _param_error(exc: ValidationError, node_id: str, name: str, value: Any) -> GraphError:
    errs = exc.errors()
    e = next((e for e in errs if e["loc"][:1] == (name,)), errs[0])
    if e["type"] in _RANGE:
        return GraphError("param_range", e["msg"].lower(), node=node_id, param=name, received=value)
    return GraphError("param_invalid", e["msg"], node=node_id, param=name, received=value)


class Document:
    def __init__(self, graph: Graph | None = None, path: str | os.PathLike | None = None):
        self.graph: Graph = graph if graph is not None else Graph()
        self.path: Path | None = Path(path) if path is not None else None
        self.dirty = False
        self.errors: list[GraphError] = []
        self.listeners: list[Callable[[str], None]] = []
        self.history = History()
        self.recent: list[str] = files.read_recent()
        self._load_errors: list[GraphError] = []  # problems of the opened file not visible in the graph
        self._suppressed: list[GraphError] = []  # check records the loader left out as consequences of those
        self._keep: dict = {}  # what the opened file holds that did not load: saves write it back
        self._saved: Snapshot | None = self._snapshot()
        self._saved_mtime: int | None = None  # st_mtime_ns of the last save of this document
        self._wrote_recovery = False
        self._refresh()

    # ---- state ------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    @property
    def node_errors(self) -> dict[str, list[str]]:
        """Messages per node id (for marking nodes red); graph-wide problems are not in it."""
        out: dict[str, list[str]] = {}
        for e in self.errors:
            if e.node:
                out.setdefault(e.node, []).append(str(e))
        return out

    def _snapshot(self) -> Snapshot:
        return self.graph.model_dump(mode="json", by_alias=True)

    def _refresh(self) -> None:
        now = check_graph(self.graph)
        self.errors = self._load_errors + [e for e in now if e not in self._suppressed
                                           and e not in self._load_errors]

    def _notify(self, kind: str) -> None:
        for fn in list(self.listeners):
            try:
                fn(kind)
            except Exception:  # one broken view must not stop the others (or the command)
                log.exception("document listener %r failed on %r", fn, kind)

    def _changed(self, kind: str) -> None:
        self.dirty = self._snapshot() != self._saved
        self._refresh()
        self._notify(kind)

    def _apply(self, graph: Graph, kind: str, merge_key: object = None) -> bool:
        """Make `graph` the document's graph as one undo step (or part of the open merged one)."""
        before = self._snapshot()
        after = graph.model_dump(mode="json", by_alias=True)
        if after == before:
            return False
        self.graph = graph
        self.history.push(before, after, kind, merge_key)
        self._changed(kind)
        return True

    def _taken_ids(self) -> set[str]:
        # ids named by load problems stay reserved, so a new node is not marked with an old error
        return {n.id for n in self.graph.nodes} | {e.node for e in self._load_errors if e.node}

    def _fresh_id(self, base: str, taken: Iterable[str] = ()) -> str:
        used = self._taken_ids() | set(taken)
        base = re.sub(r"\d+$", "", base) or base
        if base not in used:
            return base
        n = 2
        while f"{base}{n}" in used:
            n += 1
        return f"{base}{n}"

    # ---- edits ------------------------------------------------------------------------

    def add_node(self, kind: str, pos: tuple[float, float] = (0.0, 0.0), params: dict | None = None,
                 node_id: str | None = None) -> str:
        """Add a node of `kind`; returns its id (fresh: "blur", "blur2", ... unless given).

        ValueError for an unknown kind, a taken or malformed id, or bad params (pydantic's
        ValidationError is a ValueError).
        """
        if kind not in REGISTRY:
            raise ValueError(f"unknown node type {kind!r}")
        if node_id is None:
            node_id = self._fresh_id(kind)
        elif self.graph.node(node_id) is not None:
            raise ValueError(f"node id {node_id!r} is already used")
        node = make_node(kind, node_id, params, pos)
        self._apply(self.graph.model_copy(update={"nodes": [*self.graph.nodes, node]}), "structure")
        return node_id

    def remove_nodes(self, ids: Iterable[str]) -> None:
        """Remove nodes and every link touching them (one undo step); unknown ids are ignored."""
        self.delete(ids)

    def delete(self, ids: Iterable[str] = (), link_dsts: Iterable[str] = (),
               comments: Iterable[str] = ()) -> tuple[list[str], list[Link], list[str]]:
        """Remove nodes with every link touching them, the links into inputs `link_dsts`
        ("node.port") and comments, as one undo step. Returns what went: (node ids, links,
        comment ids); unknown ids are ignored."""
        ids, dsts, notes = set(ids), set(link_dsts), set(comments)
        gone_nodes = [n.id for n in self.graph.nodes if n.id in ids]
        gone_links = [l for l in self.graph.links if l.src_node in ids or l.dst_node in ids or l.dst in dsts]
        gone_notes = [c.id for c in self.graph.comments if c.id in notes]
        if not gone_nodes and not gone_links and not gone_notes:
            return [], [], []
        nodes = [n for n in self.graph.nodes if n.id not in ids]
        links = [l for l in self.graph.links if l not in gone_links]
        kept = [c for c in self.graph.comments if c.id not in notes]
        self._apply(self.graph.model_copy(update={"nodes": nodes, "links": links, "comments": kept}), "structure")
        return gone_nodes, gone_links, gone_notes

    def move_nodes(self, positions: dict[str, tuple[float, float]], merge_key: object = None,
                   comments: dict[str, tuple[float, float, float, float]] | None = None,
                   vias: dict[str, tuple] | None = None) -> None:
        """Set node positions, comment rectangles (x, y, w, h) and the reroute dots of the links
        into inputs `vias` (dst -> points); calls with the same non-None merge_key (one drag)
        are one undo step."""
        finite = lambda values: all(math.isfinite(float(v)) for v in values)  # noqa: E731
        nodes = []
        for n in self.graph.nodes:
            if n.id in positions and finite(positions[n.id]):
                x, y = positions[n.id]
                n = n.model_copy(update={"pos": (float(x), float(y))})
            nodes.append(n)
        notes = [c.model_copy(update={"rect": tuple(map(float, comments[c.id]))})
                 if comments and c.id in comments and finite(comments[c.id]) else c for c in self.graph.comments]
        links = [l.model_copy(update={"via": tuple((float(x), float(y)) for x, y in vias[l.dst])})
                 if vias and l.dst in vias and all(finite(p) for p in vias[l.dst]) else l for l in self.graph.links]
        self._apply(self.graph.model_copy(update={"nodes": nodes, "comments": notes, "links": links}), "layout",
                    merge_key)

    # ---- comments (frames with a note around nodes) --------------------------------------

    def add_comment(self, text: str, rect: tuple[float, float, float, float]) -> str:
        """A comment frame; returns its id ("note", "note2", ...)."""
        taken = {c.id for c in self.graph.comments}
        cid = next(f"note{i if i > 1 else ''}" for i in range(1, len(taken) + 2) if f"note{i if i > 1 else ''}" not in taken)
        comment = Comment(id=cid, text=text, rect=tuple(map(float, rect)))
        self._apply(self.graph.model_copy(update={"comments": [*self.graph.comments, comment]}), "structure")
        return cid

    def set_comment_text(self, cid: str, text: str) -> None:
        notes = [c.model_copy(update={"text": text}) if c.id == cid else c for c in self.graph.comments]
        self._apply(self.graph.model_copy(update={"comments": notes}), "layout")

    def _refusal(self, candidate: Graph, link: Link) -> GraphError | None:
        """A link that passes link_error but retypes a `follows` output that already feeds an input."""
        old = type_errors(self.graph)
        for e in type_errors(candidate):
            if e not in old:
                return GraphError("type_mismatch", f"then {e.message} ({e.node}.{e.port})",
                                  node=link.dst_node, port=link.dst_port, received=link.src)
        return None

    def link(self, src: str, dst: str) -> GraphError | None:
        """Link output `src` to input `dst` ("node.port"); a refused link is not made and its
        GraphError is returned (type mismatch, cycle, input already fed, missing node or port)."""
        try:
            new = Link.model_validate({"from": src, "to": dst})
        except ValidationError as exc:
            return GraphError("invalid_link", exc.errors()[0]["msg"], received=(src, dst))
        err = link_error(self.graph, new)
        if err is not None:
            return err
        candidate = self.graph.model_copy(update={"links": [*self.graph.links, new]})
        err = self._refusal(candidate, new)
        if err is not None:
            return err
        self._apply(candidate, "structure")
        return None

    def insert_on_link(self, dst: str, kind: str, params: dict | None = None) -> str:
        """Put a new node of `kind` into the link that feeds input `dst` ("node.port"), below the
        middle of it (clear of both ends): src -> new -> dst, one undo step. Returns its id;
        ValueError when no link feeds `dst` or the node cannot pass that link's type."""
        link = next((l for l in self.graph.links if l.dst == dst), None)
        if link is None:
            raise ValueError(f"no link feeds {dst}")
        spec = REGISTRY[kind]
        if not spec.inputs or not spec.outputs:
            raise ValueError(f"{kind} has no input and output to put into a link")
        a, b = self.graph.node(link.src_node).pos, self.graph.node(link.dst_node).pos
        node_id = self._fresh_id(kind)
        node = make_node(kind, node_id, params, ((a[0] + b[0]) / 2, max(a[1], b[1]) + 160))
        g = self.graph.model_copy(update={"nodes": [*self.graph.nodes, node],
                                          "links": [l for l in self.graph.links if l is not link]})
        for src, to in ((link.src, f"{node_id}.{spec.inputs[0].name}"), (f"{node_id}.{spec.outputs[0].name}", dst)):
            new = Link.model_validate({"from": src, "to": to})
            err = link_error(g, new)
            if err is not None:
                raise ValueError(f"cannot insert {kind} into {link.src} -> {dst}: {err.message}")
            g = g.model_copy(update={"links": [*g.links, new]})
        self._apply(g, "structure")
        return node_id

    def unlink(self, dst: str) -> bool:
        """Remove the link into input `dst` ("node.port"); False when there is none."""
        links = [l for l in self.graph.links if l.dst != dst]
        if len(links) == len(self.graph.links):
            return False
        return self._apply(self.graph.model_copy(update={"links": links}), "structure")

    def set_param(self, node_id: str, name: str, value: Any, merge_key: object = None) -> GraphError | None:
        """Set one param, validated by the node's Params model. A bad value returns a GraphError
        naming node and param and changes nothing. Calls with the same non-None merge_key (a
        slider drag) are one undo step until another command, undo/redo or `end_merge()`."""
        node = self.graph.node(node_id)
        if node is None:
            return GraphError("missing_node", "no such node", node=node_id, param=name)
        spec = REGISTRY[node.type]
        if name not in spec.Params.model_fields:
            return GraphError("unknown_param", "unknown parameter", node=node_id, param=name, received=value)
        data = node.params.model_dump()
        data[name] = value
        try:
            params = spec.Params.model_validate(data)
        except ValidationError as exc:
            return _param_error(exc, node_id, name, value)
        new = node.model_copy(update={"params": params})
        nodes = [new if n is node else n for n in self.graph.nodes]
        self._apply(self.graph.model_copy(update={"nodes": nodes}), "param", merge_key)
        return None

    def end_merge(self) -> None:
        """Close the open merged step (mouse released after a drag)."""
        self.history.end_merge()

    # ---- clipboard ----------------------------------------------------------------------

    def copy(self, ids: Iterable[str]) -> dict:
        """Clipboard data (a graph document, plain JSON): the nodes and the links among them."""
        ids = set(ids)
        return {
            "format": FORMAT_VERSION,
            "nodes": [n.model_dump(mode="json", by_alias=True) for n in self.graph.nodes if n.id in ids],
            "links": [l.model_dump(mode="json", by_alias=True) for l in self.graph.links
                      if l.src_node in ids and l.dst_node in ids],
        }

    def paste(self, clip: dict, offset: tuple[float, float] = (30, 30)) -> list[str]:
        """Add the clip's nodes (fresh ids, positions moved by `offset`) and its links among
        them, remapped; one undo step. Returns the new ids in clip order. A clip with an
        unknown node type or bad params raises ValueError and changes nothing; links the graph
        refuses are left out."""
        if not isinstance(clip, dict) or not isinstance(clip.get("nodes", []), list):
            raise ValueError("clipboard data must be a graph document")
        dx, dy = offset
        mapping: dict[str, str] = {}
        new_nodes: list[Any] = []
        for raw in clip.get("nodes", []):
            kind = raw.get("type") if isinstance(raw, dict) else None
            if kind not in REGISTRY:
                raise ValueError(f"unknown node type {kind!r} in the clipboard")
            old = raw.get("id")
            base = old if isinstance(old, str) and _ID.match(old) else kind
            nid = self._fresh_id(base, (n.id for n in new_nodes))
            pos = raw.get("pos", (0.0, 0.0))
            try:
                x, y = float(pos[0]) + dx, float(pos[1]) + dy
            except (TypeError, ValueError, IndexError, KeyError):
                raise ValueError(f"bad position {pos!r} in the clipboard") from None
            new_nodes.append(make_node(kind, nid, raw.get("params"), (x, y)))
            if isinstance(old, str):
                mapping[old] = nid
        if not new_nodes:
            return []
        graph = self.graph.model_copy(update={"nodes": [*self.graph.nodes, *new_nodes]})
        links = list(graph.links)
        for raw in clip.get("links", []) or []:
            try:
                l = Link.model_validate(raw)
            except ValidationError:
                continue
            if l.src_node not in mapping or l.dst_node not in mapping:
                continue
            new = Link.model_validate({"from": f"{mapping[l.src_node]}.{l.src_port}",
                                       "to": f"{mapping[l.dst_node]}.{l.dst_port}"})
            so_far = graph.model_copy(update={"links": links})
            if link_error(so_far, new) is None:
                with_it = so_far.model_copy(update={"links": [*links, new]})
                if not [e for e in type_errors(with_it) if e not in type_errors(so_far)]:
                    links.append(new)
        self._apply(graph.model_copy(update={"links": links}), "structure")
        return [n.id for n in new_nodes]

    def duplicate(self, ids: Iterable[str]) -> list[str]:
        return self.paste(self.copy(ids))

    # ---- undo ---------------------------------------------------------------------------

    def undo(self) -> bool:
        step = self.history.undo()
        if step is None:
            return False
        self.graph = Graph.model_validate(step.before)
        self._changed(step.kind)
        return True

    def redo(self) -> bool:
        step = self.history.redo()
        if step is None:
            return False
        self.graph = Graph.model_validate(step.after)
        self._changed(step.kind)
        return True

    # ---- files --------------------------------------------------------------------------

    def _set_document(self, graph: Graph, path: Path | None, load_errors: list[GraphError],
                      keep: dict | None = None) -> None:
        self.history.clear()
        self.graph = graph
        self.path = path
        self._file_problems(load_errors, keep)
        self._saved = self._snapshot()
        self._saved_mtime = None
        self.dirty = False
        self._refresh()

    def _file_problems(self, load_errors: list[GraphError], keep: dict | None) -> None:
        """The problems of the file (what did not load, kept in `_keep` for the next save)."""
        found = check_graph(self.graph)
        self._load_errors = [e for e in load_errors if e not in found]
        # what the loader left out as a consequence of a reported problem (a refused link's input
        # is not also "missing"); nothing when the file loaded or the document is new
        self._suppressed = [e for e in found if e not in load_errors] if load_errors else []
        self._keep = keep or {}

    def _load(self, path: Path) -> tuple[Graph | None, list[GraphError], dict]:
        """The loadable graph of a file, its problems, and what did not load (kept as it was)."""
        raw = None
        try:
            raw = read_document(path)
            return parse_graph(raw, str(path)), [], {}
        except GraphInvalid as exc:
            keep = unloaded(raw, exc.partial) if exc.partial is not None else {}
            return exc.partial, list(exc.errors), keep

    def _write(self, target: Path) -> dict:
        """Write the graph and what the file held that did not load; returns the document written."""
        doc = document(self.graph, self._keep)
        write_text_atomic(target, to_json(doc))
        return doc

    def new(self) -> None:
        self._set_document(Graph(), None, [])
        self._notify("file")

    def open(self, path: str | os.PathLike) -> list[GraphError]:
        """Open a graph file; returns its problems (also in `errors`).

        A file with problems opens with what loads (the path is kept; saving writes back what
        did not load as it was, so nothing is lost). An unreadable file (missing, not JSON,
        unknown format) leaves the document as it was; its errors are shown in `errors` until
        the next change.
        """
        path = Path(path)
        graph, errors, keep = self._load(path)
        if graph is None:
            if not path.is_file():
                self.recent = files.remove_recent(path)
            self.errors = errors + [e for e in self.errors if e not in errors]
            self._notify("file")
            return errors
        self._set_document(graph, path, errors, keep)
        self.recent = files.add_recent(path)
        self._notify("file")
        return errors

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Save atomically to `path` (or the document's path), which becomes the document's path;
        it keeps its permissions, a symlink is written through, and what the opened file held
        that did not load is written back as it was. OSError when it cannot be written: the old
        file and the document stay as they were."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("the document has no path yet: save(path)")
        self.history.end_merge()
        doc = self._write(target)
        self.path = target
        self._saved = self._snapshot()
        self.dirty = False
        if not self._keep:  # the file now holds exactly the graph
            self._file_problems([], {})
        else:  # the file's problems now: those of what it kept
            try:
                parse_graph(doc, str(target))
                self._file_problems([], {})
            except GraphInvalid as exc:
                self._file_problems(list(exc.errors), unloaded(doc, exc.partial) if exc.partial else {})
        try:
            self._saved_mtime = target.stat().st_mtime_ns
        except OSError:
            self._saved_mtime = None
        if self._wrote_recovery:
            self.discard_recovery()
        self.recent = files.add_recent(target)
        self._refresh()
        self._notify("file")

    # ---- crash recovery -------------------------------------------------------------------

    def autosave(self) -> bool:
        """Write the graph to the recovery file (atomic) when it has unsaved changes; True if written.

        A clean document removes the recovery file it wrote earlier (its changes were saved or undone).
        """
        if not self.dirty:
            if self._wrote_recovery:
                self.discard_recovery()
            return False
        target = files.recovery_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write(target)
        except OSError as exc:
            log.warning("autosave to %s failed: %s", target, exc)
            return False
        self._wrote_recovery = True
        return True

    def recovery(self) -> Path | None:
        """The recovery file, if one exists that is newer than this document's last save
        (in this session, or of its file): offer it with `open_recovery()`."""
        target = files.recovery_path()
        try:
            mtime = target.stat().st_mtime_ns
        except OSError:
            return None
        last = self._saved_mtime
        if last is None and self.path is not None:
            try:
                last = self.path.stat().st_mtime_ns
            except OSError:
                last = None
        return target if last is None or mtime >= last else None

    def discard_recovery(self) -> None:
        files.recovery_path().unlink(missing_ok=True)
        self._wrote_recovery = False

    def open_recovery(self) -> list[GraphError]:
        """Load the recovery file into this document: unsaved (dirty), path unchanged, history cleared.
        Returns its problems like `open`; an unreadable one leaves the document as it was."""
        graph, errors, keep = self._load(files.recovery_path())
        if graph is None:
            self.errors = errors + [e for e in self.errors if e not in errors]
            self._notify("file")
            return errors
        self._set_document(graph, self.path, errors, keep)
        self._saved = None
        self.dirty = True
        self._wrote_recovery = True  # it is now this document's autosave
        self._notify("file")
        return errors
