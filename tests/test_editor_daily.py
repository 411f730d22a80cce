"""The editor as a daily tool (issue 11), driven like a user: real window, real input (xdotool).

Each test reproduced a problem a new user met within an hour, and now passes."""
from __future__ import annotations

import json
import time

import pytest
from test_editor_e2e import GRAPH, Editor, links, node_ids, xvfb  # noqa: F401  (xvfb: a fixture)


@pytest.fixture
def editor(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "graph.json"
    preset.write_text(json.dumps(GRAPH))
    ed = Editor(xvfb, preset, tmp_path)
    try:
        ed.wait(lambda p: {"out:blur.out", "in:preview.in"} <= set(p.get("pins", {})), what="the window")
        yield ed
    finally:
        ed.close()


def press(ed: Editor, label: str) -> None:
    x0, y0, x1, y1 = ed.probe()["buttons"][label]
    ed.click((x0 + x1) / 2, (y0 + y1) / 2)


def open_menu(ed: Editor, label: str) -> dict:
    ed.click(*ed.probe()["menus"][label])
    return ed.wait(lambda p: p["menus_open"] == [label], what=f"the {label} menu open")


def asked(p: dict) -> bool:
    """The unsaved-changes question is open and drawn (its buttons have places on screen)."""
    return p["modal"] == ["Unsaved changes"] and {"Save", "Discard", "Cancel"} <= set(p["buttons"])


def test_a_question_asked_while_a_menu_is_open_is_shown_and_escape_closes_menus(editor):
    ed = editor
    p = ed.probe()
    ed.drag(p["pins"]["out:blur.out"], p["pins"]["in:preview.in"])
    ed.wait(lambda p: p["dirty"], what="an unsaved change")
    # Ctrl+N with the File menu open: the question is drawn over it (it was open but invisible,
    # and every shortcut waited for it)
    open_menu(ed, "File")
    ed.key("ctrl+n")
    p = ed.wait(asked, what="the question drawn")
    assert p["menus_open"] == []
    ed.key("Escape")  # Escape is Cancel
    p = ed.wait(lambda p: p["modal"] == [], what="the question cancelled")
    assert p["dirty"] and ("blur.out", "preview.in") in links(p)
    # Escape closes a menu
    open_menu(ed, "Edit")
    ed.point(700, 400)
    ed.key("Escape")
    ed.wait(lambda p: p["menus_open"] == [], what="the menu closed")
    # shortcuts work again: Ctrl+O over an open menu asks too, Cancel keeps the graph
    open_menu(ed, "View")
    ed.key("ctrl+o")
    ed.wait(asked, what="the question for Ctrl+O")
    press(ed, "Cancel")
    ed.wait(lambda p: p["modal"] == [], what="the question answered")
    # Ctrl+Q over an open menu: the question, and Discard quits
    open_menu(ed, "File")
    ed.key("ctrl+q")
    ed.wait(asked, what="the question for Ctrl+Q")
    press(ed, "Discard")
    assert ed.proc.wait(10) == 0
