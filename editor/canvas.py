"""The node canvas: a Dear PyGui node editor that mirrors the document's graph.

The graph is the one source of truth: a link the user drags is asked of the controller
(the Document refuses a bad one and nothing is drawn); nodes, links and positions are
redrawn from the model after every change. Per node: a title with its smoothed time,
a title bar coloured by its share of the frame budget (red with "!" when it has errors),
pins coloured and shaped by port type, and a badge for the fused GPU pass it shares.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import dearpygui.dearpygui as dpg

from fusegraph.editor import timing
from fusegraph.nodes import REGISTRY
from fusegraph.runtime.outputs import is_file_sink

PORT_COLOURS = {"video": (90, 160, 255), "mask": (120, 220, 120), "audio": (255, 160, 60)}
PORT_SHAPES = {"video": dpg.mvNode_PinShape_CircleFilled, "mask": dpg.mvNode_PinShape_QuadFilled,
               "audio": dpg.mvNode_PinShape_TriangleFilled}
NEUTRAL = (60, 64, 72)
ERROR = (215, 35, 35)
HEAT_BARS = {"green": (40, 110, 60), "yellow": (130, 110, 25), "red": (165, 75, 20)}
GREY = (150, 150, 150)
PAD = 8  # imnodes' node padding: a node's content rect is its frame inset by this
TOOLTIP_DELAY = 0.35


def rect(item: int) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) on screen of an item drawn at least once, else None."""
    state = dpg.get_item_state(item)
    if "rect_min" not in state or "rect_max" not in state:
        return None
    (x0, y0), (x1, y1) = state["rect_min"], state["rect_max"]
    if x1 <= x0 and y1 <= y0:  # created but not drawn yet
        return None
    return float(x0), float(y0), float(x1), float(y1)


def lighter(c: tuple[int, int, int], amount: int = 45) -> tuple[int, int, int]:
    return tuple(min(255, v + amount) for v in c)  # type: ignore[return-value]


@dataclass
class NodeView:
    item: int
    type: str
    theme: int
    colours: list[int]  # title bar, hovered, selected theme colour items
    outline: int
    border: int
    badge: int
    ms_text: int
    meter: int  # sound nodes, live: a level meter
    record: int | None = None  # file sinks: the Record toggle (off: the live run writes no file)
    inputs: dict[str, int] = field(default_factory=dict)  # endpoint "node.port" -> attribute item
    outputs: dict[str, int] = field(default_factory=dict)
    label: str = ""
    look: tuple = ()


