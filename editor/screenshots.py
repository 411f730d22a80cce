"""Regenerate the README's editor screenshots into docs/.

    python -m fusegraph.editor.screenshots [--out docs] [--seconds 5]

Runs the editor on the default preset, live, on a private Xvfb (so the pointer it moves with
xdotool to show a tooltip is never a user's), with a throwaway config folder, and writes:

- editor.png: the window running live: timing on each node, fused pass badges, the stacked
  frame-time plot, the selected node's inspector and preview, the tooltip of a fused node;
- editor-plan.png: the compiled plan window, and an unwired node marked red with its error;
- editor-sound.png: video_call_clean live: sound nodes with level meters, audio links, the
  video_out's Record toggle (off: the live run writes no file);
- editor-shader.png: the shader_vignette preset: the shader node's code box and uniform sliders
  in the inspector, and a compile error (the user's line, the driver's words) on the node while
  the graph runs on with its last good program.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZE = (1600, 1000)


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        raise SystemExit("Xvfb did not start")
    return proc, f":{number}"


def shoot(out: Path, seconds: float) -> list[Path]:
    import dearpygui.dearpygui as dpg

    from fusegraph.editor.app import DEFAULT_PRESET, EditorApp

    app = EditorApp(width=SIZE[0], height=SIZE[1])
    ctl = app.ctl
    written: list[Path] = []

    def pump(duration: float) -> None:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            app.step()

    def save(name: str) -> None:
        path = out / name
        path.unlink(missing_ok=True)
        pump(0.2)
        dpg.output_frame_buffer(file=str(path))
        end = time.monotonic() + 10
        while not path.exists() and time.monotonic() < end:
            app.step()
        pump(0.2)
        written.append(path)

    def hover(x: float, y: float) -> None:
        """Move the pointer from another thread while this one keeps drawing."""
        t = threading.Thread(target=subprocess.run, args=(["xdotool", "mousemove", str(int(x)), str(int(y))],))
        t.start()
        while t.is_alive():
            app.step()

    try:
        ctl.open(DEFAULT_PRESET)
        ctl.run()
        pump(seconds)
        ctl.select(["glow"])
        pump(1.0)
        title = app.canvas.geometry()["nodes"]["tint"]["title"]
        hover(title[0] + 30, title[1] + 40)
        pump(1.0)
        save("editor.png")
        hover(700, 560)
        ctl.add("blur", (720, 420))  # unwired: marked red, the live run keeps the last complete graph
        ctl.select(["mix"])
        app.timing.show_plan(True)
        pump(1.5)
        save("editor-plan.png")
        app.timing.show_plan(False)
        ctl.stop()
        ctl.doc.new()  # the shot above left it unsaved: no question
        ctl.open(DEFAULT_PRESET.parent / "video_call_clean.json")
        ctl.run()
        ctl.select(["denoise"])
        pump(seconds)
        save("editor-sound.png")
        ctl.stop()
        ctl.open(DEFAULT_PRESET.parent / "shader_vignette.json")
        ctl.run()
        ctl.select(["look"])
        pump(seconds)
        code = ctl.node("look").params.code
        ctl.set_param("look", "code", code.replace("* tint;", "* tnit;"))  # a typo on the user's line 6
        app.inspector.refresh()
        pump(2.0)
        save("editor-shader.png")
    finally:
        app.close()
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs", help="folder for the PNGs (run from the checkout: docs/)")
    ap.add_argument("--seconds", type=float, default=5.0, help="live run before the first shot")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb, display = start_xvfb()
    os.environ["DISPLAY"] = display
    try:
        with tempfile.TemporaryDirectory() as config:
            os.environ["FUSEGRAPH_CONFIG"] = config
            for path in shoot(out, args.seconds):
                print(path)
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
