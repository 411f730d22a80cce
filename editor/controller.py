"""The editor's controller: owns the Document (the model) and the LiveRunner (the engine).

No Dear PyGui here. The window's callbacks and the tests call the same methods; views
redraw from `listeners`, which get the document's change kinds ("structure", "param",
"layout", "file") and the controller's own ("selection", "run", "status").

Live edits: a param change travels inspector -> document (validated there, once) -> runner ->
engine as (node, param, value); the engine's node declaration says whether it is a uniform
update or a recompile. A structural
change goes to `set_graph` when the graph is complete. While it is not (a node added but
not wired yet) the live run keeps the last complete graph and the status bar says so.
"""
from __future__ import annotations

import glob
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from fusegraph.editor.document import Document, type_errors
from fusegraph.nodes import REGISTRY
from fusegraph.runtime.errors import GraphError
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.outputs import output_paths
from fusegraph.runtime.validate import check_graph

log = logging.getLogger(__name__)

AUTOSAVE_SECONDS = 5.0
PREVIEW_WIDTH = 400  # the preview panel's width (editor/app.py): frames come at the size they are shown


def _runner_factory(graph: Graph, search_dirs: tuple[str, ...], preview_width: int):
    """The live runner, at the UI's own priority: the window draws only what changed (editor/
    frame_pacer.py), so the engine need not give way to it; a lower priority (it was nice 10)
    left the pipeline to any other busy program (measured: ./fg bench --only live)."""
    from fusegraph.runtime.live import LiveRunner  # the engine (GL) only when a run starts

    return LiveRunner(graph, search_dirs=search_dirs, preview_width=preview_width)


def has_camera() -> bool:
    return bool(glob.glob("/dev/video*"))