class NodeCanvas:
    def __init__(self, ctl, parent: int | str):
        self.ctl = ctl
        self.views: dict[str, NodeView] = {}
        self.attr_endpoint: dict[int, tuple[str, bool]] = {}  # attribute -> (endpoint, is output)
        self.links: dict[tuple[str, str], int] = {}  # (src, dst) -> link item
        self.link_key: dict[int, tuple[str, str]] = {}
        self._dpg_selection: list[int] = []
        self._hover: tuple[str | None, float] = (None, 0.0)
        self._timing_at = 0.0
        self.on_record = lambda node_id, on: ctl.record(node_id, on)  # the app asks before replacing a file
        pins = ((dpg.mvNodeCol_Pin, 0), (dpg.mvNodeCol_PinHovered, 70))
        links = ((dpg.mvNodeCol_Link, 0), (dpg.mvNodeCol_LinkHovered, 70), (dpg.mvNodeCol_LinkSelected, 100))
        self._pin_themes = {t: self._colour_theme(dpg.mvNodeAttribute, c, pins) for t, c in PORT_COLOURS.items()}
        self._link_themes = {t: self._colour_theme(dpg.mvNodeLink, c, links) for t, c in PORT_COLOURS.items()}
        self.editor = dpg.add_node_editor(parent=parent, callback=self._on_link, delink_callback=self._on_delink,
                                          minimap=True, minimap_location=dpg.mvNodeMiniMap_Location_BottomRight,
                                          width=-1, height=-1)
        with dpg.window(show=False, no_title_bar=True, no_resize=True, no_move=True, autosize=True,
                        no_focus_on_appearing=True, no_saved_settings=True, no_scrollbar=True) as self.tooltip:
            self.tooltip_text = dpg.add_text("", wrap=460)

    # ---- themes ------------------------------------------------------------------------------
    @staticmethod
    def editor_theme() -> int:
        """A global theme (the node editor ignores its canvas colours in an item theme): no opaque
        canvas fill, since on software GL (llvmpipe) a full-canvas fill costs milliseconds a frame
        and the window behind is the same colour; a sparse grid keeps the sense of space."""
        with dpg.theme() as th:
            with dpg.theme_component(dpg.mvAll):
                dpg.add_theme_color(dpg.mvNodeCol_GridBackground, (0, 0, 0, 0), category=dpg.mvThemeCat_Nodes)
                dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Core)
                dpg.add_theme_color(dpg.mvNodeCol_GridLine, (58, 58, 62, 255), category=dpg.mvThemeCat_Nodes)
                dpg.add_theme_color(dpg.mvNodesCol_GridLinePrimary, (72, 72, 78, 255), category=dpg.mvThemeCat_Nodes)
                dpg.add_theme_style(dpg.mvNodeStyleVar_GridSpacing, 48, category=dpg.mvThemeCat_Nodes)
        return th

    @staticmethod
    def _colour_theme(component: int, colour, shades: tuple[tuple[int, int], ...]) -> int:
        """A theme for one kind of item: each (theme colour, lift) gets `colour` lightened by lift."""
        with dpg.theme() as th:
            with dpg.theme_component(component):
                for target, lift in shades:
                    dpg.add_theme_color(target, lighter(colour, lift), category=dpg.mvThemeCat_Nodes)
        return th

    # ---- building from the model ----------------------------------------------------------
    def _create(self, node) -> NodeView:
        spec = REGISTRY[node.type]
        with dpg.theme() as theme:
            with dpg.theme_component(dpg.mvNode):
                colours = [dpg.add_theme_color(c, NEUTRAL, category=dpg.mvThemeCat_Nodes)
                           for c in (dpg.mvNodeCol_TitleBar, dpg.mvNodeCol_TitleBarHovered,
                                     dpg.mvNodeCol_TitleBarSelected)]
                outline = dpg.add_theme_color(dpg.mvNodeCol_NodeOutline, (100, 100, 100), category=dpg.mvThemeCat_Nodes)
                border = dpg.add_theme_style(dpg.mvNodeStyleVar_NodeBorderThickness, 1.0, category=dpg.mvThemeCat_Nodes)
        x, y = node.pos
        item = dpg.add_node(label=node.id, pos=[int(x), int(y)], parent=self.editor, user_data=node.id)
        dpg.bind_item_theme(item, theme)
        with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static, parent=item):
            dpg.add_text(f"{node.type} ({spec.role})", color=GREY)
            badge = dpg.add_text("", show=False)
            ms_text = dpg.add_text("", show=False)
            meter = dpg.add_text("", show=False)
            record = None
            if is_file_sink(node.type):
                record = dpg.add_checkbox(label="Record", default_value=False, user_data=node.id,
                                          callback=lambda s, a, u: self.on_record(u, a))
        view = NodeView(item, node.type, theme, colours, outline, border, badge, ms_text, meter, record)
        for port in spec.inputs:
            text = port.name + ("" if port.required else " (opt)")
            attr = dpg.add_node_attribute(attribute_type=dpg.mvNode_Attr_Input, shape=PORT_SHAPES[port.type],
                                          parent=item)
            dpg.add_text(text, color=PORT_COLOURS[port.type], parent=attr)
            dpg.bind_item_theme(attr, self._pin_themes[port.type])
            view.inputs[f"{node.id}.{port.name}"] = attr
        for port in spec.outputs:
            attr = dpg.add_node_attribute(attribute_type=dpg.mvNode_Attr_Output, shape=PORT_SHAPES[port.type],
                                          parent=item)
            dpg.add_text(port.name, color=PORT_COLOURS[port.type], parent=attr)
            dpg.bind_item_theme(attr, self._pin_themes[port.type])
            view.outputs[f"{node.id}.{port.name}"] = attr
        for endpoint, attr in view.inputs.items():
            self.attr_endpoint[attr] = (endpoint, False)
        for endpoint, attr in view.outputs.items():
            self.attr_endpoint[attr] = (endpoint, True)
        return view

    def _delete(self, node_id: str) -> None:
        view = self.views.pop(node_id)
        for attr in [*view.inputs.values(), *view.outputs.values()]:
            self.attr_endpoint.pop(attr, None)
        for key in [k for k in self.links if k[0].split(".")[0] == node_id or k[1].split(".")[0] == node_id]:
            link = self.links.pop(key)  # first: a link left pointing at a deleted pin crashes the editor
            self.link_key.pop(link, None)
            if dpg.does_item_exist(link):
                dpg.delete_item(link)
        dpg.delete_item(view.item)
        dpg.delete_item(view.theme)

    def sync(self) -> None:
        """Make the canvas show the model: nodes, links, positions."""
        graph = self.ctl.graph
        wanted = {n.id: n for n in graph.nodes}
        for node_id in [k for k, v in self.views.items() if k not in wanted or wanted[k].type != v.type]:
            self._delete(node_id)
        for node in graph.nodes:
            if node.id not in self.views:
                self.views[node.id] = self._create(node)
        links = {(l.src, l.dst) for l in graph.links}
        for key in [k for k in self.links if k not in links]:
            item = self.links.pop(key)
            self.link_key.pop(item, None)
            dpg.delete_item(item)
        for src, dst in sorted(links - set(self.links)):
            a, b = self._attr(src, True), self._attr(dst, False)
            if a is None or b is None:
                continue
            item = dpg.add_node_link(a, b, parent=self.editor)
            src_type = self._port_type(src)
            dpg.bind_item_theme(item, self._link_themes.get(src_type, self._link_themes["video"]))
            self.links[(src, dst)] = item
            self.link_key[item] = (src, dst)
        self.sync_layout()
        self.refresh_looks(force=True)

    def sync_layout(self) -> None:
        for node in self.ctl.graph.nodes:
            view = self.views.get(node.id)
            if view is not None and self._moved(view.item, node.pos):
                dpg.set_item_pos(view.item, [int(round(node.pos[0])), int(round(node.pos[1]))])

    def _attr(self, endpoint: str, output: bool) -> int | None:
        view = self.views.get(endpoint.split(".", 1)[0])
        if view is None:
            return None
        return (view.outputs if output else view.inputs).get(endpoint)

    def _port_type(self, endpoint: str) -> str:
        from fusegraph.runtime.validate import output_type

        node, port = endpoint.split(".", 1)
        try:
            return output_type(self.ctl.graph, node, port)
        except Exception:
            return "video"

    @staticmethod
    def _moved(item: int, pos) -> bool:
        x, y = dpg.get_item_pos(item)
        return abs(x - pos[0]) > 0.5 or abs(y - pos[1]) > 0.5

    # ---- user edits on the canvas ------------------------------------------------------------
    def _on_link(self, sender, app_data, user_data=None) -> None:
        a, b = (self.attr_endpoint.get(i) for i in app_data)
        if a is None or b is None:
            return
        if not a[1]:  # dragged from an input to an output
            a, b = b, a
        if a[1] and not b[1]:
            self.ctl.link(a[0], b[0])  # the model redraws it if accepted; a refusal shows in the status bar

    def _on_delink(self, sender, app_data, user_data=None) -> None:
        key = self.link_key.get(app_data)
        if key is not None:
            self.ctl.unlink(key[1])

    def selected_links(self) -> list[str]:
        """Destinations of the links selected on the canvas."""
        return [self.link_key[i][1] for i in dpg.get_selected_links(self.editor) if i in self.link_key]

    def poll(self) -> None:
        """Once per UI frame: selection and finished drags from the canvas into the model."""
        selected = list(dpg.get_selected_nodes(self.editor))
        if self._dpg_selection is None:  # cleared by a command: wait until the node editor shows it
            if selected:
                selected = None
            else:
                self._dpg_selection = []
        if selected is not None and selected != self._dpg_selection:
            self._dpg_selection = selected
            by_item = {v.item: k for k, v in self.views.items()}
            ids = [by_item[i] for i in selected if i in by_item]
            self.ctl.select(ids)
            if ids:  # a new node selection: links stay selected only between selected nodes
                chosen = set(ids)
                if any(k.split(".")[0] not in chosen or v.split(".")[0] not in chosen
                       for k, v in (self.link_key[i] for i in dpg.get_selected_links(self.editor)
                                    if i in self.link_key)):
                    dpg.clear_selected_links(self.editor)
        if not dpg.is_mouse_button_down(dpg.mvMouseButton_Left):
            moved = {}
            for node in self.ctl.graph.nodes:
                view = self.views.get(node.id)
                if view is not None and self._moved(view.item, node.pos):
                    moved[node.id] = tuple(float(v) for v in dpg.get_item_pos(view.item))
            if moved:
                self.ctl.move(moved)
        self._poll_tooltip()

    def clear_selection(self) -> None:
        """After a command (delete, paste, add): the canvas shows the controller's selection and
        no link stays selected from before (a later Delete would take it unseen)."""
        dpg.clear_selected_nodes(self.editor)
        dpg.clear_selected_links(self.editor)
        self._dpg_selection = None  # the node editor may report its old selection once more

    # ---- coordinates -----------------------------------------------------------------------
    def origin(self) -> tuple[float, float]:
        """Screen position of grid (0, 0) (the canvas pans)."""
        for node in self.ctl.graph.nodes:
            view = self.views.get(node.id)
            r = rect(view.item) if view is not None and dpg.is_item_visible(view.item) else None
            if r is not None and (r[0] or r[1]):
                px, py = dpg.get_item_pos(view.item)
                return r[0] - px - PAD, r[1] - py - PAD
        r = self._box()
        return r[0], r[1]

    def _box(self) -> tuple[float, float, float, float]:
        """The canvas's screen rectangle (its child window's position in the full-viewport main window)."""
        state = dpg.get_item_state(dpg.get_item_parent(self.editor))
        (x, y), (w, h) = state.get("pos", (0, 0)), state.get("rect_size", (0, 0))
        return float(x), float(y), float(x + w), float(y + h)

    def to_grid(self, screen: tuple[float, float]) -> tuple[float, float]:
        ox, oy = self.origin()
        return screen[0] - ox, screen[1] - oy

    def visible_center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self._box()
        return self.to_grid(((x0 + x1) / 2 - 80, (y0 + y1) / 2 - 40))

    def hovered(self) -> bool:
        mx, my = dpg.get_mouse_pos(local=False)
        x0, y0, x1, y1 = self._box()
        return x0 <= mx < x1 and y0 <= my < y1

    def hovered_node(self) -> str | None:
        for node_id, view in self.views.items():
            if dpg.is_item_hovered(view.item):
                return node_id
        return None

    def geometry(self) -> dict:
        """Screen rectangles of nodes and pins (the end-to-end tests drive the mouse with them)."""
        nodes, pins, records = {}, {}, {}
        for node_id, view in self.views.items():
            r = rect(view.item)
            if r is None:
                continue
            x0, y0, x1, y1 = r
            nodes[node_id] = {"rect": [x0 - PAD, y0 - PAD, x1 + PAD, y1 + PAD], "title": [x0 + 4, y0 + 6]}
            for endpoint, attr in [*view.inputs.items(), *view.outputs.items()]:
                text = dpg.get_item_children(attr, 1)[0]
                tr = rect(text)
                if tr is None:
                    continue
                ty0, ty1 = tr[1], tr[3]
                output = self.attr_endpoint[attr][1]
                pins[("out:" if output else "in:") + endpoint] = [x1 + PAD if output else x0 - PAD, (ty0 + ty1) / 2]
            if view.record is not None and (r := rect(view.record)) is not None:
                records[node_id] = [r[0] + 8, (r[1] + r[3]) / 2]
        return {"nodes": nodes, "pins": pins, "record_toggles": records}

    # ---- timing and error looks ---------------------------------------------------------------
    def refresh_looks(self, force: bool = False) -> None:
        """Titles, title-bar colours, badges: errors, live timing, fused passes, selection."""
        now = time.monotonic()
        if not force and now - self._timing_at < 0.25:
            return
        self._timing_at = now
        stats = self.ctl.stats()
        node_ms = stats.node_ms if stats else {}
        levels = stats.levels if stats else {}
        bands = timing.fused_bands(stats.passes) if stats else {}
        errors = self.ctl.node_errors()
        selected = set(self.ctl.selection)
        recording = self.ctl.recording
        for node_id, view in self.views.items():
            ms = node_ms.get(node_id)
            level = timing.heat(ms)[0] if ms is not None else None
            err = bool(errors.get(node_id))
            band = bands.get(node_id, [])
            db = levels.get(node_id)
            rec = node_id in recording
            look = (ms and round(ms, 1), level, err, node_id in selected, tuple(b.index for b in band),
                    db if db is None else round(db), rec)
            if look == view.look:
                continue
            view.look = look
            if view.record is not None:
                dpg.set_value(view.record, rec)
                dpg.configure_item(view.record, label="REC: recording" if rec else "Record")
            title = (("! " if err else "") + node_id + (f"   {ms:.1f} ms" if ms is not None else "")
                     + ("   [REC]" if rec else ""))
            dpg.configure_item(view.item, label=title)
            bar = ERROR if err else HEAT_BARS.get(level, NEUTRAL)
            if node_id in selected:
                bar = lighter(bar, 70)
            for c in view.colours:
                dpg.set_value(c, (*bar, 255))
            outline = band[0].colour if band else ((230, 200, 90) if node_id in selected else (100, 100, 100))
            dpg.set_value(view.outline, (*outline, 255))
            dpg.set_value(view.border, [3.0 if band or node_id in selected else 1.0, 0.0])
            if ms is not None:
                share = 100.0 * ms / timing.BUDGET_MS
                dpg.set_value(view.ms_text, f"{share:.0f}% of frame budget")
                dpg.configure_item(view.ms_text, show=True, color=timing.heat(ms)[1])
            else:
                dpg.configure_item(view.ms_text, show=False)
            if db is not None:
                dpg.set_value(view.meter, meter_text(db))
                dpg.configure_item(view.meter, show=True, color=meter_colour(db))
            else:
                dpg.configure_item(view.meter, show=False)
            if band:
                b = band[-1]
                dpg.set_value(view.badge, f"[fused pass #{b.index}]")
                dpg.configure_item(view.badge, show=True, color=b.colour)
            else:
                dpg.configure_item(view.badge, show=False)

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
        if stats and node_id in stats.node_ms:
            ms = stats.node_ms[node_id]
            lines.append(f"time: {ms:.2f} ms smoothed ({100 * ms / timing.BUDGET_MS:.0f}% of the 33 ms budget)")
            bands = timing.fused_bands(stats.passes).get(node_id)
            if bands:
                lines.append(timing.split_text(bands, stats.passes, stats.node_ms))
        return "\n".join(lines)

    def _poll_tooltip(self) -> None:
        node_id = self.hovered_node() if not dpg.is_mouse_button_down(dpg.mvMouseButton_Left) else None
        now = time.monotonic()
        if node_id != self._hover[0]:
            self._hover = (node_id, now)
        if node_id is None or now - self._hover[1] < TOOLTIP_DELAY:
            dpg.configure_item(self.tooltip, show=False)
            return
        mx, my = dpg.get_mouse_pos(local=False)
        dpg.set_value(self.tooltip_text, self.tooltip_for(node_id))
        dpg.configure_item(self.tooltip, show=True, pos=[int(mx) + 18, int(my) + 18])


def meter_text(db: float, width: int = 16) -> str:
    """A level meter in text: a bar over -60..0 dBFS and the reading."""
    filled = int(round(width * min(1.0, max(0.0, (db + 60.0) / 60.0))))
    return "[" + "|" * filled + "." * (width - filled) + f"] {max(db, -99.0):4.0f} dBFS"


def meter_colour(db: float) -> tuple[int, int, int]:
    """Green, yellow from -12 dBFS, red from -3 (about to clip)."""
    return (230, 70, 60) if db > -3 else (220, 190, 60) if db > -12 else (110, 200, 120)
