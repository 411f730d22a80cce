"""The real editor window, driven with real mouse and keyboard events (xdotool).

`fusegraph edit PRESET` runs in a subprocess on a private Xvfb (always private: xdotool must
never move a user's real pointer). With FUSEGRAPH_EDITOR_PROBE set the app writes, a few
times a second, the screen positions of its nodes and pins plus its model; the test moves the
mouse to those positions and waits for the model to change.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from xvfb import start_xvfb

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "presets" / "default.json"

GRAPH = {
    "format": 2,
    "nodes": [
        {"id": "pattern", "type": "pattern", "params": {"width": 320, "height": 180}, "pos": [40, 200]},
        {"id": "blur", "type": "blur", "params": {"sigma": 4.0}, "pos": [320, 200]},
        {"id": "preview", "type": "preview", "params": {}, "pos": [600, 200]},
    ],
    "links": [{"from": "pattern.out", "to": "blur.in"}],
}


@pytest.fixture(scope="module")
def xvfb():
    if not shutil.which("Xvfb") or not shutil.which("xdotool"):
        raise RuntimeError("the end-to-end editor tests need Xvfb and xdotool (./fg installs them)")
    display, proc = start_xvfb()
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


class Editor:
    """A `fusegraph edit` process and the mouse and keyboard of its display."""

    def __init__(self, display: str, preset: Path, folder: Path, run: bool = False):
        self.display = display
        self.probe_path = folder / "probe.json"
        self.env = {**os.environ, "DISPLAY": display, "FUSEGRAPH_CONFIG": str(folder / "config"),
                    "FUSEGRAPH_EDITOR_PROBE": str(self.probe_path), "FUSEGRAPH_EDITOR_RUN": "1" if run else "0"}
        exe = Path(sys.executable).parent / "fusegraph"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fusegraph.runtime.cli"]
        self.log = open(folder / "editor.log", "w")
        self.proc = subprocess.Popen(cmd + ["edit", str(preset)], cwd=folder, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def probe(self) -> dict:
        try:
            return json.loads(self.probe_path.read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, cond, timeout: float = 20.0, what: str = "") -> dict:
        end = time.monotonic() + timeout
        while True:
            p = self.probe()
            if p and cond(p):
                return p
            if self.proc.poll() is not None:
                raise AssertionError(f"the editor exited ({self.proc.returncode}): {self.read_log()}")
            if time.monotonic() > end:
                shot = self.probe_path.with_name("failure.png")
                Path(f"{self.probe_path}.shot").write_text(str(shot))
                time.sleep(0.5)
                raise AssertionError(f"timed out waiting for {what} (screenshot: {shot}); "
                                     f"last probe: {json.dumps(p)[:1500]}")
            time.sleep(0.05)

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def xdo(self, *args) -> None:
        subprocess.run(["xdotool", *map(str, args)], env=self.env, check=True)

    def move(self, x: float, y: float) -> None:
        self.xdo("mousemove", int(round(x)), int(round(y)))
        time.sleep(0.08)

    def point(self, x: float, y: float) -> None:
        """Move the pointer and wait until the editor has seen it there (then a press lands on what
        is under it, not on what was under the pointer a frame ago)."""
        x, y = int(round(x)), int(round(y))
        self.xdo("mousemove", x, y)
        self.wait(lambda p: p.get("mouse") == [float(x), float(y)], 5.0, f"the pointer at {x},{y}")

    def drag(self, a, b) -> None:
        """Press at a, move there in steps (one per UI frame or so), release at b."""
        self.point(*a)
        self.xdo("mousedown", 1)
        time.sleep(0.12)
        for f in (0.25, 0.5, 0.75):
            self.move(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
        self.point(*b)
        time.sleep(0.05)
        self.xdo("mouseup", 1)
        time.sleep(0.15)

    def click(self, x, y) -> None:
        """Press and release in different UI frames (a burst can fall between two looks at the mouse)."""
        self.point(x, y)
        self.xdo("mousedown", 1)
        time.sleep(0.12)
        self.xdo("mouseup", 1)
        time.sleep(0.1)

    def key(self, *keys: str) -> None:
        self.xdo("key", *keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def wm_close(display: str, title: str) -> None:
    """What a window manager's close button does: send WM_DELETE_WINDOW to the window."""
    ids = subprocess.run(["xdotool", "search", "--name", title], env={**os.environ, "DISPLAY": display},
                         capture_output=True, text=True, check=True).stdout.split()
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11"))
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    d = x11.XOpenDisplay(display.encode())
    try:
        for win in map(int, ids):
            ev = XEvent()
            ev.xclient.type = 33  # ClientMessage
            ev.xclient.window = win
            ev.xclient.message_type = x11.XInternAtom(d, b"WM_PROTOCOLS", 0)
            ev.xclient.format = 32
            ev.xclient.data[0] = x11.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
            x11.XSendEvent(d, win, 0, 0, ctypes.byref(ev))
        x11.XFlush(d)
    finally:
        x11.XCloseDisplay(d)


def links(p: dict) -> set[tuple[str, str]]:
    return {(l["from"], l["to"]) for l in p["graph"]["links"]}


def placed(p: dict, node: str) -> bool:
    """`node` is on screen where the model puts it (relative to the pattern node)."""
    if node not in p.get("nodes", {}) or "pattern" not in p["nodes"]:
        return False
    pos = {n["id"]: n["pos"] for n in p["graph"]["nodes"]}
    r, ref = p["nodes"][node]["rect"], p["nodes"]["pattern"]["rect"]
    return all(abs((r[i] - ref[i]) - (pos[node][i] - pos["pattern"][i])) < 1.0 for i in (0, 1))