class EditorController:
    def __init__(self, runner_factory: Callable = _runner_factory, preview_width: int = PREVIEW_WIDTH,
                 autosave_seconds: float = AUTOSAVE_SECONDS):
        self.doc = Document()
        self.doc.listeners.append(self._on_document)
        self.runner_factory = runner_factory
        self.preview_width = preview_width
        self.runner = None
        self.want_run = False  # the user pressed Run (a failed run restarts on the next edit)
        self.selection: list[str] = []
        self.recording: dict[str, str] = {}  # file sink -> the file it records to (the user said so)
        self.clipboard: dict | None = None
        self.listeners: list[Callable[[str], None]] = []
        self.message = ""  # the status bar's last message
        self.message_is_error = False
        self.autosave_seconds = autosave_seconds
        self._next_autosave = time.monotonic() + autosave_seconds
        self._sent: Graph | None = None  # the graph the runner has
        self._failure_seen = ""
        self._restarts_seen = 0
        self._stale = False  # the runner runs an older, complete graph
        self._ticks: list[float] = []  # UI frame times of the last second
        self.on_frame: Callable[[], None] | None = None  # the live run published a frame (any thread)

    # ---- notifications -------------------------------------------------------------------
    def _emit(self, kind: str) -> None:
        for fn in list(self.listeners):
            try:
                fn(kind)
            except Exception:
                log.exception("editor view %r failed on %r", fn, kind)

    def say(self, text: str, error: bool = False) -> None:
        self.message, self.message_is_error = text, error
        self._emit("status")

    def _on_document(self, kind: str) -> None:
        self._check_recording(kind)
        ids = {n.id for n in self.doc.graph.nodes}
        if any(n not in ids for n in self.selection):
            self.selection = [n for n in self.selection if n in ids]
            self._emit("selection")
        if kind in ("structure", "file"):
            self._push_graph(restart=kind == "file")
        elif kind == "param":
            self._push_params()
        self._emit(kind)

    # ---- model queries -------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        return self.doc.graph

    def node(self, node_id: str):
        return self.doc.graph.node(node_id)

    def problems(self, graph: Graph | None = None) -> list[GraphError]:
        """What keeps `graph` (default: the document's) from running."""
        g = graph if graph is not None else self.doc.graph
        return check_graph(g) + type_errors(g)

    def node_errors(self) -> dict[str, list[str]]:
        """Per node: the document's problems and the live run's failures."""
        out = {k: list(v) for k, v in self.doc.node_errors.items()}
        stats = self.stats()
        for node, msg in (stats.errors if stats else {}).items():
            out.setdefault(node, []).append(f"{node}: {msg} [live]")
        return out

    # ---- edits (each returns what the status bar should say, if anything) -------------------
    def add(self, kind: str, pos: tuple[float, float] = (0.0, 0.0), params: dict | None = None) -> str:
        node_id = self.doc.add_node(kind, (float(pos[0]), float(pos[1])), params)
        self.select([node_id])
        return node_id

    def fixes(self) -> dict[str, tuple[str, dict]]:
        """What the live run says would mend it: input "node.port" -> (node type, params) to
        insert into the link feeding it (e.g. a resample node where a rate does not fit)."""
        stats = self.stats()
        return dict(stats.fixes) if stats else {}

    def apply_fix(self, endpoint: str) -> str | None:
        """Insert the node a fix asks for; returns its id (None if there is no such fix)."""
        fix = self.fixes().get(endpoint)
        if fix is None:
            return None
        kind, params = fix
        try:
            node_id = self.doc.insert_on_link(endpoint, kind, params)
        except ValueError as exc:
            self.say(str(exc), error=True)
            return None
        self.select([node_id])
        self.say(f"inserted {kind if node_id == kind else f'{node_id} ({kind})'} before {endpoint}")
        return node_id

    def remove(self, ids: Iterable[str] | None = None, link_dsts: Iterable[str] = (),
               comments: Iterable[str] = ()) -> None:
        """Delete nodes (default: the selection), the links into `link_dsts` and comments: one
        undo step; the status bar names everything that went, the links a node took with it too."""
        ids = list(self.selection if ids is None else ids)
        nodes, links, notes = self.doc.delete(ids, link_dsts, comments)
        if not nodes and not links and not notes:
            return
        parts = []
        if nodes:
            parts.append(", ".join(nodes))
        if notes:
            parts.append(f"comment {', '.join(notes)}")
        if links:
            shown = ", ".join(f"{l.src} -> {l.dst}" for l in links[:4]) + (", ..." if len(links) > 4 else "")
            parts.append(f"{len(links)} link{'s' if len(links) > 1 else ''} ({shown})")
        n = len(nodes) + len(links) + len(notes)
        self.say(f"deleted {' and '.join(parts)} (Ctrl+Z brings {'it' if n == 1 else 'them'} back)")

    def move(self, positions: dict[str, tuple[float, float]], merge_key: object = None,
             comments: dict | None = None, vias: dict | None = None) -> None:
        self.doc.move_nodes(positions, merge_key=merge_key, comments=comments, vias=vias)

    def link(self, src: str, dst: str) -> GraphError | None:
        err = self.doc.link(src, dst)
        if err is not None:
            self.say(f"link refused: {err.message} ({src} -> {dst})", error=True)
        return err

    def unlink(self, dst: str) -> bool:
        return self.doc.unlink(dst)

    def set_param(self, node_id: str, name: str, value: Any, merge_key: object = None) -> GraphError | None:
        err = self.doc.set_param(node_id, name, value, merge_key=merge_key)
        if err is not None:
            self.say(f"{node_id}.{name}: {err.message}", error=True)
        return err

    def end_merge(self) -> None:
        self.doc.end_merge()

    def copy(self, ids: Iterable[str] | None = None) -> int:
        ids = list(self.selection if ids is None else ids)
        if ids:
            self.clipboard = self.doc.copy(ids)
        return len(ids)

    def paste(self, offset: tuple[float, float] = (40.0, 40.0)) -> list[str]:
        if not self.clipboard:
            return []
        new = self.doc.paste(self.clipboard, offset)
        self.select(new)
        return new

    def duplicate(self, ids: Iterable[str] | None = None) -> list[str]:
        ids = list(self.selection if ids is None else ids)
        new = self.doc.duplicate(ids) if ids else []
        self.select(new)
        return new

    def undo(self) -> bool:
        done = self.doc.undo()
        if not done:
            self.say("nothing to undo")
        return done

    def redo(self) -> bool:
        done = self.doc.redo()
        if not done:
            self.say("nothing to redo")
        return done

    def select(self, ids: Iterable[str]) -> None:
        ids = [i for i in ids if self.doc.graph.node(i) is not None]
        if ids != self.selection:
            self.selection = ids
            self._update_preview()
            self._emit("selection")

    # ---- recording (the live run writes a file sink only while the user records it) ----------
    def record(self, node_id: str, on: bool = True, replace: bool = False) -> str | None:
        """Start (or stop) recording file sink `node_id` in the live run. Returns None when done;
        the path of an existing file the recording would replace, when `replace` is not given
        (ask the user, then call again with replace=True); nothing is replaced without that."""
        if not on:
            if self.recording.pop(node_id, None) is not None:
                self._send_recording()
                self.say(f"{node_id}: recording stopped; the file is written")
            return None
        target = output_paths(self.doc.graph).get(node_id)
        if target is None:
            self.say(f"{node_id}: choose the file to record to first", error=True)
            return None
        if os.path.exists(target) and not replace:
            return target
        self.recording[node_id] = target
        self._send_recording()
        self.say(f"{node_id}: recording to {target}" + ("" if self.running else " (from the next Run)"))
        return None

    def _send_recording(self) -> None:
        if self.runner is not None and hasattr(self.runner, "set_record"):
            self.runner.set_record(self.recording)
        self._emit("record")

    def _check_recording(self, kind: str) -> None:
        """A recording stops when its node goes, its path changes or another graph is opened
        (never a recording into a file the user did not agree to)."""
        if not self.recording:
            return
        paths = output_paths(self.doc.graph) if kind != "file" else {}
        gone = [n for n, path in self.recording.items() if paths.get(n) != path]
        for node_id in gone:
            del self.recording[node_id]
        if gone:
            self._send_recording()
            self.say(f"recording of {', '.join(gone)} stopped (its file changed or it was removed)")

    # ---- files -----------------------------------------------------------------------------
    def new(self) -> None:
        self.doc.new()
        self.say("new graph")

    def open(self, path: str | os.PathLike) -> list[GraphError]:
        errors = self.doc.open(path)
        if errors:
            self.say(f"opened {path} with {len(errors)} problem(s): {errors[0]}", error=True)
        else:
            self.say(f"opened {path}")
        return errors

    def save(self, path: str | os.PathLike | None = None) -> bool:
        try:
            self.doc.save(path)
        except (OSError, ValueError) as exc:
            self.say(f"save failed: {exc}", error=True)
            return False
        self.say(f"saved {self.doc.path}")
        return True

    def autosave_tick(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now < self._next_autosave:
            return False
        self._next_autosave = now + self.autosave_seconds
        return self.doc.autosave()

    # ---- live ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.running

    def engine_busy(self) -> bool:
        """The live engine is in the middle of a frame (the window would share the cores with it)."""
        runner = self.runner
        return runner is not None and hasattr(runner, "in_frame") and runner.running and runner.in_frame()

    def search_dirs(self) -> tuple[str, ...]:
        return (str(Path(self.doc.path).resolve().parent),) if self.doc.path else ()

    def run(self) -> bool:
        self.want_run = True
        problems = self.problems()
        if problems:
            self.say(f"cannot run: {problems[0]}", error=True)
            self._emit("run")
            return False
        self._start()
        return True

    def _start(self) -> None:
        self._stop_runner()
        graph = self.doc.graph
        self.runner = self.runner_factory(graph, self.search_dirs(), self.preview_width)
        if hasattr(self.runner, "set_record"):
            self.runner.set_record(self.recording)
        if hasattr(self.runner, "frame_listeners"):
            self.runner.frame_listeners.append(self._frame_published)
        self._sent, self._stale, self._failure_seen, self._restarts_seen = graph, False, "", 0
        self._update_preview()
        self.runner.start()
        self.say(self._run_message())
        self._emit("run")

    def _run_message(self) -> str:
        kinds = {n.type for n in self.doc.graph.nodes}
        if "pattern" in kinds and "camera" not in kinds and not has_camera():
            return "running live: no camera here, so the graph runs on the built-in test pattern"
        return "running live"

    def stop(self) -> None:
        self.want_run = False
        recorded = bool(self.recording and self.runner is not None)
        self._stop_runner()
        if not recorded:  # else the status says what was recorded
            self.say("stopped")
        self._emit("run")

    def _stop_runner(self) -> None:
        if self.runner is not None:
            self.runner.stop()  # what it recorded is published now
            self.runner = None
            if self.recording:  # finished: the next run does not record over it unasked
                done = ", ".join(self.recording.values())
                self.recording.clear()
                self.say(f"recorded {done}")
                self._emit("record")
        self._sent = None

    def _frame_published(self, stats) -> None:
        """On the engine's thread: wake the window, which draws what is new."""
        if self.on_frame is not None:
            self.on_frame()

    def stats(self):
        return self.runner.stats() if self.runner is not None else None

    def preview(self):
        """(RGBA uint8 HxWx4 or None, frame index) of the previewed node."""
        return self.runner.preview() if self.runner is not None else (None, -1)

    def preview_target(self) -> str | None:
        """The selected node when it runs live and has a picture, else the first preview sink;
        never a node the user deleted (the live run may still hold it while the graph is
        incomplete), nor one of sound alone."""
        sent = self._sent or self.doc.graph
        doc = self.doc.graph
        chosen = sent.node(self.selection[0]) if len(self.selection) == 1 else None
        if chosen is not None and not REGISTRY[chosen.type].audio_only:  # sound has no picture
            return chosen.id
        shown = [n for n in sent.nodes if doc.node(n.id) is not None and not REGISTRY[n.type].audio_only]
        sinks = [n.id for n in shown if REGISTRY[n.type].role == "sink"]
        previews = [n.id for n in shown if n.type == "preview"]
        return (previews or sinks or [None])[0]

    def _update_preview(self) -> None:
        if self.runner is not None:
            self.runner.set_preview(self.preview_target())

    def _push_graph(self, restart: bool = False) -> None:
        if not self.want_run:
            return
        graph = self.doc.graph
        problems = self.problems(graph)
        if problems and restart:  # another graph (new, open, recovered): the old one stops with it
            if self.runner is not None:
                self._stop_runner()
                self._emit("run")
            self.say(f"not running: {problems[0]}", error=True)
            return
        if problems:
            if self.runner is not None and not self._stale:
                self._stale = True
                self.say("graph incomplete: the live run keeps the last complete graph", error=True)
            self._update_preview()
            return
        if restart or self.runner is None or not self.runner.running:
            self._start()
            return
        self.runner.set_graph(graph)
        self._sent, self._stale = graph, False
        self._update_preview()

    def _push_params(self) -> None:
        if self.runner is None or self._sent is None:
            return
        if not self.runner.running:
            self._push_graph()
            return
        nodes = []
        for old in self._sent.nodes:  # only nodes the runner knows; new ones come with set_graph
            new = self.doc.graph.node(old.id)
            if new is not None and new.type == old.type and new.params != old.params:
                for name in type(new.params).model_fields:  # the values the document validated
                    value = getattr(new.params, name)
                    if getattr(old.params, name) != value:
                        self.runner.set_param(old.id, name, value)
                old = old.model_copy(update={"params": new.params})
            nodes.append(old)
        self._sent = self._sent.model_copy(update={"nodes": nodes})

    def tick(self, now: float | None = None) -> None:
        """Once per UI frame: autosave, count the UI's frames, notice a run that stopped."""
        self.autosave_tick(now)
        self._count_frame()
        stats = self.stats()
        if stats is not None and stats.restarts > self._restarts_seen:  # a runaway shader
            self._restarts_seen = stats.restarts
            self.say(f"live run: {stats.restart_reason}", error=True)
            self._emit("run")
        if self.runner is not None and not self.runner.running:
            failure = self.stats().failure if self.stats() else ""
            if failure and failure != self._failure_seen:
                self._failure_seen = failure
                self.say(f"live run stopped: {failure}", error=True)
                self._emit("run")

    def ui_fps(self) -> float:
        t = self._ticks
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def _count_frame(self) -> None:
        now = time.perf_counter()
        self._ticks.append(now)
        while self._ticks and now - self._ticks[0] > 1.0:
            self._ticks.pop(0)

    def shutdown(self) -> None:
        self._stop_runner()
