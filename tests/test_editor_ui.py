"""The editor window, driven in-process through its controller (the same methods its callbacks
call), with the render loop on this thread: the model, the canvas items, the inspector's
widgets, and the pixels of the preview texture and of a screenshot of the window.

Runs on $DISPLAY, or on an Xvfb of its own when there is none.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import time
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np
import pytest
from pydantic import Field
from xvfb import start_xvfb

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "presets" / "default.json"


@pytest.fixture(scope="module")
def display():
    """$DISPLAY, or a private Xvfb (its number chosen by the server: -displayfd)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    os.environ["DISPLAY"], proc = start_xvfb()
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def own_gl_thread():
    """The editor's window needs this thread free of other GL contexts, but the session's `gpu`
    fixture (an EGL context) may be current on it: set that aside, and afterwards release the
    window's GLX context (Dear PyGui leaves it current) and make the EGL one current again.
    In `fusegraph edit` the engine has its own thread, so this is a test-only concern."""
    egl = ctypes.CDLL("libEGL.so.1")
    for name in ("eglGetCurrentDisplay", "eglGetCurrentContext", "eglGetCurrentSurface"):
        getattr(egl, name).restype = ctypes.c_void_p
    egl.eglGetCurrentSurface.argtypes = [ctypes.c_int]
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    saved = None
    if egl.eglGetCurrentContext():
        saved = (egl.eglGetCurrentDisplay(), egl.eglGetCurrentSurface(0x3059),  # EGL_DRAW
                 egl.eglGetCurrentSurface(0x305A), egl.eglGetCurrentContext())  # EGL_READ
        assert egl.eglMakeCurrent(saved[0], None, None, None)
    try:
        yield
    finally:
        glx = ctypes.CDLL("libGL.so.1")
        glx.glXGetCurrentContext.restype = glx.glXGetCurrentDisplay.restype = ctypes.c_void_p
        glx.glXMakeCurrent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p]
        if glx.glXGetCurrentContext():
            glx.glXMakeCurrent(glx.glXGetCurrentDisplay(), 0, None)
        if saved is not None:
            assert egl.eglMakeCurrent(*saved)


@pytest.fixture(scope="module")
def app(display, tmp_path_factory):
    """One editor window for the module (Dear PyGui has one context per process)."""
    config = tmp_path_factory.mktemp("config")
    old = os.environ.get("FUSEGRAPH_CONFIG")
    os.environ["FUSEGRAPH_CONFIG"] = str(config)
    from fusegraph.editor.app import EditorApp

    with own_gl_thread():
        window = EditorApp(width=1600, height=1000)
        try:
            yield window
        finally:
            window.close()
            if old is None:
                os.environ.pop("FUSEGRAPH_CONFIG", None)
            else:
                os.environ["FUSEGRAPH_CONFIG"] = old


@pytest.fixture
def ed(app):
    """The editor with an empty, stopped document."""
    from fusegraph.editor import dialogs

    for label in ("Cancel", "Discard"):
        if label in dialogs.current:
            dialogs.answer(label)
    app.ctl.stop()
    app.ctl.new()
    app.closing = False
    pump(app, 2)
    yield app
    app.ctl.stop()


def pump(app, frames: int = 1) -> None:
    for _ in range(frames):
        app.step()


