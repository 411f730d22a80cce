"""The editor's canvas under load: UI frames per second with 20 and 200 nodes on the canvas, the
whole graph in view (fit all: every node drawn), the live pipeline running; beside them the
same with only the 4 nodes that run (the rest of the window's cost), as the baseline of the ratios.

Two cases per size: "live" (the canvas redraws when the live timing changes, four times a second)
and "zooming" (the view changes every frame, so every frame is a full redraw: the worst case).
`./fg bench --only editor`. Figures are for this machine (software GL, shared cores): read the
ratios side by side; the load average is printed with them.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time

from benchmarks.common import table

SECONDS = 4.0


def graph_doc(n: int) -> dict:
    """A pattern feeding a preview through a blur and a colour node (what runs live), and chains
    of colour nodes beside it up to `n` nodes, laid out on a grid, linked along each chain."""
    nodes = [{"id": "pattern", "type": "pattern", "params": {"width": 320, "height": 180}, "pos": [0, 0]},
             {"id": "blur", "type": "blur", "params": {"sigma": 3.0}, "pos": [220, 0]},
             {"id": "tint", "type": "color", "params": {}, "pos": [440, 0]},
             {"id": "view", "type": "preview", "params": {}, "pos": [660, 0]}]
    links = [("pattern.out", "blur.in"), ("blur.out", "tint.in"), ("tint.out", "view.in")]
    cols = 10
    for i in range(n - len(nodes)):
        nid = f"c{i}"
        nodes.append({"id": nid, "type": "color", "params": {}, "pos": [220 * (i % cols), 160 * (1 + i // cols)]})
        links.append((f"c{i - 1}.out" if i % cols else "pattern.out", f"{nid}.in"))
    return {"format": 3, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}


def measure(app, seconds: float, zooming: bool) -> tuple[float, float]:
    """(UI frames per second, median ms of a full redraw)."""
    canvas = app.canvas
    frames, t0 = 0, time.perf_counter()
    redraw_ms = []
    while time.perf_counter() - t0 < seconds:
        if zooming:
            canvas.zoom_by(1.02 if frames % 40 < 20 else 1 / 1.02)
            t = time.perf_counter()
            canvas.redraw()
            redraw_ms.append((time.perf_counter() - t) * 1000.0)
        app.step()
        frames += 1
    return frames / (time.perf_counter() - t0), statistics.median(redraw_ms) if redraw_ms else float("nan")


def run(sizes=(4, 20, 200)) -> dict:
    from tests.xvfb import start_xvfb  # a private display when there is none

    xvfb = None
    if not os.environ.get("DISPLAY"):
        os.environ["DISPLAY"], xvfb = start_xvfb()
    os.environ.setdefault("FUSEGRAPH_CONFIG", tempfile.mkdtemp(prefix="fusegraph-bench-config-"))
    from fusegraph.editor.app import EditorApp
    folder = tempfile.mkdtemp(prefix="fusegraph-bench-")
    app = EditorApp(width=1600, height=1000)
    results = {}
    try:
        for n in sizes:
            path = os.path.join(folder, f"nodes{n}.json")
            with open(path, "w") as f:
                json.dump(graph_doc(n), f)
            app.ctl.open(path)
            app.ctl.run()
            for _ in range(30):  # the first frames: the window settles, the engine compiles
                app.step()
            app.canvas.fit_all()
            app.step()
            drawn = len(app.canvas.geometry()["nodes"])
            live_fps, _ = measure(app, SECONDS, zooming=False)
            stats = app.ctl.stats()
            pipeline = stats.fps if stats else 0.0
            zoom_fps, redraw = measure(app, SECONDS, zooming=True)
            app.ctl.stop()
            results[n] = {"drawn": drawn, "live_fps": live_fps, "zoom_fps": zoom_fps, "redraw_ms": redraw,
                          "pipeline_fps": pipeline}
    finally:
        app.close()
        shutil.rmtree(folder, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
    load = os.getloadavg()
    rows = [["nodes", "drawn", "UI fps, live", "UI fps, zooming", "full redraw ms", "pipeline fps"]]
    for n, r in results.items():
        rows.append([str(n), str(r["drawn"]), f"{r['live_fps']:.0f}", f"{r['zoom_fps']:.0f}", f"{r['redraw_ms']:.1f}",
                     f"{r['pipeline_fps']:.1f}"])
    print("\n== editor canvas: UI frame rate, whole graph in view, live pipeline running")
    print(table(rows))
    base = results[sizes[0]]
    for n in sizes[1:]:
        r = results[n]
        print(f"ratios {n}/{sizes[0]} nodes: UI fps live {r['live_fps'] / base['live_fps']:.2f}, "
              f"zooming {r['zoom_fps'] / base['zoom_fps']:.2f}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    return results


if __name__ == "__main__":
    run()