def node_ids(p: dict) -> set[str]:
    return {n["id"] for n in p["graph"]["nodes"]}


@pytest.fixture
def editor(xvfb, tmp_path):
    preset = tmp_path / "graph.json"
    preset.write_text(json.dumps(GRAPH))
    ed = Editor(xvfb, preset, tmp_path)
    try:
        ed.wait(lambda p: {"out:blur.out", "in:preview.in"} <= set(p.get("pins", {})), what="the window")
        yield ed
    finally:
        ed.close()


def test_mouse_and_keyboard_edit_the_model(editor, tmp_path):
    ed = editor
    p = ed.probe()
    # drag a link from blur's output pin to preview's input pin
    ed.drag(p["pins"]["out:blur.out"], p["pins"]["in:preview.in"])
    p = ed.wait(lambda p: ("blur.out", "preview.in") in links(p), what="the dragged link")
    # a second link into the same input is refused: not made, the reason in the status bar
    ed.drag(p["pins"]["out:pattern.out"], p["pins"]["in:preview.in"])
    p = ed.wait(lambda p: "refused" in p["status"], what="the refusal")
    assert "already fed" in p["status"]
    assert links(p) == {("pattern.out", "blur.in"), ("blur.out", "preview.in")}
    # select blur with a click on its title, delete it with the Delete key
    ed.click(*p["nodes"]["blur"]["title"])
    ed.wait(lambda p: p["selection"] == ["blur"], what="blur selected")
    ed.key("Delete")
    p = ed.wait(lambda p: "blur" not in node_ids(p), what="blur deleted")
    assert links(p) == set()
    # Ctrl+Z brings it back with both links
    ed.key("ctrl+z")
    p = ed.wait(lambda p: "blur" in node_ids(p), what="undo")
    assert links(p) == {("pattern.out", "blur.in"), ("blur.out", "preview.in")}
    # drag the node by its title: one move in the model
    p = ed.wait(lambda p: placed(p, "blur"), what="blur drawn again")
    x, y = p["nodes"]["blur"]["title"]
    ed.drag((x, y), (x + 60, y + 90))
    p = ed.wait(lambda p: next(n for n in p["graph"]["nodes"] if n["id"] == "blur")["pos"] == [380.0, 290.0],
                what="the moved node")
    # Tab over empty canvas opens quick add; typing and Enter adds a node at the cursor
    ed.point(700, 600)
    ed.key("Tab")
    ed.wait(lambda p: p["quick_add"] and p["text_active"], what="quick add")  # its field takes the keys
    ed.xdo("type", "--delay", "60", "thr")
    time.sleep(0.2)
    ed.key("Return")
    p = ed.wait(lambda p: "threshold" in node_ids(p), what="the quick-added node")
    pos = next(n for n in p["graph"]["nodes"] if n["id"] == "threshold")["pos"]
    origin = (p["nodes"]["pattern"]["rect"][0] - 40, p["nodes"]["pattern"]["rect"][1] - 200)
    assert abs(pos[0] - (700 - origin[0])) <= 2 and abs(pos[1] - (600 - origin[1])) <= 2
    # Ctrl+S saves (atomically) to the opened file
    ed.key("ctrl+s")
    p = ed.wait(lambda p: not p["dirty"], what="the save")
    saved = json.loads((tmp_path / "graph.json").read_text())
    assert {n["id"] for n in saved["nodes"]} == {"pattern", "blur", "preview", "threshold"}
    assert {(l["from"], l["to"]) for l in saved["links"]} == links(p)


def test_quitting_or_closing_with_unsaved_changes_asks_first(editor, tmp_path):
    ed = editor
    before = (tmp_path / "graph.json").read_text()
    p = ed.probe()
    ed.drag(p["pins"]["out:blur.out"], p["pins"]["in:preview.in"])
    ed.wait(lambda p: p["dirty"], what="an unsaved change")

    def press(label: str) -> None:
        x0, y0, x1, y1 = ed.probe()["buttons"][label]
        ed.click((x0 + x1) / 2, (y0 + y1) / 2)

    def quit() -> dict:
        ed.point(700, 500)
        ed.key("ctrl+q")
        return ed.wait(lambda p: p["modal"] == ["Unsaved changes"] and "Cancel" in p["buttons"], what="the question")

    quit()
    press("Cancel")
    ed.wait(lambda p: p["modal"] == [], what="the modal to close")
    assert ed.proc.poll() is None  # still open
    wm_close(ed.display, "graph.json")  # the window's close button asks the same
    ed.wait(lambda p: p["modal"] == ["Unsaved changes"] and "Discard" in p["buttons"], what="the question again")
    press("Discard")
    assert ed.proc.wait(10) == 0
    assert (tmp_path / "graph.json").read_text() == before


def test_fusegraph_edit_runs_the_default_preset_live(xvfb, tmp_path):
    shutil.copy(DEFAULT, tmp_path / "default.json")
    ed = Editor(xvfb, tmp_path / "default.json", tmp_path, run=True)
    try:
        p = ed.wait(lambda p: p.get("running") and "test pattern" in p.get("status", ""), what="the live run")
        assert p["modal"] == []
        seen = p["frame"]  # the window keeps drawing while the pipeline runs (no fps threshold: load)
        p = ed.wait(lambda p: p["frame"] > seen + 20, what="the window drawing on")
        assert p["running"]
    finally:
        ed.close()
