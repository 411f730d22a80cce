"""The node canvas, drawn on a Dear PyGui drawlist: pan, zoom and fit, nodes, pins, links,
comments and reroute dots, with hit tests of our own (Dear PyGui's node editor cannot zoom).

The graph is the one source of truth: every edit the user makes here is asked of the controller
(the Document refuses a bad link and nothing is drawn) and the canvas is redrawn from the model.
A redraw happens only when something changed (the model, the view, the live looks at most four
times a second, a drag); a pan drag moves the drawn items with a transform instead.

Geometry: editor/layout.py (boxes, pins, rows, in world units), editor/view.py (world <-> canvas),
editor/hit.py (what is under the pointer); colours: editor/pin_style.py.
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from typing import Callable

import dearpygui.dearpygui as dpg

from fusegraph.editor import hit, timing
from fusegraph.editor.layout import CHAR_W, LINE, PAD, PIN_R, TITLE_H, NodeBox, bounds, free_spot, node_box
from fusegraph.editor.meters import meter_colour, meter_text
from fusegraph.editor.pin_style import pin_look
from fusegraph.editor.view import View
from fusegraph.nodes import REGISTRY
from fusegraph.runtime.outputs import is_file_sink

NEUTRAL = (60, 64, 72)
BODY = (44, 46, 52)
ERROR = (215, 35, 35)
ERROR_TEXT = (255, 120, 110)
ERROR_WRAP = 44  # characters: a long message (a GLSL error) wraps under the node's box...
ERROR_LINES = 4  # ...in at most this many lines (drawn over the canvas: the layout does not move)
AGE_COLOURS = ((120, 200, 130), (200, 180, 80), (230, 120, 80))  # 0, 1, 2+ frames old
HEAT_BARS = {"green": (40, 110, 60), "yellow": (130, 110, 25), "red": (165, 75, 20)}
GREY = (150, 150, 150)
SELECTED = (230, 200, 90)
LINK_SELECTED = (90, 230, 240)
GRID = (52, 52, 57)
COMMENT = (70, 90, 120)
TOOLTIP_DELAY = 0.35
FONT = 13.0  # the default font's size at zoom 1
DETAIL_ZOOM = 0.5  # below this, rows and pin labels are not drawn (too small to read)
TITLE_ZOOM = 0.3  # below this, titles neither: boxes, bars, pins and links (fewer vertices for software GL)
COMMENT_TITLE = 22.0
VIA_R = 5.0


def lighter(c, amount: int = 45) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + amount)) for v in c)  # type: ignore[return-value]


def dim(c, k: float = 0.35) -> tuple[int, int, int]:
    return tuple(int(v * k + 40 * (1 - k)) for v in c)  # type: ignore[return-value]


@dataclass
class NodeView:
    """What the canvas shows of one node (its look is compared to redraw only on change)."""

    type: str
    box: NodeBox
    label: str = ""
    look: tuple = ()
    title_colour: tuple = NEUTRAL
    outline: tuple = (100, 100, 100)
    rows: list[tuple[str, str, tuple]] = field(default_factory=list)  # (what, text, colour)
    error: str = ""  # the node's first problem, written under it (e.g. a GLSL error with its line)
    error_lines: list[str] = field(default_factory=list)


@dataclass
class Drag:
    kind: str  # "nodes" | "box" | "link" | "pan" | "comment" | "resize" | "via"
    start: tuple[float, float]  # canvas point where it began
    data: dict = field(default_factory=dict)


class GraphCanvas:
    def __init__(self, ctl, parent: int | str):
        self.ctl = ctl
        self.parent = parent
        self.view = View(20.0, 20.0, 1.0)
        self.views: dict[str, NodeView] = {}
        self.links: dict[tuple[str, str], list] = {}  # (src, dst) -> its polyline, world units
        self.selected_link_keys: set[tuple[str, str]] = set()
        self.selected_comments: set[str] = set()
        self.drag: Drag | None = None
        self.mouse = (0.0, 0.0)  # canvas point of the pointer
        self.size = (800.0, 600.0)
        self.on_record: Callable[[str, bool], None] = lambda node_id, on: ctl.record(node_id, on)
        self.on_drop: Callable[[str, bool, str, tuple[float, float]], None] | None = None  # link dropped on nothing
        self.on_edit_comment: Callable[[str], None] | None = None
        self.dirty = True
        self.fitted = False
        self.redraws = 0
        self._hover: tuple[str | None, float] = (None, 0.0)
        self._timing_at = 0.0
        self._compatible: dict[str, bool] = {}
        self._types: dict[str, str] = {}  # output endpoint -> its port type (link colours)
        self.hover: tuple | str | None = None  # the link (src, dst) or pin key under the pointer
        self.drawlist = dpg.add_drawlist(width=800, height=600, parent=parent)
        self.root = dpg.add_draw_node(parent=self.drawlist)
        with dpg.window(show=False, no_title_bar=True, no_resize=True, no_move=True, autosize=True,
                        no_focus_on_appearing=True, no_saved_settings=True, no_scrollbar=True) as self.tooltip:
            self.tooltip_text = dpg.add_text("", wrap=460)
        with dpg.handler_registry() as self.handlers:
            dpg.add_mouse_click_handler(dpg.mvMouseButton_Left, callback=self._press)
            dpg.add_mouse_release_handler(dpg.mvMouseButton_Left, callback=self._release)
            dpg.add_mouse_click_handler(dpg.mvMouseButton_Middle, callback=self._press_middle)
            dpg.add_mouse_release_handler(dpg.mvMouseButton_Middle, callback=self._release)
            dpg.add_mouse_double_click_handler(dpg.mvMouseButton_Left, callback=self._double_click)
            dpg.add_mouse_wheel_handler(callback=self._wheel)

    # ---- the model -> boxes ---------------------------------------------------------------
    def _port_type(self, endpoint: str) -> str:
        from fusegraph.runtime.validate import output_type

        node, port = endpoint.split(".", 1)
        try:
            return output_type(self.ctl.graph, node, port)
        except Exception:
            return "video"

    def _box(self, node, rows) -> NodeBox:
        spec = REGISTRY[node.type]
        return node_box(node.id, node.pos, [(p.name, p.type, p.required) for p in spec.inputs],
                        [(p.name, self._port_type(f"{node.id}.{p.name}")) for p in spec.outputs],
                        [(what, text) for what, text, _ in rows], record=is_file_sink(node.type))

    def sync(self) -> None:
        """Make the canvas show the model: nodes, links, comments, positions."""
        graph = self.ctl.graph
        old = self.views
        self.views = {}
        for node in graph.nodes:
            view = old.get(node.id)
            if view is None or view.type != node.type:
                spec = REGISTRY[node.type]
                view = NodeView(node.type, None, node.id, rows=[("sub", f"{node.type} ({spec.role})", GREY)])
            view.box = self._box(node, view.rows)
            self.views[node.id] = view
        self.selected_link_keys &= {(l.src, l.dst) for l in graph.links}
        self.selected_comments &= {c.id for c in graph.comments}
        self._relink()
        self.refresh_looks(force=True)
        self.dirty = True

    sync_layout = sync

    def _relink(self) -> None:
        self._types = {p.endpoint: p.type for v in self.views.values() for p in v.box.pins.values() if p.output}
        self.links = {}
        for l in self.ctl.graph.links:
            a, b = self._pin(f"out:{l.src}"), self._pin(f"in:{l.dst}")
            if a is not None and b is not None:
                self.links[(l.src, l.dst)] = hit.curve((a.x, a.y), (b.x, b.y), list(l.via))

    def _pin(self, key: str):
        node = key.split(":", 1)[1].split(".", 1)[0]
        view = self.views.get(node)
        return view.box.pins.get(key) if view is not None else None

    # ---- looks: errors, live timing, fused passes, selection ----------------------------------
    def refresh_looks(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._timing_at < 0.25:
            return
        self._timing_at = now
        stats = self.ctl.stats()
        node_ms = stats.node_ms if stats else {}
        levels = stats.levels if stats else {}
        ages = stats.ages if stats else {}
        bands = timing.fused_bands(stats.passes) if stats else {}
        errors = self.ctl.node_errors()
        selected = set(self.ctl.selection)
        recording = self.ctl.recording
        relayout = False
        for node_id, view in self.views.items():
            ms = node_ms.get(node_id)
            level = timing.heat(ms)[0] if ms is not None else None
            err = bool(errors.get(node_id))
            first = errors[node_id][0].removeprefix(f"{node_id}: ") if err else ""
            band = bands.get(node_id, [])
            db = levels.get(node_id)
            rec = node_id in recording
            age = ages.get(node_id)
            look = (ms and round(ms, 1), level, err, node_id in selected, tuple(b.index for b in band),
                    db if db is None else round(db), rec, first, age)
            if look == view.look:
                continue
            view.look = look
            view.error = first
            view.error_lines = textwrap.wrap(first, ERROR_WRAP, max_lines=ERROR_LINES, placeholder=" ...")
            view.label = (("! " if err else "") + node_id + (f"   {ms:.1f} ms" if ms is not None else "")
                          + ("   [REC]" if rec else ""))
            bar = ERROR if err else HEAT_BARS.get(level, NEUTRAL)
            view.title_colour = lighter(bar, 70) if node_id in selected else bar
            view.outline = band[0].colour if band else (SELECTED if node_id in selected else (100, 100, 100))
            rows = [view.rows[0]]
            if band:
                rows.append(("badge", f"[fused pass #{band[-1].index}]", band[-1].colour))
            if ms is not None:
                rows.append(("ms", f"{100.0 * ms / timing.BUDGET_MS:.0f}% of frame budget", timing.heat(ms)[1]))
            if db is not None:
                rows.append(("meter", meter_text(db), meter_colour(db)))
            if age is not None:  # it runs beside the frame (live): how old its output is
                rows.append(("age", timing.age_text(age), AGE_COLOURS[min(age, 2)]))
            if [r[:2] for r in rows] != [r[:2] for r in view.rows]:
                relayout = True
            view.rows = rows
            self.dirty = True
        if relayout:
            for node in self.ctl.graph.nodes:
                if node.id in self.views:
                    self.views[node.id].box = self._box(node, self.views[node.id].rows)
            self._relink()
            if self.fitted:  # the boxes grew (live timing, meters): still all of it in view
                self.fit_all()

    # ---- coordinates -------------------------------------------------------------------------
    def origin(self) -> tuple[float, float]:
        """Screen position of the canvas's top-left corner."""
        state = dpg.get_item_state(self.drawlist)
        x, y = state.get("rect_min", state.get("pos", (0, 0)))
        return float(x), float(y)

    def local(self, screen: tuple[float, float]) -> tuple[float, float]:
        ox, oy = self.origin()
        return screen[0] - ox, screen[1] - oy

    def to_grid(self, screen: tuple[float, float]) -> tuple[float, float]:
        """World point under a screen point."""
        return self.view.to_world(self.local(screen))

    def to_screen(self, world: tuple[float, float]) -> tuple[float, float]:
        ox, oy = self.origin()
        x, y = self.view.to_screen(world)
        return x + ox, y + oy

    def visible_center(self) -> tuple[float, float]:
        x, y = self.view.to_world((self.size[0] / 2, self.size[1] / 2))
        return x - 80, y - 40

    def free_spot(self, at: tuple[float, float]) -> tuple[float, float]:
        return free_spot([v.box for v in self.views.values()], at)

    def hovered(self) -> bool:
        x, y = self.local(dpg.get_mouse_pos(local=False))
        return 0 <= x < self.size[0] and 0 <= y < self.size[1] and dpg.is_item_hovered(self.drawlist)

    def hovered_node(self) -> str | None:
        if not self.hovered():
            return None
        box = hit.node_at(self._boxes(), self.to_grid(dpg.get_mouse_pos(local=False)))
        return box.id if box else None

    def _boxes(self) -> list[NodeBox]:
        return [v.box for v in self.views.values()]

    # ---- view commands ----------------------------------------------------------------------
    def fit_all(self) -> None:
        """Zoom and pan so the whole graph (nodes and comments) is on screen."""
        notes = [(c.rect[0], c.rect[1], c.rect[0] + c.rect[2], c.rect[1] + c.rect[3]) for c in self.ctl.graph.comments]
        b = bounds(self._boxes(), notes)
        if b is not None:
            self.view.fit(b, self.size)
            self.dirty = True
        self.fitted = True  # fits again when the canvas gets its size, until the user pans or zooms

    def zoom_by(self, factor: float, at: tuple[float, float] | None = None) -> None:
        self.fitted = False
        self.view.zoom_at(at if at is not None else (self.size[0] / 2, self.size[1] / 2), factor)
        self.dirty = True

    def reset_zoom(self) -> None:
        """Actual size (zoom 1) around the middle of the view."""
        self.fitted = False
        self.view.zoom_to((self.size[0] / 2, self.size[1] / 2), 1.0)
        self.dirty = True

    # ---- selection ---------------------------------------------------------------------------
    def selected_links(self) -> list[str]:
        """Destinations of the selected links."""
        return [dst for _, dst in self.selected_link_keys]

    def clear_link_selection(self) -> None:
        if self.selected_link_keys or self.selected_comments:
            self.selected_link_keys.clear()
            self.selected_comments.clear()
            self.dirty = True

    def clear_selection(self) -> None:
        """After a command (delete, paste, add): no link or comment stays selected from before
        (a later Delete would take it unseen); the nodes selected are the controller's."""
        self.clear_link_selection()

    # ---- user edits ----------------------------------------------------------------------
    def connect(self, a: str, b: str) -> None:
        """A link between pins `a` and `b` ("out:node.port" / "in:node.port", either order)."""
        if a.startswith("in:"):
            a, b = b, a
        if a.startswith("out:") and b.startswith("in:"):
            self.ctl.link(a[4:], b[3:])  # the model redraws it if accepted; a refusal shows in the status bar

    def detach(self, key: tuple[str, str]) -> None:
        self.ctl.unlink(key[1])

    def _compatibility(self, key: str) -> dict[str, bool]:
        """For a link dragged from pin `key`: which pins it could end on."""
        from fusegraph.runtime.graph import Link
        from fusegraph.runtime.validate import link_error

        graph, out = self.ctl.graph, key.startswith("out:")
        endpoint = key.split(":", 1)[1]
        result = {}
        for view in self.views.values():
            for other, pin in view.box.pins.items():
                if other.startswith("out:") == out:
                    continue
                src, dst = (endpoint, pin.endpoint) if out else (pin.endpoint, endpoint)
                taken = any(l.dst == dst for l in graph.links)
                result[other] = not taken and link_error(graph, Link.model_validate({"from": src, "to": dst})) is None
        return result

    def _press(self, sender=None, app_data=None, user_data=None) -> None:
        if not self.hovered() or self.drag is not None:
            return
        p = self.local(dpg.get_mouse_pos(local=False))
        w = self.view.to_world(p)
        ctrl = dpg.is_key_down(dpg.mvKey_ModCtrl) or dpg.is_key_down(dpg.mvKey_LControl)
        boxes = self._boxes()
        tolerance = 6.0 / self.view.zoom
        for box in boxes:  # the Record toggle of a file sink
            if box.record and hit.inside(box.record, w):
                self.on_record(box.id, box.id not in self.ctl.recording)
                return
        pin = hit.pin_at(boxes, w, PIN_R + tolerance)
        if pin is not None:
            key, _ = pin
            self._compatible = self._compatibility(key)
            self.drag = Drag("link", p, {"from": key})
            self.dirty = True
            return
        box = hit.node_at(boxes, w)
        if box is not None:
            sel = list(self.ctl.selection)
            if ctrl:
                sel = [n for n in sel if n != box.id] if box.id in sel else sel + [box.id]
            elif box.id not in sel:
                sel = [box.id]
            self.ctl.select(sel)
            self.clear_link_selection()
            self.drag = Drag("nodes", p, {"ids": [n for n in sel if n in self.views], "moved": False})
            return
        for key, via in self._vias().items():
            for i, v in enumerate(via):
                if abs(v[0] - w[0]) <= VIA_R + tolerance and abs(v[1] - w[1]) <= VIA_R + tolerance:
                    self.drag = Drag("via", p, {"dst": key[1], "index": i, "via": [tuple(q) for q in via]})
                    return
        link = hit.link_at(self.links, w, tolerance)
        if link is not None:
            if ctrl:
                self.detach(link)
                return
            self.ctl.select([])
            self.selected_link_keys = {link}
            self.selected_comments.clear()
            self.dirty = True
            return
        note = self._comment_at(w)
        if note is not None:
            c, part = note
            self.selected_comments = {c.id}
            self.selected_link_keys.clear()
            self.dirty = True
            x, y, cw, ch = c.rect
            inside = [n.id for n in self.ctl.graph.nodes if hit.inside((x, y, x + cw, y + ch), n.pos)]
            self.drag = Drag("resize" if part == "corner" else "comment", p, {"id": c.id, "rect": c.rect, "ids": inside})
            return
        if not ctrl:
            self.ctl.select([])
            self.clear_link_selection()
        self.drag = Drag("box", p, {"add": list(self.ctl.selection) if ctrl else []})

    def _comment_at(self, w):
        for c in reversed(self.ctl.graph.comments):
            x, y, cw, ch = c.rect
            if hit.inside((x + cw - 14, y + ch - 14, x + cw, y + ch), w):
                return c, "corner"
            if hit.inside((x, y, x + cw, y + COMMENT_TITLE), w):
                return c, "title"
        return None

    def _vias(self) -> dict[tuple[str, str], tuple]:
        return {(l.src, l.dst): l.via for l in self.ctl.graph.links if l.via}

    def _press_middle(self, sender=None, app_data=None, user_data=None) -> None:
        if self.hovered() and self.drag is None:
            self.drag = Drag("pan", self.local(dpg.get_mouse_pos(local=False)))

    def _wheel(self, sender=None, delta=0, user_data=None) -> None:
        if self.hovered() and self.drag is None and delta:
            self.zoom_by(1.15 ** float(delta), self.local(dpg.get_mouse_pos(local=False)))

    def _double_click(self, sender=None, app_data=None, user_data=None) -> None:
        if not self.hovered():
            return
        w = self.to_grid(dpg.get_mouse_pos(local=False))
        tolerance = 6.0 / self.view.zoom
        for key, via in self._vias().items():  # on a reroute dot: remove it
            for i, v in enumerate(via):
                if abs(v[0] - w[0]) <= VIA_R + tolerance and abs(v[1] - w[1]) <= VIA_R + tolerance:
                    self.ctl.move({}, vias={key[1]: via[:i] + via[i + 1:]})
                    return
        if hit.node_at(self._boxes(), w) is not None:
            return
        link = hit.link_at(self.links, w, tolerance)
        if link is not None:  # on a link: a reroute dot there
            self.add_reroute(link, w)
            return
        note = self._comment_at(w)
        if note is not None and self.on_edit_comment is not None:
            self.on_edit_comment(note[0].id)

    def add_reroute(self, key: tuple[str, str], w: tuple[float, float]) -> None:
        """A reroute dot on link `key` at world point w, in order along the link."""
        link = next(l for l in self.ctl.graph.links if (l.src, l.dst) == key)
        a, b = self._pin(f"out:{key[0]}"), self._pin(f"in:{key[1]}")
        points = [(a.x, a.y), *link.via, (b.x, b.y)]
        best = min(range(len(points) - 1), key=lambda i: hit.segment_distance(w, points[i], points[i + 1]))
        via = list(link.via)
        via.insert(best, (round(w[0]), round(w[1])))
        self.ctl.move({}, vias={key[1]: tuple(via)})

    def _release(self, sender=None, app_data=None, user_data=None) -> None:
        drag, self.drag = self.drag, None
        if drag is None:
            return
        if sender is not None:  # the mouse handler: where it is now (else where the last frame saw it)
            self.mouse = self.local(dpg.get_mouse_pos(local=False))
        p = self.mouse
        w = self.view.to_world(p)
        dx, dy = (p[0] - drag.start[0]) / self.view.zoom, (p[1] - drag.start[1]) / self.view.zoom
        self.dirty = True
        dpg.apply_transform(self.root, dpg.create_translation_matrix([0, 0]))
        if drag.kind == "pan":
            self.view.pan(p[0] - drag.start[0], p[1] - drag.start[1])
            self.fitted = False
        elif drag.kind == "nodes" and (dx or dy) and drag.data["moved"]:
            self.ctl.move({n: (round(self.ctl.node(n).pos[0] + dx), round(self.ctl.node(n).pos[1] + dy))
                           for n in drag.data["ids"] if self.ctl.node(n) is not None})
        elif drag.kind == "box":
            r = (*self.view.to_world(drag.start), *w)
            ids = drag.data["add"] + [i for i in hit.boxed(self._boxes(), r) if i not in drag.data["add"]]
            self.ctl.select(ids)
            chosen = set(ids)
            self.selected_link_keys = {k for k in self.links if k[0].split(".")[0] in chosen
                                       and k[1].split(".")[0] in chosen}
        elif drag.kind == "link":
            self._drop_link(drag.data["from"], w)
        elif drag.kind in ("comment", "resize"):
            x, y, cw, ch = drag.data["rect"]
            if drag.kind == "comment":
                rect = (round(x + dx), round(y + dy), cw, ch)
                moved = {n: (round(self.ctl.node(n).pos[0] + dx), round(self.ctl.node(n).pos[1] + dy))
                         for n in drag.data["ids"] if self.ctl.node(n) is not None}
            else:
                rect, moved = (x, y, max(80, round(cw + dx)), max(50, round(ch + dy))), {}
            self.ctl.move(moved, comments={drag.data["id"]: rect})
        elif drag.kind == "via":
            via = list(drag.data["via"])
            via[drag.data["index"]] = (round(w[0]), round(w[1]))
            self.ctl.move({}, vias={drag.data["dst"]: tuple(via)})
        self._compatible = {}

    def _drop_link(self, start: str, w: tuple[float, float]) -> None:
        pin = hit.pin_at(self._boxes(), w, PIN_R + 8.0 / self.view.zoom)
        if pin is not None:
            self.connect(start, pin[0])
            return
        if hit.node_at(self._boxes(), w) is None and self.on_drop is not None:
            endpoint = start.split(":", 1)[1]
            out = start.startswith("out:")
            port_type = self._port_type(endpoint) if out else REGISTRY[self.ctl.node(endpoint.split(".")[0]).type].input(
                endpoint.split(".", 1)[1]).type
            self.on_drop(endpoint, out, port_type, w)

    # ---- once per frame ----------------------------------------------------------------------
    def poll(self) -> None:
        state = dpg.get_item_state(self.parent)
        size = state.get("rect_size") or (800, 600)
        size = (float(max(50, size[0])), float(max(50, size[1])))
        if size != self.size:
            self.size = size
            dpg.configure_item(self.drawlist, width=int(size[0]), height=int(size[1]))
            self.dirty = True
            if self.fitted:
                self.fit_all()
        mouse = self.local(dpg.get_mouse_pos(local=False))
        moved = mouse != self.mouse
        self.mouse = mouse
        if self.drag is not None and moved:
            d = self.drag
            if d.kind == "pan":  # the drawn items move; one redraw when it ends
                dpg.apply_transform(self.root, dpg.create_translation_matrix(
                    [mouse[0] - d.start[0], mouse[1] - d.start[1]]))
            else:
                if d.kind == "nodes":
                    d.data["moved"] = d.data["moved"] or abs(mouse[0] - d.start[0]) + abs(mouse[1] - d.start[1]) > 2
                self.dirty = True
        if moved and self.drag is None:
            self._poll_hover()
        if self.drag is not None and not (dpg.is_mouse_button_down(dpg.mvMouseButton_Left)
                                          or dpg.is_mouse_button_down(dpg.mvMouseButton_Middle)):
            self._release()  # released outside the window, or the release came before the press
        if self.dirty:
            self.redraw()
        self._poll_tooltip()

    def _poll_hover(self) -> None:
        """The pin or link under the pointer is drawn lit: the user sees what a click takes."""
        hover = None
        if self.hovered():
            w = self.view.to_world(self.mouse)
            tolerance = 6.0 / self.view.zoom
            pin = hit.pin_at(self._boxes(), w, PIN_R + tolerance)
            if pin is not None:
                hover = pin[0]
            elif hit.node_at(self._boxes(), w) is None:
                hover = hit.link_at(self.links, w, tolerance)
        if hover != self.hover:
            self.hover = hover
            self.dirty = True

    # ---- drawing -----------------------------------------------------------------------------
    def redraw(self) -> None:
        self.dirty = False
        self.redraws += 1
        dpg.delete_item(self.root, children_only=True)
        z = self.view.zoom
        drag = self.drag
        offset = {}
        if drag is not None and drag.kind == "nodes" and drag.data["moved"]:
            dx, dy = (self.mouse[0] - drag.start[0]) / z, (self.mouse[1] - drag.start[1]) / z
            offset = {n: (dx, dy) for n in drag.data["ids"]}
        comment_shift = None
        if drag is not None and drag.kind in ("comment", "resize"):
            comment_shift = (drag.data["id"], (self.mouse[0] - drag.start[0]) / z, (self.mouse[1] - drag.start[1]) / z)
            if drag.kind == "comment":
                offset = {n: comment_shift[1:] for n in drag.data["ids"]}
        self._draw_grid()
        for c in self.ctl.graph.comments:
            self._draw_comment(c, comment_shift, drag)
        vias = self._vias()
        if drag is not None and drag.kind == "via":
            vias[next(k for k in vias if k[1] == drag.data["dst"])] = tuple(
                self.view.to_world(self.mouse) if i == drag.data["index"] else v for i, v in enumerate(drag.data["via"]))
        W, H = self.size
        step = 1 if z >= DETAIL_ZOOM else 4 if z >= TITLE_ZOOM else 10  # zoomed out, fewer points do
        for (src, dst), pts in self.links.items():
            if offset.get(src.split(".")[0]) or offset.get(dst.split(".")[0]) or (src, dst) in vias:
                a, b = self._pin(f"out:{src}"), self._pin(f"in:{dst}")
                da, db = offset.get(src.split(".")[0], (0, 0)), offset.get(dst.split(".")[0], (0, 0))
                pts = hit.curve((a.x + da[0], a.y + da[1]), (b.x + db[0], b.y + db[1]), list(vias.get((src, dst), ())))
            screen = [self.view.to_screen(q) for q in pts[::step] + ([pts[-1]] if step > 1 else [])]
            if max(q[0] for q in screen) < 0 or min(q[0] for q in screen) > W or max(q[1] for q in screen) < 0 \
                    or min(q[1] for q in screen) > H:
                continue
            colour = pin_look(self._types.get(src, "video"))[0]
            if (src, dst) in self.selected_link_keys:
                colour = LINK_SELECTED
            elif (src, dst) == self.hover:
                colour = lighter(colour, 70)
            dpg.draw_polyline(screen, color=(*colour, 255), thickness=max(1.0, 2.5 * z if (src, dst) not in
                              self.selected_link_keys else 4.0 * z), parent=self.root)
            for v in vias.get((src, dst), ()):
                dpg.draw_circle(self.view.to_screen(v), max(3.0, VIA_R * z), fill=(*colour, 255),
                                color=(20, 20, 20, 255), parent=self.root)
        for node_id, view in self.views.items():
            self._draw_node(view, offset.get(node_id, (0.0, 0.0)))
        if drag is not None and drag.kind == "link":
            start = self._pin(drag.data["from"])
            a = self.view.to_screen((start.x, start.y))
            b = self.mouse
            if drag.data["from"].startswith("in:"):
                a, b = b, a
            k = max(40.0, abs(b[0] - a[0]) * 0.5)
            dpg.draw_bezier_cubic(a, (a[0] + k, a[1]), (b[0] - k, b[1]), b, color=(*pin_look(start.type)[0], 255),
                                  thickness=2.5, parent=self.root)
        if drag is not None and drag.kind == "box":
            dpg.draw_rectangle(drag.start, self.mouse, color=(120, 170, 255, 220), fill=(80, 130, 220, 40),
                               parent=self.root)

    def _draw_grid(self) -> None:
        """Lines one pixel wide as filled rectangles on whole pixels: crisp, and on software GL
        0.6 CPU-ms a frame instead of the 1.5 that anti-aliased lines (three pixels wide) cost."""
        step = 48.0 * self.view.zoom
        while step < 24:
            step *= 2
        W, H = self.size
        fill, none = (*GRID, 255), (0, 0, 0, 0)
        x = self.view.x % step
        while x < W:
            dpg.draw_rectangle((int(x), 0), (int(x) + 1, H), fill=fill, color=none, parent=self.root)
            x += step
        y = self.view.y % step
        while y < H:
            dpg.draw_rectangle((0, int(y)), (W, int(y) + 1), fill=fill, color=none, parent=self.root)
            y += step

    def _text(self, pos, text: str, colour, size: float | None = None) -> None:
        dpg.draw_text(pos, text, color=(*colour, 255), size=size or FONT * self.view.zoom, parent=self.root)

    def _draw_comment(self, c, shift, drag) -> None:
        x, y, w, h = c.rect
        if shift and shift[0] == c.id:
            if drag.kind == "comment":
                x, y = x + shift[1], y + shift[2]
            else:
                w, h = max(80, w + shift[1]), max(50, h + shift[2])
        a, b = self.view.to_screen((x, y)), self.view.to_screen((x + w, y + h))
        selected = c.id in self.selected_comments
        dpg.draw_rectangle(a, b, fill=(*COMMENT, 60), color=(*(SELECTED if selected else COMMENT), 255),
                           thickness=2.0 if selected else 1.0, rounding=4, parent=self.root)
        dpg.draw_rectangle(a, (b[0], a[1] + COMMENT_TITLE * self.view.zoom), fill=(*COMMENT, 170),
                           color=(0, 0, 0, 0), rounding=4, parent=self.root)
        self._text((a[0] + 6 * self.view.zoom, a[1] + 4 * self.view.zoom), c.text or "(double-click to write)",
                   (235, 235, 235))
        dpg.draw_triangle((b[0], b[1] - 12 * self.view.zoom), b, (b[0] - 12 * self.view.zoom, b[1]),
                          fill=(*COMMENT, 255), color=(0, 0, 0, 0), parent=self.root)

    def _draw_node(self, view: NodeView, offset: tuple[float, float]) -> None:
        box, z = view.box, self.view.zoom
        ox, oy = offset
        (x0, y0), (x1, y1) = self.view.to_screen((box.x + ox, box.y + oy)), self.view.to_screen(
            (box.x + box.w + ox, box.y + box.h + oy))
        W, H = self.size
        if x1 < -20 or y1 < -20 or x0 > W + 20 or y0 > H + 20:
            return  # off screen
        if z < TITLE_ZOOM:  # far out: one box in its title's colour (errors, heat), outlined when it
            marked = view.outline != (100, 100, 100)  # is selected or in a fused pass; no text or pins
            dpg.draw_rectangle((x0, y0), (x1, y1), fill=(*lighter(view.title_colour, -10), 255),
                               color=(*view.outline, 255) if marked else (0, 0, 0, 0), thickness=2.0,
                               parent=self.root)
            return
        dpg.draw_rectangle((x0, y0), (x1, y1), fill=(*BODY, 245), color=(*view.outline, 255),
                           thickness=3.0 if view.outline != (100, 100, 100) else 1.0, rounding=4 * z, parent=self.root)
        dpg.draw_rectangle((x0, y0), (x1, y0 + TITLE_H * z), fill=(*view.title_colour, 255), color=(0, 0, 0, 0),
                           rounding=4 * z, parent=self.root)
        self._text((x0 + PAD * z, y0 + 5 * z), view.label, (235, 235, 235))
        detail = z >= DETAIL_ZOOM
        cy = y0 + (TITLE_H + 4) * z
        if detail:
            for _, text, colour in view.rows:
                self._text((x0 + PAD * z, cy), text, colour)
                cy += LINE * z
        if box.record:
            rx0, ry0, rx1, ry1 = box.record
            a, b = self.view.to_screen((rx0 + ox, ry0 + oy)), self.view.to_screen((rx1 + ox, ry1 + oy))
            rec = box.id in self.ctl.recording
            dpg.draw_rectangle(a, b, color=(180, 180, 180, 255), fill=(220, 50, 50, 255) if rec else (30, 30, 34, 255),
                               parent=self.root)
            if detail:
                self._text((b[0] + 6 * z, a[1] - 1 * z), "REC: recording" if rec else "Record", (220, 80, 70) if rec
                           else (200, 200, 200))
        dragging = self.drag is not None and self.drag.kind == "link"
        for key, pin in box.pins.items():
            colour, shape = pin_look(pin.type)
            px, py = self.view.to_screen((pin.x + ox, pin.y + oy))
            r = max(2.5, PIN_R * z)
            if key == self.hover:
                dpg.draw_circle((px, py), r + 3 * z, color=(255, 255, 255, 200), thickness=1.5, parent=self.root)
            if dragging and key != self.drag.data["from"]:
                ok = self._compatible.get(key)
                if ok is False or ok is None:
                    colour = dim(colour)  # a pin the dragged link cannot end on
                else:
                    dpg.draw_circle((px, py), r + 4 * z, color=(255, 255, 255, 230), thickness=2.0, parent=self.root)
            if shape == "square":
                dpg.draw_rectangle((px - r, py - r), (px + r, py + r), fill=(*colour, 255), color=(*colour, 255),
                                   parent=self.root)
            elif shape == "triangle":
                dpg.draw_triangle((px - r, py - r), (px + r, py), (px - r, py + r), fill=(*colour, 255),
                                  color=(*colour, 255), parent=self.root)
            else:
                dpg.draw_circle((px, py), r, fill=(*colour, 255), color=(*colour, 255), segments=12 if detail else 6,
                                parent=self.root)
            if detail:
                tw = len(pin.label) * CHAR_W * z
                tx = px - tw - 8 * z if pin.output else px + 8 * z
                self._text((tx, py - 7 * z), pin.label, colour)
        if detail:
            for i, line in enumerate(view.error_lines):
                self._text((x0 + PAD * z, y1 + (4 + i * LINE) * z), line, ERROR_TEXT)

    # ---- tooltips and the probe --------------------------------------------------------------
    def tooltip_for(self, node_id: str) -> str:
        node = self.ctl.node(node_id)
        if node is None:
            return ""
        spec = REGISTRY[node.type]
        lines = [f"{node_id}: {spec.doc.strip().splitlines()[0]}"]
        ports = [f"in {p.name}: {'/'.join((p.type,) + p.accepts)}{'' if p.required else ' (optional)'}"
                 for p in spec.inputs] + [f"out {p.name}: {self._port_type(f'{node_id}.{p.name}')}"
                                          for p in spec.outputs]
        if ports:
            lines.append("; ".join(ports))
        for msg in self.ctl.node_errors().get(node_id, []):
            lines.append(f"ERROR {msg}")
        stats = self.ctl.stats()
        if stats and stats.plan_text:
            lines += [f"runs: {note}" for note in timing.plan_notes(stats.plan_text, node_id)]
        if stats and node_id in stats.node_ms:
            ms = stats.node_ms[node_id]
            lines.append(f"time: {ms:.2f} ms smoothed ({100 * ms / timing.BUDGET_MS:.0f}% of the 33 ms budget)")
            bands = timing.fused_bands(stats.passes).get(node_id)
            if bands:
                lines.append(timing.split_text(bands, stats.passes, stats.node_ms))
        return "\n".join(lines)

    def _poll_tooltip(self) -> None:
        node_id = self.hovered_node() if self.drag is None and not dpg.is_mouse_button_down(
            dpg.mvMouseButton_Left) else None
        now = time.monotonic()
        if node_id != self._hover[0]:
            self._hover = (node_id, now)
        if node_id is None or now - self._hover[1] < TOOLTIP_DELAY:
            dpg.configure_item(self.tooltip, show=False)
            return
        mx, my = dpg.get_mouse_pos(local=False)
        dpg.set_value(self.tooltip_text, self.tooltip_for(node_id))
        dpg.configure_item(self.tooltip, show=True, pos=[int(mx) + 18, int(my) + 18])

    def geometry(self) -> dict:
        """Screen places of nodes, pins, Record toggles and comments (the end-to-end tests drive
        the mouse with them) and the view."""
        nodes, pins, records, comments = {}, {}, {}, {}
        W, H = self.size
        ox, oy = self.origin()
        for node_id, view in self.views.items():
            box = view.box
            x0, y0 = self.to_screen((box.x, box.y))
            x1, y1 = self.to_screen((box.x + box.w, box.y + box.h))
            if x1 < ox or y1 < oy or x0 > ox + W or y0 > oy + H:
                continue  # off screen
            nodes[node_id] = {"rect": [x0, y0, x1, y1], "title": [x0 + 10, y0 + 10 * self.view.zoom]}
            for key, pin in box.pins.items():
                pins[key] = list(self.to_screen((pin.x, pin.y)))
            if box.record:
                a = self.to_screen(box.record[:2])
                b = self.to_screen(box.record[2:])
                records[node_id] = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]
        for c in self.ctl.graph.comments:
            x, y, w, h = c.rect
            a, b = self.to_screen((x, y)), self.to_screen((x + w, y + h))
            comments[c.id] = {"rect": [*a, *b], "title": [a[0] + 40, a[1] + 8 * self.view.zoom]}
        links = {f"{s}->{d}": list(self.to_screen(pts[len(pts) // 2])) for (s, d), pts in self.links.items()}
        return {"nodes": nodes, "pins": pins, "record_toggles": records, "comments": comments, "link_points": links,
                "view": {"zoom": self.view.zoom, "x": self.view.x, "y": self.view.y,
                         "canvas": [ox, oy, ox + W, oy + H]}, "redraws": self.redraws}
