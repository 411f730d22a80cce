"""Live at camera rate: the editor's live run of `presets/background_blur.json` (1280x720, the
shipped clip) measured three ways in one run, side by side:

1. offline: the same plan (the preview's tap on the sink's input, no file written) run frame by
   frame by the Engine with per-step timing (`profile`), as `fusegraph run --profile` would;
2. live without a window: the LiveRunner the editor makes (same thread priority, preview width);
3. live in the editor: the real Dear PyGui window on a private Xvfb, in-process, its own loop;
   first untouched (the UI draws what it needs: "UI frames/s" is then how often it
   drew), then with the pointer moving over the canvas (xdotool), which asks the UI for every
   frame it can draw (at most the display's rate);
4. live without a window with the network's `sync: delay_video` (the picture held back to the
   frame its mask was made from).

Per node: the median time per frame live and offline and their ratio; the pipeline's frames per
second, frames dropped, the preview's age; the UI's frames per second; CPU per thread (% of one
core, from /proc). `./fg bench --only live`. The machine is shared: read the ratios, and the
absolute figures with the load average printed beside them.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.xvfb, when run as a script

from benchmarks.common import table  # noqa: E402

PRESET = Path(__file__).resolve().parent.parent / "presets" / "background_blur.json"
WARMUP_S = 4.0
SECONDS = 10.0
OFFLINE_FRAMES = 60
TICK = os.sysconf("SC_CLK_TCK")


# ---- CPU per thread ----------------------------------------------------------------------------


def thread_times() -> dict[int, tuple[str, float]]:
    """tid -> (name, CPU seconds so far) for every thread of this process: a Python thread by its
    Python name, the others (llvmpipe, onnxruntime, FFmpeg, Dear PyGui) by their OS name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (names.get(int(tid), comm), (int(fields[11]) + int(fields[12])) / TICK)
    return out


UI_THREADS: set[int] = set()  # the window's own GL threads (llvmpipe's rasterisers for its context)


def group(tid: int, name: str) -> str:
    """Threads of one kind together: llvmpipe's rasterisers (the window's apart), etc."""
    if name.startswith("llvmpipe"):
        return "llvmpipe (window)" if tid in UI_THREADS else "llvmpipe (engine)"
    if name.startswith("fusegraph-live"):
        return "engine (fusegraph-live)"
    if name == "MainThread":
        return "MainThread (UI)"
    if name in ("python", "python3"):  # threads no one named: FFmpeg's decoder threads, onnxruntime's
        return "native, unnamed"
    return name.split("_")[0]


