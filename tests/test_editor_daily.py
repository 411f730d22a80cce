"""The editor as a daily tool (issue 11), driven like a user: real window, real input (xdotool).

Each test reproduced a problem a new user met within an hour, and now passes."""
from __future__ import annotations

import json
import time
from pathlib import Path

from test_editor_e2e import GRAPH, Editor, editor, links, node_ids, xvfb  # noqa: F401  (fixtures)


def firm_click(ed: Editor, x: float, y: float) -> None:
    """A click whose press and release the editor sees in different frames however slow it runs
    (a widget inside a node takes a press only when it saw the pointer over it first)."""
    ed.point(x, y)
    seen = ed.probe()["frame"]
    ed.wait(lambda p: p["frame"] >= seen + 2, 5.0, "two frames with the pointer there")
    ed.xdo("mousedown", 1)
    seen = ed.probe()["frame"]
    ed.wait(lambda p: p["frame"] >= seen + 2, 5.0, "two frames with the button down")
    ed.xdo("mouseup", 1)


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
    ed.wait(lambda p: asked(p) and p["menus_open"] == [], what="the question drawn, the menu closed")
    ed.key("Escape")  # Escape is Cancel
    p = ed.wait(lambda p: p["modal"] == [], what="the question cancelled")
    assert p["dirty"] and ("blur.out", "preview.in") in links(p)
    # Escape closes a menu
    open_menu(ed, "Edit")
    ed.point(700, 400)
    ed.key("Escape")
    ed.wait(lambda p: p["menus_open"] == [], what="the menu closed")
    # Help: F1 shows the shortcut list, Escape closes it; Ctrl+A selects every node
    ed.key("F1")
    p = ed.wait(lambda p: p["modal"] == ["Keyboard and mouse"] and "Close" in p["buttons"], what="the shortcuts")
    ed.key("Escape")
    ed.wait(lambda p: p["modal"] == [], what="the shortcuts closed")
    ed.key("ctrl+a")
    ed.wait(lambda p: sorted(p["selection"]) == ["blur", "pattern", "preview"], what="all selected")
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


RECORDED = {
    "format": 2,
    "nodes": [
        {"id": "pattern", "type": "pattern", "params": {"width": 160, "height": 96}, "pos": [40, 200]},
        {"id": "out", "type": "video_out", "params": {"path": "out.mp4"}, "pos": [360, 200]},
    ],
    "links": [{"from": "pattern.out", "to": "out.in"}],
}


def frames_in(path) -> int:
    import av

    with av.open(str(path)) as f:
        return sum(1 for _ in f.decode(video=0))