def until(app, cond: Callable[[], bool], timeout: float = 15.0, what: Callable[[], object] = lambda: "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out {what()}"
        app.step()


def small_graph(ed, saturation: float = 0.0) -> None:
    ctl = ed.ctl
    ctl.add("pattern", (40, 100), {"width": 320, "height": 180, "frames": 0})
    ctl.add("color", (300, 100), {"saturation": saturation})
    ctl.add("preview", (560, 100))
    assert ctl.link("pattern.out", "color.in") is None
    assert ctl.link("color.out", "preview.in") is None


# ---- widgets, timing and palette helpers (no window needed, but cheap here) -------------------
def test_inspector_widgets_follow_the_params_model():
    from fusegraph.editor.inspector import from_widget, to_widget, widget_for, widgets_for
    from fusegraph.nodes import REGISTRY
    from fusegraph.nodes.contract import Params, path_field

    kinds = {w.name: w for w in widgets_for(REGISTRY["blur"].Params)}
    assert kinds["sigma"].kind == "slider_float" and (kinds["sigma"].min, kinds["sigma"].max) == (0.0, 100.0)
    assert kinds["scale"].kind == "combo" and "quarter" in kinds["scale"].choices
    bilateral = {w.name: w.kind for w in widgets_for(REGISTRY["bilateral"].Params)}
    assert bilateral["early_out"] == "checkbox" and bilateral["radius"] == "slider_int"
    image = widgets_for(REGISTRY["image"].Params)[0]
    assert (image.kind, image.file_kind, image.save) == ("file", "image", False)
    assert widgets_for(REGISTRY["video_out"].Params)[0].save
    pattern = {w.name: w.kind for w in widgets_for(REGISTRY["pattern"].Params)}
    assert pattern["seed"] == "input_int" and pattern["width"] == "slider_int"  # 2^31 is no slider
    net = {w.name: w for w in widgets_for(REGISTRY["neural_net"].Params)}
    assert net["mean"].kind == "input_floats" and net["model"].kind == "input_text"

    class Tinted(Params):
        tint: tuple[float, float, float] = (1.0, 0.5, 0.0)
        key_colour: tuple[float, float, float] = Field((0.0, 1.0, 0.0), json_schema_extra={"widget": "color"})
        weights: tuple[float, float, float] = (1.0, 2.0, 3.0)
        mode: Literal[1, 2] = 1
        out: str = path_field(kind="video", save=True)

    w = {x.name: x for x in widgets_for(Tinted)}
    assert w["tint"].kind == "color" and w["key_colour"].kind == "color" and w["weights"].kind == "input_floats"
    assert to_widget(w["tint"], (1.0, 0.5, 0.0)) == [255.0, 127.5, 0.0, 255.0]
    assert from_widget(w["tint"], [255.0, 127.5, 0.0, 255.0]) == (1.0, 0.5, 0.0)
    assert from_widget(w["mode"], "2") == 2 and to_widget(w["mode"], 2) == "2"
    assert widget_for("out", Tinted.model_fields["out"]).save


def test_timing_helpers():
    from fusegraph.editor.timing import fused_bands, heat, pass_split, split_text, stacked

    assert heat(1.0)[0] == "green" and heat(10.0)[0] == "yellow" and heat(20.0)[0] == "red"
    passes = [("pass1:glow.h", ["glow"], 2.0), ("pass2:glow.v+tint", ["glow", "tint", "tint"], 3.0)]
    bands = fused_bands(passes)
    assert set(bands) == {"glow", "tint"} and bands["glow"][0].nodes == ("glow", "tint")
    # tint runs only in pass2: its time is there; glow's v stage has the rest of the pass
    assert pass_split(bands["tint"][0], passes, {"glow": 4.0, "tint": 1.0}) == [("glow", 2.0), ("tint", 1.0)]
    text = split_text(bands["tint"], passes, {"glow": 4.0, "tint": 1.0})
    assert "glow ~2.00 ms (67%)" in text and "tint ~1.00 ms (33%)" in text and "3.00 ms" in text
    xs, series = stacked([{"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}], ["b", "a"])
    assert xs == [-1.0, 0.0]
    assert series == [("b", [0.0, 0.0], [2.0, 1.0]), ("a", [2.0, 1.0], [3.0, 3.0])]


def test_palette_lists_every_kind_by_category_and_searches():
    from fusegraph.editor.palette import categories, match_kinds
    from fusegraph.nodes import REGISTRY

    cats = categories()
    assert sorted(k for ks in cats.values() for k in ks) == sorted(REGISTRY)
    assert list(cats)[0] == "source"
    assert match_kinds("bl")[0] == "blur" and match_kinds("bil")[0] == "bilateral"
    assert "threshold" in match_kinds("thr") and match_kinds("zzz") == []
    assert set(match_kinds("sink")) >= {"preview", "video_out", "image_out"}


# ---- editing ----------------------------------------------------------------------------------
def test_add_link_refuse_undo_redo_on_the_canvas(ed):
    ctl, canvas = ed.ctl, ed.canvas
    small_graph(ed)
    pump(ed, 2)
    assert set(canvas.views) == {"pattern", "color", "preview"}
    assert set(canvas.links) == {("pattern.out", "color.in"), ("color.out", "preview.in")}
    # a second link into a fed input is refused: not drawn, the reason in the status bar
    err = ctl.link("pattern.out", "preview.in")
    assert err is not None and err.code == "input_taken"
    assert "refused" in ctl.message and ctl.message_is_error
    ed._status()
    import dearpygui.dearpygui as dpg

    assert "already fed" in dpg.get_value(ed.status_msg)
    assert ("pattern.out", "preview.in") not in canvas.links
    # a mask cannot feed a video-only input
    ctl.add("threshold", (300, 300))
    assert ctl.link("pattern.out", "threshold.in") is None
    assert ctl.link("threshold.out", "color.in").code in ("type_mismatch", "input_taken")
    # the canvas link callback goes through the same path (pins -> endpoints)
    ctl.unlink("color.in")
    assert ("pattern.out", "color.in") not in canvas.links
    assert {"out:pattern.out", "in:color.in"} <= set(canvas.views["pattern"].box.pins) | set(
        canvas.views["color"].box.pins)
    canvas.connect("in:color.in", "out:pattern.out")  # dragged from the input end
    assert ("pattern.out", "color.in") in canvas.links
    canvas.detach(("pattern.out", "color.in"))
    assert ("pattern.out", "color.in") not in canvas.links
    assert ctl.undo() and ("pattern.out", "color.in") in canvas.links
    assert ctl.redo() and ("pattern.out", "color.in") not in canvas.links
    # delete, then undo brings node and links back
    ctl.undo()
    ctl.select(["color"])
    ed.delete_selection()
    pump(ed)
    assert "color" not in canvas.views and not any("color" in k[0] + k[1] for k in canvas.links)
    ctl.undo()
    pump(ed)
    assert "color" in canvas.views and ("color.out", "preview.in") in canvas.links


def test_errors_mark_nodes_red_with_the_message(ed):
    ctl, canvas = ed.ctl, ed.canvas
    ctl.add("pattern", (40, 100))
    ctl.add("blur", (300, 100))
    canvas.refresh_looks(force=True)
    assert canvas.views["blur"].look[2] is True  # its required input is not connected
    assert canvas.views["blur"].label.startswith("! blur")
    assert "not connected" in canvas.tooltip_for("blur")
    view = canvas.views["blur"]  # the message is written on the canvas, under the node
    assert view.error_lines and "not connected" in " ".join(view.error_lines)
    ctl.link("pattern.out", "blur.in")
    canvas.refresh_looks(force=True)
    assert canvas.views["blur"].look[2] is False
    assert canvas.views["blur"].error == "" and canvas.views["blur"].error_lines == []


def test_slider_drag_is_one_undo_step_and_inspector_follows(ed):
    ctl, insp = ed.ctl, ed.inspector
    small_graph(ed)
    ctl.select(["color"])
    pump(ed)
    assert insp.node_id == "color"
    item, w = insp.items["brightness"]
    assert w.kind == "slider_float"
    steps = len(ctl.doc.history.undo_steps)
    insp.dragging = lambda: True  # the mouse is down: a drag
    for v in (0.1, 0.2, 0.3, 0.4):  # a drag: one callback per frame
        insp._changed(item, v, w)
    insp.dragging = lambda: False
    insp._deactivated(None, item)  # mouse released
    assert ctl.node("color").params.brightness == pytest.approx(0.4)
    assert len(ctl.doc.history.undo_steps) == steps + 1
    ctl.undo()
    import dearpygui.dearpygui as dpg

    assert ctl.node("color").params.brightness == 0.0 and dpg.get_value(item) == 0.0
    assert insp.items["gamma"][1].kind == "slider_float"
    # a refused value (typed past the bound) changes nothing and the widget shows the model again
    assert ctl.set_param("color", "gamma", 50.0) is not None
    assert ctl.node("color").params.gamma == 1.0
    ctl.select(["pattern"])
    pump(ed)
    seed, sw = insp.items["seed"]
    insp._changed(seed, 7, sw)
    assert ctl.node("pattern").params.seed == 7
    # typed into a slider (no drag): taken when the field is left, refused with the reason out of range
    fps, fw = insp.items["fps"]
    assert fw.kind == "slider_float"
    insp._changed(fps, 2, fw)
    insp._changed(fps, 2000, fw)
    assert ctl.node("pattern").params.fps == 30.0  # nothing taken keystroke by keystroke
    dpg.set_value(fps, 2000.0)
    insp._deactivated(None, fps)
    assert ctl.node("pattern").params.fps == 30.0 and "less than or equal to 240" in ctl.message
    assert dpg.get_value(fps) == 30.0


def test_copy_paste_duplicate_and_quick_add(ed):
    ctl = ed.ctl
    small_graph(ed)
    ctl.select(["pattern", "color"])
    assert ctl.copy() == 2
    ed.paste()
    assert ctl.selection == ["pattern2", "color2"]
    assert ("pattern2.out", "color2.in") in ed.canvas.links  # links among the copied nodes come along
    assert ctl.node("pattern2").pos == (ctl.node("pattern").pos[0] + 40, ctl.node("pattern").pos[1] + 40)
    ed.duplicate()
    assert len(ctl.selection) == 2 and all(ctl.node(n) for n in ctl.selection)
    ed.quick.open((700, 500), (123.0, 456.0))
    import dearpygui.dearpygui as dpg

    dpg.set_value(ed.quick.search, "thresh")
    ed.quick._typed(None, "thresh")
    assert ed.quick.add_first() == "threshold"
    assert ctl.node("threshold").pos == (123.0, 456.0)
    node_id = ed.add_at_center("blur")
    again = ed.add_at_center("blur")
    assert ctl.node(node_id).pos != ctl.node(again).pos


def test_moving_a_node_on_the_canvas_is_one_layout_step(ed):
    from fusegraph.editor.graph_canvas import Drag

    ctl = ed.ctl
    small_graph(ed)
    pump(ed, 2)
    canvas = ed.canvas
    steps = len(ctl.doc.history.undo_steps)
    z = canvas.view.zoom
    canvas.drag = Drag("nodes", (0.0, 0.0), {"ids": ["color"], "moved": True})  # as a drag leaves it
    canvas.mouse = (33 * z, 122 * z)
    canvas.redraw()  # drawn where the pointer takes it before the model changes
    canvas._release()
    pump(ed, 2)
    assert ctl.node("color").pos[0] - 300.0 == pytest.approx(33.0, abs=1.0)
    assert len(ctl.doc.history.undo_steps) == steps + 1
    ctl.undo()
    pump(ed, 2)
    assert ctl.node("color").pos == (300.0, 100.0)
    assert (canvas.views["color"].box.x, canvas.views["color"].box.y) == (300.0, 100.0)


# ---- files --------------------------------------------------------------------------------------
def test_save_reopen_keeps_graph_and_positions(ed, tmp_path):
    ctl = ed.ctl
    small_graph(ed)
    ctl.move({"color": (310.5, 120.0)})
    path = tmp_path / "mine.json"
    assert ctl.save(path)
    assert not ctl.doc.dirty and str(path) in ctl.doc.recent[0]
    saved = json.loads(path.read_text())
    assert {n["id"]: n["pos"] for n in saved["nodes"]}["color"] == [310.5, 120.0]
    ctl.new()
    assert not ed.canvas.views
    assert ctl.open(path) == []
    pump(ed)
    assert set(ed.canvas.views) == {"pattern", "color", "preview"}
    assert ctl.node("color").pos == (310.5, 120.0)
    import dearpygui.dearpygui as dpg

    assert (ed.canvas.views["color"].box.x, ed.canvas.views["color"].box.y) == (310.5, 120.0)
    assert "mine.json" in dpg.get_viewport_title()


def test_a_shipped_preset_is_saved_as_a_copy(ed, tmp_path, monkeypatch):
    """Ctrl+S on a shipped preset (installed: a file inside the package) asks where to save a copy
    in the current folder; it never writes over the shipped file."""
    from fusegraph.editor import dialogs
    from fusegraph.runtime.resources import default_preset

    asked = []
    monkeypatch.setattr(dialogs, "ask_file", lambda title, ext, then, default="", save=False:
                        asked.append((title, default, then)))
    monkeypatch.chdir(tmp_path)
    shipped = default_preset()
    before = shipped.read_bytes()
    assert ed.ctl.open(shipped) == []
    ed.ctl.move({ed.ctl.graph.nodes[0].id: (1.0, 2.0)})
    ed.save()
    assert shipped.read_bytes() == before
    ((title, default, then),) = asked
    assert title == "Save graph as" and default == str(tmp_path / "default.json")
    then(default)
    assert (tmp_path / "default.json").is_file() and not ed.ctl.doc.dirty
    ed.save()  # now a file of the user's own: saved in place, no question
    assert len(asked) == 1


def test_unsaved_changes_are_asked_about_on_close(ed):
    from fusegraph.editor import dialogs

    ed.ctl.add("pattern")
    ed.request_close()
    assert set(dialogs.current) == {"Save", "Discard", "Cancel"}
    dialogs.answer("Cancel")
    assert not ed.closing
    ed.request_close()
    dialogs.answer("Discard")
    assert ed.closing
    ed.closing = False


def test_autosave_and_recovery_offer(ed):
    from fusegraph.editor import dialogs

    ctl = ed.ctl
    small_graph(ed)
    assert ctl.autosave_tick(now=time.monotonic() + 60)  # dirty: written
    ctl.new()
    ed.offer_recovery()
    assert "Recover" in dialogs.current
    dialogs.answer("Recover")
    assert {n.id for n in ctl.graph.nodes} == {"pattern", "color", "preview"} and ctl.doc.dirty
    ctl.doc.discard_recovery()


# ---- running live ---------------------------------------------------------------------------------
def screenshot(app, path: Path) -> np.ndarray:
    """The window as RGB uint8 (Dear PyGui writes it at the end of a later frame)."""
    import dearpygui.dearpygui as dpg

    pump(app, 5)  # a texture written now is on screen a frame or two later
    dpg.output_frame_buffer(file=str(path))
    until(app, path.exists, 10)
    pump(app, 2)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None
    return img[..., ::-1]  # RGB


def test_live_preview_shows_processed_pixels_and_takes_edits(ed, tmp_path):
    import dearpygui.dearpygui as dpg

    ctl = ed.ctl
    small_graph(ed, saturation=0.0)
    ctl.select(["color"])
    calls = []
    factory = ctl.runner_factory

    def spy(*args):
        runner = factory(*args)
        for name in ("set_graph", "set_param"):
            real = getattr(runner, name)
            setattr(runner, name, lambda *a, _n=name, _r=real: (calls.append(_n), _r(*a)))
        return runner

    ctl.runner_factory = spy
    try:
        assert ctl.run()
        until(ed, lambda: ed.preview.index >= 0)
    finally:
        ctl.runner_factory = factory
    assert ctl.preview_target() == "color"
    grey = ed.preview.texture_pixels()
    assert grey.shape == (180, 320, 4)
    assert grey[..., :3].std() > 0.05  # a picture, not a blank texture
    assert np.abs(grey[..., 0] - grey[..., 1]).max() < 0.02  # saturation 0: processed to grey
    # a param edit is a uniform update on the running engine (no new graph)
    ctl.set_param("color", "saturation", 1.5)
    assert calls == ["set_param"]
    until(ed, lambda: np.abs(ed.preview.texture_pixels()[..., 0] - ed.preview.texture_pixels()[..., 2]).max() > 0.2)
    # the same pixels are on screen
    shot = screenshot(ed, tmp_path / "shot.png").astype(np.float32) / 255.0
    x0, y0 = dpg.get_item_rect_min(ed.preview.image)
    x1, y1 = dpg.get_item_rect_max(ed.preview.image)
    shown = shot[y0 + 2:y1 - 2, x0 + 2:x1 - 2]
    texture = cv2.resize(ed.preview.texture_pixels()[..., :3], (shown.shape[1], shown.shape[0]))
    assert shown.std() > 0.05
    assert np.abs(shown.mean(axis=(0, 1)) - texture.mean(axis=(0, 1))).max() < 0.08
    # a structural edit while running: the live graph changes without a restart
    runner = ctl.runner
    ctl.add("threshold", (560, 300))
    assert calls == ["set_param"]  # incomplete (threshold unfed): the run keeps the last graph
    assert "incomplete" in ctl.message
    ctl.link("color.out", "threshold.in")
    assert calls[-1] == "set_graph" and ctl.runner is runner
    ctl.select(["threshold"])
    until(ed, lambda: ctl.stats() is not None and "threshold" in ctl.stats().node_ms)
    until(ed, lambda: "threshold" in dpg.get_value(ed.preview.caption))
    # preview() does not say whose frame it is: one published as the tap changed may be the old one
    seen = ed.preview.index
    until(ed, lambda: ed.preview.index >= seen + 2)
    mask = ed.preview.texture_pixels()
    assert np.abs(mask[..., 0] - mask[..., 2]).max() < 0.02  # a mask previews grey
    assert ctl.running and not ctl.stats().failure
    ctl.stop()
    assert not ctl.running


def test_the_window_waits_for_something_to_draw(ed):
    """Idle, a turn of the window's loop waits in GLFW (the GIL released) until something wakes
    it: input, the live runner's new frame (here a thread's wake), or the quarter-second tick.
    step() never waits (the tests' and benchmarks' loop)."""
    import threading

    from fusegraph.editor.frame_pacer import TICK_S

    pacer = ed.pacer
    if not pacer.waits:
        pytest.skip("no GLFW wait in this Dear PyGui: the window draws every frame")
    pump(ed, 2)
    pacer.awake_until, pacer.awake_frames = 0.0, 0  # no input to settle
    woken = []

    def wake_later():
        time.sleep(2 * TICK_S)
        woken.append(True)
        pacer.wake()

    thread = threading.Thread(target=wake_later)
    thread.start()
    turns = 0
    while not woken:  # a window drawing without waiting would turn ~30 times (60 Hz) meanwhile
        ed.turn()
        turns += 1
    thread.join()
    assert turns <= 4  # the ticks, the wake, and perhaps an event of the X server's own
    pump(ed, 1)


def test_input_is_drawn_between_live_frames(ed):
    """A frame drawn for input waits while the live engine makes a frame, until the engine's wake
    (its frame published), but never past the pacer's minimum rate's period."""
    import threading

    from fusegraph.editor.frame_pacer import MIN_HZ

    pacer = ed.pacer
    pump(ed, 2)
    busy = threading.Event()
    pacer.busy, pacer.min_hz = busy.is_set, 0.1  # a 10 s bound: the end of the frame must end the wait

    def frame_ends():
        time.sleep(0.05)
        busy.clear()
        pacer.wake()

    try:
        busy.set()
        pacer.keep_awake()
        pacer.after_frame()
        thread = threading.Thread(target=frame_ends)
        thread.start()
        pacer.before_frame()
        done = not busy.is_set()  # it waited for the frame's end (else the frame is still in the making)
        thread.join()
        assert done
        busy.set()  # an engine that never leaves a gap: input is drawn all the same, at the minimum rate
        pacer.min_hz = 20.0
        pacer.keep_awake()
        pacer.after_frame()
        pacer.before_frame()
        assert busy.is_set()
    finally:
        pacer.busy, pacer.min_hz = ed.ctl.engine_busy, MIN_HZ
    pump(ed, 1)


def test_timing_overlays_and_the_ui_keeps_drawing_while_running(ed):
    import dearpygui.dearpygui as dpg

    ctl = ed.ctl
    assert ctl.open(DEFAULT) == []
    assert ctl.run()
    assert "built-in test pattern" in ctl.message  # no camera on this machine
    until(ed, lambda: ctl.stats() is not None and len(ctl.stats().history) > 10, 30)
    # the UI is not blocked by the pipeline (its speed is a benchmark's to measure, not a test's:
    # the machine is shared and a timed threshold fails under load)
    t0, f0 = time.perf_counter(), ed.frames
    while time.perf_counter() - t0 < 3.0:
        ed.step()
    assert ed.frames - f0 >= 10
    ed.canvas.refresh_looks(force=True)
    label = ed.canvas.views["glow"].label
    assert label.startswith("glow") and label.endswith(" ms")
    bands = ed.canvas.views["glow"].look[4]
    assert bands and bands == ed.canvas.views["tint"].look[4]  # fused into one pass: same badge
    assert "fused pass" in ed.canvas.tooltip_for("tint") and "split by" in ed.canvas.tooltip_for("tint")
    assert ed.timing.series and set(ed.timing.series) >= {"glow", "tint", "mix"}
    ed.timing.show_plan(True)
    pump(ed, 2)
    assert "pass" in dpg.get_value(ed.timing.plan_text)
    ed.timing.show_plan(False)
    ctl.stop()


def test_shader_code_box_compile_error_on_the_node_and_uniform_sliders(ed):
    """The shader node in the editor: a code box that recompiles live, the compile error on the
    node with the user's line, a slider per declared uniform (a uniform edit, no recompile)."""
    import dearpygui.dearpygui as dpg

    ctl, insp, canvas = ed.ctl, ed.inspector, ed.canvas
    ctl.add("pattern", (40, 100), {"width": 160, "height": 90, "frames": 0})
    ctl.add("shader", (300, 100))
    ctl.add("preview", (560, 100))
    assert ctl.link("pattern.out", "shader.in0") is None and ctl.link("shader.out", "preview.in") is None
    ctl.select(["shader"])
    pump(ed)
    code_item, code_w = insp.items["code"]
    gain_item, gain_w = insp.items["values.gain"]
    assert code_w.kind == "code" and dpg.get_item_configuration(code_item)["multiline"]
    assert gain_w.kind == "slider_float" and (gain_w.min, gain_w.max) == (0.0, 2.0)
    ctl.run()
    until(ed, lambda: ctl.stats() is not None and "shader" in ctl.stats().node_ms)
    insp._changed(code_item, "vec3 c = in0.rgb * gain;\n\nreturn vec4(c * nope, in0.a);", code_w)
    def shown() -> str:  # the problem as written under the node
        canvas.refresh_looks(force=True)
        view = canvas.views["shader"]
        return view.error if view.error_lines else ""

    until(ed, lambda: "line 3: error: `nope' undeclared" in shown(), what=lambda: (shown(), ctl.node_errors()))
    assert ctl.running and ctl.stats().failure == ""  # the rest of the graph runs on
    insp._changed(code_item, "return in0 * gain;", code_w)
    until(ed, lambda: shown() == "")
    insp.dragging = lambda: True  # the mouse is down: a drag
    insp._changed(gain_item, 1.5, gain_w)
    assert ctl.node("shader").params.values == {"gain": 1.5}
    insp._deactivated(None, gain_item)


def test_the_palette_wraps_and_each_button_has_its_own_nodes_doc(ed):
    import dearpygui.dearpygui as dpg

    from fusegraph.editor.palette import CHAR_W, BUTTON_PAD, wrap
    from fusegraph.nodes import REGISTRY

    pal = ed.palette
    for kinds in ([k for k in REGISTRY], ["a" * 200, "b"]):
        lines = wrap(kinds, 300)
        assert [k for line in lines for k in line] == kinds
        assert all(len(line) == 1 or sum(len(k) * CHAR_W + BUTTON_PAD for k in line) <= 300 for line in lines)
    assert set(pal.buttons) == set(REGISTRY)
    for kind, tip in pal.tooltips.items():
        text = dpg.get_value(dpg.get_item_children(tip, 1)[0])
        assert text == REGISTRY[kind].doc.strip() and text.startswith(kind)