def cpu_share(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """% of one core per thread group between two thread_times()."""
    out: dict[str, float] = {}
    for tid, (name, t) in after.items():
        used = t - before.get(tid, (name, 0.0))[1]
        if used > 0:
            out[group(tid, name)] = out.get(group(tid, name), 0.0) + 100.0 * used / seconds
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ---- what the live runner reports, frame by frame ---------------------------------------------


class Recorder:
    """Collects each published frame's figures (LiveRunner.frame_listeners, on the engine's thread)."""

    def __init__(self):
        self.on = False
        self.frames: list[dict] = []

    def __call__(self, stats) -> None:
        if self.on and stats.history:  # (getattr: the bench also measures the code before these fields)
            self.frames.append({**stats.history[-1], "frame_ms": stats.frame_ms,
                                "mask_age": dict(getattr(stats, "ages", {})),
                                "held_back": getattr(stats, "held_back", 0),
                                "async_ms": dict(getattr(stats, "async_ms", {}))})

    def window(self, runner, seconds: float, step=None) -> dict:
        """Measure for `seconds` (calling step() in a loop when given: the UI's loop)."""
        s0 = runner.stats()
        cpu0, t0 = thread_times(), time.perf_counter()
        self.frames, self.on = [], True
        ui_frames = 0
        while time.perf_counter() - t0 < seconds:
            if step is None:
                time.sleep(0.05)
            else:
                ui_frames += step()
        self.on = False
        elapsed = time.perf_counter() - t0
        s1 = runner.stats()
        return {"fps": len(self.frames) / elapsed, "dropped": s1.dropped - s0.dropped,
                "dropped_share": (s1.dropped - s0.dropped) / max(1, s1.dropped - s0.dropped + len(self.frames)),
                "node_ms": medians(self.frames), "frame_ms": statistics.median(f["frame_ms"] for f in self.frames)
                if self.frames else float("nan"), "cpu": cpu_share(cpu0, thread_times(), elapsed),
                "ui_fps": ui_frames / elapsed if step is not None else None,
                "mask_age": mask_ages(self.frames),
                "held_back": statistics.mean(f["held_back"] for f in self.frames) if self.frames else 0.0,
                "async_ms": {n: statistics.median(f["async_ms"][n] for f in self.frames if n in f["async_ms"])
                             for n in {n for f in self.frames for n in f["async_ms"]}}}


def medians(frames: list[dict]) -> dict[str, float]:
    keys = {k for f in frames for k, v in f.items() if isinstance(v, float) and k not in ("frame_ms", "held_back")}
    return {k: statistics.median(f.get(k, 0.0) for f in frames) for k in sorted(keys)}


def mask_ages(frames: list[dict]) -> dict[str, float]:
    ages: dict[str, list[int]] = {}
    for f in frames:
        for node, age in f.get("mask_age", {}).items():
            ages.setdefault(node, []).append(age)
    return {n: statistics.mean(a) for n, a in ages.items()}


# ---- the three ways --------------------------------------------------------------------------


def load_graph():
    from fusegraph.runtime.loader import load_graph as load
    return load(str(PRESET))


def preview_tap(graph) -> str:
    """What the editor previews with nothing selected: the input of the graph's first sink."""
    from fusegraph.nodes import REGISTRY
    sink = next(n.id for n in graph.nodes if REGISTRY[n.type].role == "sink")
    return next(l.src for l in graph.links if l.dst_node == sink)


def offline(graph, frames: int = OFFLINE_FRAMES) -> dict:
    """On a thread of its own, as the live engine runs (a GL context left current on the main
    thread would be in the way of the editor window's own context)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(_offline(graph, frames)), name="offline")
    thread.start()
    thread.join()
    return out


def _offline(graph, frames: int) -> dict:
    from fusegraph.runtime.engine import Engine

    engine = Engine(graph, profile=True, search_dirs=(str(PRESET.parent),), record=frozenset())
    engine.taps = (preview_tap(graph),)
    engine.open()
    rows, frame_ms = [], []
    try:
        for i in range(frames + 5):
            t = time.perf_counter()
            engine.process(i % engine.frame_count())
            ms = (time.perf_counter() - t) * 1000.0
            if i >= 5:  # the first frames compile and fill caches
                rows.append(engine.node_ms())
                frame_ms.append(ms)
    finally:
        engine.close()
    return {"node_ms": medians(rows), "frame_ms": statistics.median(frame_ms),
            "fps": 1000.0 / statistics.median(frame_ms)}


def listen(runner, rec: Recorder) -> None:
    if hasattr(runner, "frame_listeners"):
        runner.frame_listeners.append(rec)
    else:  # the code before (one hook)
        runner.on_frame = rec


def headless(graph, seconds: float, sync: str | None = None) -> dict:
    from fusegraph.editor.controller import PREVIEW_WIDTH, _runner_factory

    if sync is not None:
        graph = graph.model_copy(deep=True)
        for node in graph.nodes:
            if node.type == "neural_net":
                node.params = node.params.model_copy(update={"sync": sync})
    runner = _runner_factory(graph, (str(PRESET.parent),), PREVIEW_WIDTH)  # as the editor makes it
    rec = Recorder()
    listen(runner, rec)
    runner.set_preview(next(n.id for n in graph.nodes if n.type == "video_out"))
    runner.start()
    try:
        time.sleep(WARMUP_S)
        return rec.window(runner, seconds)
    finally:
        runner.stop()


def pointer_moves(display: str, seconds: float, box: tuple[int, int, int, int]) -> subprocess.Popen:
    """One xdotool process moving the pointer to and fro over `box` every 15 ms for `seconds`."""
    x0, y0, x1, y1 = box
    cmd = ["xdotool"]
    n = int(seconds / 0.015)
    for i in range(n):
        f = (i % 60) / 59.0
        f = f if (i // 60) % 2 == 0 else 1.0 - f
        cmd += ["mousemove", str(int(x0 + (x1 - x0) * f)), str(int(y0 + (y1 - y0) * f)), "sleep", "0.015"]
    return subprocess.Popen(cmd, env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def with_window(seconds: float) -> dict:
    from tests.xvfb import start_xvfb  # a private display when there is none

    xvfb = None
    if not os.environ.get("DISPLAY"):
        os.environ["DISPLAY"], xvfb = start_xvfb()
    os.environ.setdefault("FUSEGRAPH_CONFIG", tempfile.mkdtemp(prefix="fusegraph-bench-config-"))
    from fusegraph.editor.app import EditorApp

    engine_gl = {tid for tid, (name, _) in thread_times().items() if name.startswith("llvmpipe")}
    app = EditorApp(width=1600, height=1000)
    app.step()  # the window's context and its rasterisers (the engines' EGL ones stay from before)
    UI_THREADS.update(tid for tid, (name, _) in thread_times().items()
                      if name.startswith("llvmpipe") and tid not in engine_gl)
    out = {}
    try:
        app.ctl.open(PRESET)
        app.ctl.run()
        rec = Recorder()
        listen(app.ctl.runner, rec)
        loop = ui_loop(app)
        end = time.perf_counter() + WARMUP_S
        while time.perf_counter() < end:
            loop()
        out["idle"] = rec.window(app.ctl.runner, seconds, loop)
        mover = pointer_moves(os.environ["DISPLAY"], seconds + 1.0, (200, 200, 900, 600))
        time.sleep(0.2)
        try:
            out["pointer"] = rec.window(app.ctl.runner, seconds, loop)
        finally:
            mover.kill()
            mover.wait()
        app.ctl.stop()
    finally:
        app.close()
        if xvfb is not None:
            xvfb.terminate()
    return out


def ui_loop(app):
    """One turn of the editor's own loop (EditorApp.run), returning the frames it drew."""
    if hasattr(app, "turn"):
        return app.turn

    def step() -> int:
        app.step()
        return 1
    return step


# ---- report ------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def run(seconds: float = SECONDS) -> dict:
    graph = load_graph()
    load0 = os.getloadavg()
    off = offline(graph)
    bare = headless(graph, seconds)
    net = next(n for n in graph.nodes if n.type == "neural_net")
    has_sync = "sync" in type(net.params).model_fields  # not in the code before it
    delayed = headless(graph, seconds, "delay_video") if has_sync else None
    ui = with_window(seconds)
    load1 = os.getloadavg()
    cases = {"live, no window": bare, "live, editor": ui["idle"], "live, editor, pointer moving": ui["pointer"]}
    if delayed is not None:
        cases["live, no window, sync delay_video"] = delayed

    print("\n== live: background_blur.json, 1280x720, the shipped clip (30 fps), preview of the sink's input")
    rows = [["run", "pipeline fps", "ms/frame", "dropped", "UI frames/s", "mask age, frames", "held back",
             "network on its thread ms"],
            ["offline (profile)", f"{off['fps']:.1f}", f"{off['frame_ms']:.1f}", "-", "-", "0", "-", "-"]]
    for name, r in cases.items():
        age = ", ".join(f"{a:.2f}" for a in r["mask_age"].values()) or "0 (in the frame)"
        rows.append([name, f"{r['fps']:.1f}", f"{r['frame_ms']:.1f}",
                     f"{r['dropped']} ({100 * r['dropped_share']:.0f}%)",
                     "-" if r["ui_fps"] is None else f"{r['ui_fps']:.0f}", age, f"{r['held_back']:.2f}",
                     ", ".join(f"{ms:.1f}" for ms in r["async_ms"].values()) or "-"])
    print(table(rows))

    print("\nper node, median ms per frame (live / offline in the same run):")
    nodes = sorted(set(off["node_ms"]) | {n for r in cases.values() for n in r["node_ms"]},
                   key=lambda n: -off["node_ms"].get(n, 0.0))
    rows = [["node", "offline", *cases.keys()]]
    for n in nodes:
        o = off["node_ms"].get(n, 0.0)
        rows.append([n, f"{o:.1f}", *(f"{r['node_ms'].get(n, 0.0):.1f} ({ratio(r['node_ms'].get(n, 0.0), o)})"
                                       for r in cases.values())])
    print(table(rows))

    print("\nCPU per thread, % of one core:")
    names = list(dict.fromkeys(k for r in cases.values() for k in r["cpu"]))
    rows = [["thread", *cases.keys()]]
    for k in names:
        rows.append([k, *(f"{r['cpu'].get(k, 0.0):.0f}" for r in cases.values())])
    rows.append(["total", *(f"{sum(r['cpu'].values()):.0f}" for r in cases.values())])
    print(table(rows))
    print(f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end, on {os.cpu_count()} cores")
    return {"offline": off, **cases}


if __name__ == "__main__":
    run()