def test_the_live_run_writes_a_file_sink_only_while_recording_and_never_replaces_unasked(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "recorded.json"
    preset.write_text(json.dumps(RECORDED))
    ed = Editor(xvfb, preset, tmp_path, run=True)
    out = tmp_path / "out.mp4"
    try:
        p = ed.wait(lambda p: p.get("running") and "out" in p.get("record_toggles", {}), what="the live run")
        time.sleep(2.0)  # running live: no file appears (it used to record into the working folder)
        assert not out.exists() and not [f for f in tmp_path.iterdir() if ".partial" in f.name]
        # Record on: it records; Record off: the file is published, whole
        firm_click(ed, *ed.probe()["record_toggles"]["out"])
        p = ed.wait(lambda p: "recording to" in p["status"], what="recording")
        time.sleep(1.5)
        firm_click(ed, *ed.probe()["record_toggles"]["out"])
        ed.wait(lambda p: "recording stopped" in p["status"], what="the recording stopped")
        ed.wait(lambda p: out.exists(), what="the recorded file")
        n = frames_in(out)
        assert n > 0
        before = out.stat().st_mtime_ns
        # again: the file exists, so it asks; Cancel keeps it and records nothing
        firm_click(ed, *ed.probe()["record_toggles"]["out"])
        ed.wait(lambda p: p["modal"] == ["Replace the file?"] and "Cancel" in p["buttons"], what="the question")
        press(ed, "Cancel")
        p = ed.wait(lambda p: p["modal"] == [], what="the answer")
        time.sleep(1.0)
        assert "recording to" not in p["status"] and out.stat().st_mtime_ns == before
        # Replace: it records over it, published when the editor quits (nothing unsaved: no question)
        firm_click(ed, *ed.probe()["record_toggles"]["out"])
        ed.wait(lambda p: p["modal"] == ["Replace the file?"] and "Replace" in p["buttons"], what="the question")
        press(ed, "Replace")
        ed.wait(lambda p: "recording to" in p["status"], what="recording again")
        time.sleep(1.0)
        ed.key("ctrl+q")
        assert ed.proc.wait(20) == 0
        assert out.stat().st_mtime_ns != before and frames_in(out) > 0
        assert not [f for f in tmp_path.iterdir() if ".partial" in f.name]
    finally:
        ed.close()


CHAIN = {
    "format": 2,
    "nodes": [
        {"id": "pattern", "type": "pattern", "params": {"width": 160, "height": 96}, "pos": [40, 120]},
        {"id": "blur", "type": "blur", "params": {}, "pos": [260, 120]},
        {"id": "color", "type": "color", "params": {}, "pos": [480, 120]},
        {"id": "preview", "type": "preview", "params": {}, "pos": [700, 120]},
        {"id": "image", "type": "image", "params": {}, "pos": [300, 420]},
    ],
    "links": [{"from": "pattern.out", "to": "blur.in"}, {"from": "blur.out", "to": "color.in"},
              {"from": "color.out", "to": "preview.in"}],
}


def test_delete_takes_what_is_selected_in_one_undo_step_and_says_what_went(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "chain.json"
    preset.write_text(json.dumps(CHAIN))
    ed = Editor(xvfb, preset, tmp_path)
    try:
        p = ed.wait(lambda p: {"pattern", "preview", "image"} <= set(p.get("nodes", {})), what="the window")
        all_links = links(p)
        # a box selection over the chain: its nodes and links
        r0, r1 = p["nodes"]["pattern"]["rect"], p["nodes"]["preview"]["rect"]
        ed.drag((r0[0] - 20, r0[1] - 20), (r1[2] + 20, r1[3] + 20))
        p = ed.wait(lambda p: len(p["selected_links"]) == 3, what="the box selection")
        # then a click on the unconnected image node, and Delete: only the image goes
        firm_click(ed, *p["nodes"]["image"]["title"])
        p = ed.wait(lambda p: p["selection"] == ["image"], what="image selected")
        assert p["selected_links"] == []  # the links of the old box selection are not selected any more
        ed.key("Delete")
        p = ed.wait(lambda p: "image" not in node_ids(p), what="image deleted")
        assert links(p) == all_links and p["status"].startswith("deleted image (")
        ed.key("ctrl+z")
        p = ed.wait(lambda p: "image" in node_ids(p), what="one undo")
        assert links(p) == all_links
        # the box selection, then a node added from the palette (it is the selection), Delete:
        # only the new node goes (the links selected before went with it, unseen, and took five undos)
        ed.drag((r0[0] - 20, r0[1] - 20), (r1[2] + 20, r1[3] + 20))
        p = ed.wait(lambda p: len(p["selected_links"]) == 3, what="the box selection")
        firm_click(ed, *p["palette"]["threshold"])
        p = ed.wait(lambda p: p["selection"] == ["threshold"], what="the added node selected")
        assert p["selected_links"] == []
        ed.key("Delete")
        p = ed.wait(lambda p: "threshold" not in node_ids(p), what="the added node deleted")
        assert links(p) == all_links and p["status"].startswith("deleted threshold (")
        # the box selection again, Delete: everything in it, one step, and the status says so
        p = ed.wait(lambda p: "image" in p["nodes"], what="image drawn")
        ed.drag((r0[0] - 20, r0[1] - 20), (r1[2] + 20, r1[3] + 20))
        ed.wait(lambda p: len(p["selected_links"]) == 3 and len(p["selection"]) == 4, what="the box selection")
        ed.key("Delete")
        p = ed.wait(lambda p: node_ids(p) == {"image"}, what="the chain deleted")
        assert links(p) == set() and "3 links" in p["status"] and "pattern" in p["status"]
        ed.key("ctrl+z")
        p = ed.wait(lambda p: len(node_ids(p)) == 5, what="one undo")
        assert links(p) == all_links and p["selected_links"] == []
    finally:
        ed.close()


def test_the_live_state_follows_the_graph(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "chain.json"
    preset.write_text(json.dumps(CHAIN))
    ed = Editor(xvfb, preset, tmp_path, run=True)
    try:
        p = ed.wait(lambda p: p.get("running") and p["live_frame"] > 2 and "image" in p["nodes"], what="the live run")
        # the image node has no file: selecting it previews it, it fails alone, the run goes on
        firm_click(ed, *p["nodes"]["image"]["title"])
        p = ed.wait(lambda p: p["selection"] == ["image"] and "image" in p["errors_text"], what="image marked")
        seen = p["live_frame"]
        p = ed.wait(lambda p: p["running"] and p["live_frame"] > seen + 3, what="the run going on")
        assert "no image file" in p["errors_text"]
        ed.wait(lambda p: "nothing from" in p["preview_caption"], what="no stale picture under its name")
        # preview color, then delete it: the preview leaves the deleted node
        firm_click(ed, *p["nodes"]["color"]["title"])
        ed.wait(lambda p: p["preview_caption"].startswith("Preview: color"), what="color previewed")
        ed.key("Delete")
        p = ed.wait(lambda p: "color" not in node_ids(p), what="color deleted")
        p = ed.wait(lambda p: "color" not in p["preview_caption"], what="the preview off the deleted node")
        # File > New (Discard): the old graph stops, and the status says why nothing runs
        ed.key("ctrl+n")
        ed.wait(asked, what="the question")
        press(ed, "Discard")
        p = ed.wait(lambda p: node_ids(p) == set() and not p["running"], what="the new graph, not running")
        assert "no sink" in p["errors_text"] and "not running" in p["preview_caption"]
    finally:
        ed.close()


def test_after_crash_recovery_the_run_starts_and_f5_toggles_it(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "graph.json"
    preset.write_text(json.dumps(GRAPH))
    time.sleep(0.05)
    recovered = json.loads(json.dumps(GRAPH))
    recovered["links"].append({"from": "blur.out", "to": "preview.in"})
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "recovery.json").write_text(json.dumps(recovered))
    ed = Editor(xvfb, preset, tmp_path, run=True)
    try:
        ed.wait(lambda p: p.get("modal") == ["Recover unsaved work?"] and "Recover" in p["buttons"], what="the offer")
        press(ed, "Recover")
        p = ed.wait(lambda p: p["running"] and p["live_frame"] > 2, what="the recovered graph running")
        assert ("blur.out", "preview.in") in links(p) and p["dirty"]
        ed.point(700, 500)
        ed.key("F5")
        ed.wait(lambda p: not p["running"], what="F5 stops")
        ed.key("F5")
        ed.wait(lambda p: p["running"], what="F5 runs again")
    finally:
        ed.close()


def rendered_graph(frames: int, path: str) -> dict:
    return {"format": 2,
            "nodes": [{"id": "pattern", "type": "pattern", "params": {"width": 96, "height": 64, "frames": frames},
                       "pos": [40, 120]},
                      {"id": "blur", "type": "blur", "params": {"sigma": 3.0}, "pos": [260, 120]},
                      {"id": "out", "type": "image_out", "params": {"path": path, "mode": "sequence"},
                       "pos": [480, 120]}],
            "links": [{"from": "pattern.out", "to": "blur.in"}, {"from": "blur.out", "to": "out.in"}]}


def test_render_writes_the_same_frames_as_fusegraph_run(xvfb, tmp_path):  # noqa: F811
    import subprocess
    import sys

    import cv2
    import numpy as np

    (tmp_path / "ed").mkdir()
    (tmp_path / "cli").mkdir()
    preset = tmp_path / "render.json"
    preset.write_text(json.dumps(rendered_graph(12, "ed/f_{frame:03d}.png")))
    ed = Editor(xvfb, preset, tmp_path, run=True)
    try:
        ed.wait(lambda p: p.get("running"), what="the live run")
        time.sleep(1.0)
        assert list((tmp_path / "ed").iterdir()) == []  # live: nothing written
        ed.point(700, 500)
        ed.key("ctrl+r")
        ed.wait(lambda p: p["render"] is not None or p["status"].startswith("rendered"), what="the render")
        p = ed.wait(lambda p: p["render"] is None and p["status"].startswith("rendered"), 90, "the render done")
        assert "12 frame(s)" in p["status"]
    finally:
        ed.close()
    (tmp_path / "cli.json").write_text(json.dumps(rendered_graph(12, "cli/f_{frame:03d}.png")))
    subprocess.run([sys.executable, "-m", "fusegraph.runtime.cli", "run", "cli.json", "--quiet"],
                   check=True, cwd=tmp_path)
    ours, theirs = sorted((tmp_path / "ed").iterdir()), sorted((tmp_path / "cli").iterdir())
    assert [f.name for f in ours] == [f.name for f in theirs] and len(ours) == 12
    for a, b in zip(ours, theirs):
        assert np.array_equal(cv2.imread(str(a), cv2.IMREAD_UNCHANGED), cv2.imread(str(b), cv2.IMREAD_UNCHANGED)), a.name


def test_render_asks_before_replacing_and_cancel_writes_nothing(xvfb, tmp_path):  # noqa: F811
    doc = rendered_graph(100000, "long.mp4")
    doc["nodes"][2] = {"id": "out", "type": "video_out", "params": {"path": "long.mp4"}, "pos": [480, 120]}
    preset = tmp_path / "long.json"
    preset.write_text(json.dumps(doc))
    (tmp_path / "long.mp4").write_bytes(b"the old file")
    ed = Editor(xvfb, preset, tmp_path)
    try:
        ed.wait(lambda p: "out" in p.get("nodes", {}), what="the window")
        ed.point(700, 500)
        ed.key("ctrl+r")
        ed.wait(lambda p: p["modal"] == ["Replace files?"] and "Replace" in p["buttons"], what="the question")
        press(ed, "Replace")
        p = ed.wait(lambda p: p["render"] and p["render"]["done"] > 3 and p["render"]["cancel"], 60, "rendering")
        assert p["render"]["total"] == 100000
        x0, y0, x1, y1 = p["render"]["cancel"]
        firm_click(ed, (x0 + x1) / 2, (y0 + y1) / 2)
        p = ed.wait(lambda p: p["render"] is None and "cancelled" in p["status"], 30, "the render cancelled")
        assert (tmp_path / "long.mp4").read_bytes() == b"the old file"
        assert not [f for f in tmp_path.iterdir() if ".partial" in f.name]
    finally:
        ed.close()


def sigma(p: dict) -> float:
    return next(n for n in p["graph"]["nodes"] if n["id"] == "blur")["params"]["sigma"]


def test_a_value_typed_into_a_slider_out_of_range_is_refused_with_the_reason(editor):
    ed = editor
    firm_click(ed, *ed.probe()["nodes"]["blur"]["title"])
    p = ed.wait(lambda p: "sigma" in p["inspector"], what="the inspector")
    before = sigma(p)

    def type_into_slider(text: str) -> None:
        x, y = ed.probe()["inspector"]["sigma"]
        ed.point(x, y)
        ed.xdo("keydown", "ctrl")
        firm_click(ed, x, y)
        ed.xdo("keyup", "ctrl")
        time.sleep(0.2)
        ed.key("ctrl+a")
        ed.xdo("type", "--delay", "80", text)
        ed.key("Return")

    type_into_slider("999")
    p = ed.wait(lambda p: "less than or equal to" in p["status"], what="the refusal")
    assert "sigma" in p["status"] and sigma(p) == before and not p["can_undo"]  # not clamped, not half-typed
    type_into_slider("12.5")
    p = ed.wait(lambda p: sigma(p) == 12.5, what="a value in range taken")
    ed.key("ctrl+z")
    ed.wait(lambda p: sigma(p) == before, what="one undo step")


# ---- the canvas: zoom, fit all, comments, reroutes, placement -----------------------------------
WIDE = {
    "format": 3,
    "nodes": [{"id": "pattern", "type": "pattern", "params": {"width": 160, "height": 96}, "pos": [0, 0]},
              {"id": "blur", "type": "blur", "params": {}, "pos": [1400, 600]},
              {"id": "color", "type": "color", "params": {}, "pos": [2600, 100]},
              {"id": "preview", "type": "preview", "params": {}, "pos": [3600, 1200]}],
    "links": [{"from": "pattern.out", "to": "blur.in"}, {"from": "blur.out", "to": "color.in"},
              {"from": "color.out", "to": "preview.in"}],
}


def on_canvas(p: dict) -> set[str]:
    """Nodes drawn whole inside the canvas."""
    x0, y0, x1, y1 = p["view"]["canvas"]
    return {n for n, g in p["nodes"].items()
            if g["rect"][0] >= x0 and g["rect"][1] >= y0 and g["rect"][2] <= x1 and g["rect"][3] <= y1}


def screenshot(ed: Editor, path):
    import cv2

    Path(f"{ed.probe_path}.shot").write_text(str(path))
    ed.wait(lambda p: path.exists() and path.stat().st_size > 0, what="the screenshot")
    time.sleep(0.3)
    return cv2.imread(str(path))


def test_zoom_and_fit_all_change_what_is_on_screen(xvfb, tmp_path):  # noqa: F811
    import numpy as np

    preset = tmp_path / "wide.json"
    preset.write_text(json.dumps(WIDE))
    ed = Editor(xvfb, preset, tmp_path)
    try:  # opened: fitted, every node on screen although the graph is 3600 units wide
        p = ed.wait(lambda p: on_canvas(p) == {"pattern", "blur", "color", "preview"}, what="all in view")
        assert p["view"]["zoom"] < 0.5
        x0, y0, x1, y1 = p["view"]["canvas"]
        ed.point((x0 + x1) / 2, (y0 + y1) / 2)
        before = screenshot(ed, tmp_path / "fitted.png")
        ed.key("ctrl+0")  # actual size: the graph no longer fits
        p = ed.wait(lambda p: p["view"]["zoom"] == 1.0, what="actual size")
        assert len(on_canvas(p)) < 4
        # the wheel zooms at the pointer: what is under it stays there
        ed.key("Home")
        p = ed.wait(lambda p: p["view"]["zoom"] < 0.5 and len(on_canvas(p)) == 4, what="fit all again")
        fitted = p["view"]["zoom"]
        bx, by = (p["nodes"]["blur"]["rect"][0] + p["nodes"]["blur"]["rect"][2]) / 2, p["nodes"]["blur"]["rect"][1]
        ed.point(bx, by)
        for _ in range(3):
            ed.xdo("click", 4)  # wheel up
            time.sleep(0.15)
        p = ed.wait(lambda p: p["view"]["zoom"] > fitted * 1.3, what="zoomed in at the pointer")
        r = p["nodes"]["blur"]["rect"]
        assert r[0] <= bx <= r[2] and abs(r[1] - by) < 3  # blur's title still under the pointer
        after = screenshot(ed, tmp_path / "zoomed.png")
        assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0  # the picture changed
        ed.key("f")  # F fits too
        ed.wait(lambda p: len(on_canvas(p)) == 4, what="F fits")
    finally:
        ed.close()


def test_the_default_preset_is_whole_on_screen_at_the_default_size(xvfb, tmp_path):  # noqa: F811
    import shutil

    from test_editor_e2e import DEFAULT

    shutil.copy(DEFAULT, tmp_path / "default.json")
    ed = Editor(xvfb, tmp_path / "default.json", tmp_path)
    try:
        ids = {n["id"] for n in json.loads(DEFAULT.read_text())["nodes"]}
        ed.wait(lambda p: on_canvas(p) == ids, what="every node of the default preset on screen")
    finally:
        ed.close()


def test_new_nodes_land_apart_and_pasted_nodes_are_selected(editor):
    ed = editor

    def overlapping(p) -> list:
        rects = list(p["nodes"].items())
        return [(a, b) for i, (a, ra) in enumerate(rects) for b, rb in rects[i + 1:]
                if ra["rect"][0] < rb["rect"][2] and rb["rect"][0] < ra["rect"][2]
                and ra["rect"][1] < rb["rect"][3] and rb["rect"][1] < ra["rect"][3]]

    for _ in range(3):  # the palette: clicked three times
        n = len(ed.probe()["nodes"])
        firm_click(ed, *ed.probe()["palette"]["color"])
        ed.wait(lambda p: len(p["nodes"]) == n + 1, what="a node added")
    p = ed.probe()
    assert overlapping(p) == []
    firm_click(ed, *p["nodes"]["blur"]["title"])
    ed.wait(lambda p: p["selection"] == ["blur"], what="blur selected")
    ed.key("ctrl+c")
    ed.key("ctrl+v")
    p = ed.wait(lambda p: "blur2" in node_ids(p), what="the paste")
    assert p["selection"] == ["blur2"]
    ed.key("Delete")  # the pasted node is what Delete takes
    ed.wait(lambda p: "blur2" not in node_ids(p) and "blur" in node_ids(p), what="the pasted node deleted")
    # Typed at once: Ctrl's release and the Delete can reach the editor in one frame, after the
    # V's; the Ctrl of the paste must not make that Delete a Ctrl+Delete (which does nothing).
    before, frame = node_ids(ed.probe()), ed.probe()["frame"]
    ed.key("ctrl+v", "Delete")
    p = ed.wait(lambda p: p["frame"] >= frame + 12, what="twelve frames after Ctrl+V, Delete")
    assert node_ids(p) == before  # pasted, then deleted
    ed.key("ctrl+z")  # undoing the Delete brings the pasted node back: both keys were taken
    ed.wait(lambda p: len(node_ids(p)) == len(before) + 1, what="the pasted node back after undo")


def test_a_link_dropped_on_nothing_offers_only_nodes_that_take_it(editor):
    from fusegraph.nodes import REGISTRY

    ed = editor
    p = ed.probe()
    a = p["pins"]["out:blur.out"]
    ed.drag(a, (a[0] + 150, a[1] + 260))
    # (typed only once its field takes the keyboard: a frame after it shows)
    p = ed.wait(lambda p: p["quick_add"] and p["quick_items"] and p["text_active"], what="the quick add")
    offered = set(p["quick_items"])
    assert {"threshold", "video_out", "composite"} <= offered
    assert all(any(port.accepts_type("video") for port in REGISTRY[k].inputs) for k in offered)
    assert not offered & {"audio_out", "audio_denoise", "pattern", "speaker"}
    ed.xdo("type", "--delay", "60", "thresh")
    time.sleep(0.3)
    ed.key("Return")
    p = ed.wait(lambda p: "threshold" in node_ids(p), what="the node added")
    assert ("blur.out", "threshold.in") in links(p)  # and linked
    # Ctrl+click on a link detaches it
    x, y = p["link_points"]["pattern.out->blur.in"]
    ed.point(x, y)
    ed.xdo("keydown", "ctrl")
    firm_click(ed, x, y)
    ed.xdo("keyup", "ctrl")
    p = ed.wait(lambda p: ("pattern.out", "blur.in") not in links(p), what="the link detached")
    assert ("blur.out", "threshold.in") in links(p)


def test_comments_and_reroutes_survive_save_and_reopen(xvfb, tmp_path):  # noqa: F811
    preset = tmp_path / "graph.json"
    preset.write_text(json.dumps(GRAPH))
    ed = Editor(xvfb, preset, tmp_path)
    try:
        p = ed.wait(lambda p: "pattern" in p.get("nodes", {}), what="the window")
        firm_click(ed, *p["nodes"]["pattern"]["title"])
        ed.xdo("keydown", "ctrl")
        firm_click(ed, *p["nodes"]["blur"]["title"])
        ed.xdo("keyup", "ctrl")
        ed.wait(lambda p: sorted(p["selection"]) == ["blur", "pattern"], what="two selected")
        ed.point(700, 550)
        ed.key("c")  # a comment frame around them, and its text
        ed.wait(lambda p: p["graph"].get("comments"), what="the comment")
        time.sleep(0.3)
        ed.xdo("type", "--delay", "50", "the source, softened")
        ed.key("Return")
        p = ed.wait(lambda p: p["graph"]["comments"][0]["text"] == "the source, softened", what="its text")
        c = p["graph"]["comments"][0]["rect"]
        pos = {n["id"]: n["pos"] for n in p["graph"]["nodes"]}
        assert c[0] < pos["pattern"][0] and c[0] + c[2] > pos["blur"][0]  # around both
        # a reroute dot: double-click the link
        x, y = p["link_points"]["pattern.out->blur.in"]
        ed.point(x, y)
        ed.xdo("click", "--repeat", "2", "--delay", "80", "1")
        p = ed.wait(lambda p: p["graph"]["links"][0].get("via"), what="the reroute dot")
        # dragging the comment's title moves it with its nodes, one undo step
        tx, ty = p["comments"]["note"]["title"]
        ed.drag((tx, ty), (tx + 40, ty + 60))
        p = ed.wait(lambda p: p["graph"]["comments"][0]["rect"][1] > c[1] + 20, what="the comment moved")
        moved = {n["id"]: n["pos"] for n in p["graph"]["nodes"]}
        assert moved["pattern"][1] > pos["pattern"][1] + 20 and moved["preview"] == pos["preview"]
        ed.key("ctrl+s")
        ed.wait(lambda p: not p["dirty"], what="the save")
    finally:
        ed.close()
    saved = json.loads(preset.read_text())
    assert saved["format"] == 3 and saved["comments"][0]["text"] == "the source, softened"
    assert saved["links"][0]["via"]
    ed = Editor(xvfb, preset, tmp_path)  # reopened: the comment and the dot are there, drawn
    try:
        p = ed.wait(lambda p: "note" in p.get("comments", {}), what="the comment drawn")
        assert p["graph"]["comments"][0]["text"] == "the source, softened" and p["graph"]["links"][0]["via"]
    finally:
        ed.close()


def test_file_dialogs_take_an_absolute_path_and_open_on_double_click(editor, tmp_path):
    ed = editor
    other = tmp_path / "elsewhere"
    other.mkdir()
    second = dict(GRAPH, nodes=GRAPH["nodes"][:1] + [{"id": "view", "type": "preview", "params": {}, "pos": [300, 200]}],
                  links=[{"from": "pattern.out", "to": "view.in"}])
    (other / "second.json").write_text(json.dumps(second))
    (other / "third.json").write_text(json.dumps(GRAPH))
    # Ctrl+O, an absolute path typed into the field, Enter: opened
    ed.point(700, 500)
    ed.key("ctrl+o")
    ed.wait(lambda p: p["file_dialog"] and "<field>" in p["file_dialog"] and p["text_active"], what="the file dialog")
    ed.xdo("type", "--delay", "20", str(other / "second.json"))
    ed.key("Return")
    p = ed.wait(lambda p: p["path"] == str(other / "second.json"), what="the typed path opened")
    assert p["modal"] == [] and "view" in node_ids(p)
    # a name that is not there: said, and the dialog stays; Escape closes it
    ed.key("ctrl+o")
    ed.wait(lambda p: p["file_dialog"] and "third.json" in p["file_dialog"] and p["text_active"],
            what="the dialog in that folder")
    ed.xdo("type", "--delay", "20", "missing.json")
    ed.key("Return")
    ed.wait(lambda p: "no such file" in p["status"] and p["file_dialog"], what="the refusal")
    ed.key("Escape")
    ed.wait(lambda p: p["file_dialog"] is None and p["modal"] == [], what="the dialog closed")
    # a double-click on an entry opens it
    ed.key("ctrl+o")
    p = ed.wait(lambda p: p["file_dialog"] and "third.json" in p["file_dialog"], what="the dialog again")
    x, y = p["file_dialog"]["third.json"]
    ed.point(x, y)
    ed.xdo("click", "--repeat", "2", "--delay", "60", "1")
    ed.wait(lambda p: p["path"] == str(other / "third.json"), what="the double-clicked file opened")
    # Save As with an absolute path in another folder
    ed.key("ctrl+n")
    ed.wait(lambda p: p["path"] is None, what="a new graph")
    ed.key("ctrl+s")
    ed.wait(lambda p: p["file_dialog"] and "<field>" in p["file_dialog"] and p["text_active"], what="the save dialog")
    ed.key("ctrl+a")
    ed.xdo("type", "--delay", "20", str(other / "new"))
    ed.key("Return")
    ed.wait(lambda p: p["path"] == str(other / "new.json"), what="saved as")
    assert json.loads((other / "new.json").read_text())["format"] == 3
