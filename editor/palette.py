"""The palette (node kinds by category, with a search box; docstrings as tooltips) and the
quick-add popup (Tab, Space or a right click on the canvas: type, Enter adds at the cursor)."""
from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg

from fusegraph.editor.pin_style import COLOURS as PORT_COLOURS
from fusegraph.nodes import REGISTRY

CATEGORY_ORDER = ("source", "filter", "composite", "ai", "sink")


def port_types() -> set[str]:
    """The types some node's pins carry (the legend's entries)."""
    return {str(t) for spec in REGISTRY.values() for port in (*spec.inputs, *spec.outputs)
            for t in (port.type, *port.accepts)}


def summary(kind: str) -> str:
    return REGISTRY[kind].doc.strip().splitlines()[0]


def categories() -> dict[str, list[str]]:
    """category -> kinds, in a stable order (known categories first, then any new ones)."""
    out: dict[str, list[str]] = {}
    for kind, spec in sorted(REGISTRY.items()):
        out.setdefault(spec.category, []).append(kind)
    order = [c for c in CATEGORY_ORDER if c in out] + sorted(c for c in out if c not in CATEGORY_ORDER)
    return {c: out[c] for c in order}


def match_kinds(query: str) -> list[str]:
    """Kinds matching `query` (name, category or description), best first."""
    q = query.strip().lower()
    if not q:
        return [k for kinds in categories().values() for k in kinds]
    scored = []
    for kind, spec in REGISTRY.items():
        if kind.startswith(q):
            score = 0
        elif q in kind:
            score = 1
        elif q in spec.category:
            score = 2
        elif q in spec.doc.lower():
            score = 3
        else:
            continue
        scored.append((score, kind))
    return [k for _, k in sorted(scored)]


LABEL_W = 80  # the category column
CHAR_W, BUTTON_PAD = 7, 16  # the default font's advance; a button's frame padding and spacing


def wrap(kinds: list[str], width: int) -> list[list[str]]:
    """Kinds in lines of buttons that fit `width` pixels (at least one per line)."""
    lines: list[list[str]] = [[]]
    used = 0
    for kind in kinds:
        w = len(kind) * CHAR_W + BUTTON_PAD
        if lines[-1] and used + w > width:
            lines.append([])
            used = 0
        lines[-1].append(kind)
        used += w
    return lines


class Palette:
    """One row of buttons per category under a search box (it sits under the canvas)."""

    def __init__(self, parent: int | str, on_add: Callable[[str], None], typing_items: set, width: int = 580):
        self.on_add = on_add
        self.width = width  # the rows wrap at this width (clipped buttons read "video_denois")
        self.buttons: dict[str, int] = {}
        self.tooltips: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        with dpg.group(parent=parent):
            with dpg.group(horizontal=True):
                dpg.add_text("Add node")
                self.search = dpg.add_input_text(hint="search: name, category, text", width=230,
                                                 callback=self._filter)
                typing_items.add(self.search)
                legend = port_types()  # not the network's inner tensor types: no pin carries them
                for t, c in PORT_COLOURS.items():
                    if t in legend:
                        dpg.add_text(t, color=c)
            for category, kinds in categories().items():
                with dpg.group() as row:
                    self.rows[category] = row
                    for line_no, line in enumerate(wrap(kinds, self.width - LABEL_W)):
                        with dpg.group(horizontal=True):
                            dpg.add_text(f"{category if line_no == 0 else '':>9}", color=(150, 150, 150))
                            for kind in line:
                                self._button(kind)
            dpg.add_text("Tab/Space/right click: quick add at the cursor.  Ctrl+click a link: detach.",
                         color=(140, 140, 140))

    def _button(self, kind: str) -> None:
        b = dpg.add_button(label=kind, callback=lambda s, a, u: self.on_add(u), user_data=kind)
        with dpg.tooltip(b) as tip:  # its own node's doc
            dpg.add_text(REGISTRY[kind].doc.strip())
        self.buttons[kind], self.tooltips[kind] = b, tip

    def geometry(self) -> dict[str, list[float]]:
        """The screen centre of each shown button (the end-to-end tests click them)."""
        out = {}
        for kind, b in self.buttons.items():
            state = dpg.get_item_state(b)
            if dpg.is_item_shown(b) and state.get("visible") and "rect_min" in state:
                (x0, y0), (x1, y1) = state["rect_min"], state["rect_max"]
                out[kind] = [(x0 + x1) / 2, (y0 + y1) / 2]
        return out

    def _filter(self, sender=None, query: str = "", user_data=None) -> None:
        shown = set(match_kinds(query or ""))
        for kind, b in self.buttons.items():
            dpg.configure_item(b, show=kind in shown)
        for category, row in self.rows.items():
            dpg.configure_item(row, show=any(k in shown for k in categories()[category]))


class QuickAdd:
    """A small popup with a search field; Enter adds the best match where it was opened."""

    def __init__(self, on_add: Callable[[str, tuple[float, float]], None], typing_items: set):
        self.on_add = on_add
        self.where: tuple[float, float] = (0.0, 0.0)
        self.only: list[str] | None = None
        with dpg.window(label="Add node", show=False, popup=True, no_title_bar=True, width=260, height=250,
                        no_saved_settings=True) as self.window:
            dpg.add_text("Add node (Enter: first match)")
            self.search = dpg.add_input_text(width=-1, callback=self._typed)
            self.list = dpg.add_listbox([], width=-1, num_items=9, callback=self._picked)
        typing_items.add(self.search)

    @property
    def shown(self) -> bool:
        return bool(dpg.is_item_shown(self.window))

    def open(self, screen: tuple[float, float], grid: tuple[float, float], only: list[str] | None = None) -> None:
        """only: the kinds to offer (a link dropped on empty canvas: those that can take it)."""
        self.where = grid
        self.only = only
        dpg.set_value(self.search, "")
        self._typed(None, "")
        dpg.configure_item(self.window, show=True, pos=[int(screen[0]), int(screen[1])])
        dpg.focus_item(self.search)

    def close(self) -> None:
        dpg.configure_item(self.window, show=False)

    def matches(self, query: str) -> list[str]:
        found = match_kinds(query or "")
        return found if self.only is None else [k for k in found if k in self.only]

    def _typed(self, sender, query: str, user_data=None) -> None:
        matches = self.matches(query)
        dpg.configure_item(self.list, items=matches)
        if matches:
            dpg.set_value(self.list, matches[0])

    def add_first(self) -> str | None:
        matches = self.matches(dpg.get_value(self.search) or "")
        if not matches:
            return None
        self.close()
        self.on_add(matches[0], self.where)
        return matches[0]

    def _picked(self, sender, kind: str, user_data=None) -> None:
        if kind:
            self.close()
            self.on_add(kind, self.where)
