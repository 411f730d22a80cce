"""Live at camera rate: the editor's live run of `presets/background_blur.json` (1280x720, the
shipped clip) measured against the offline engine in one run, side by side:

0. offline: the same plan (the preview's tap on the sink's input, no file written) run frame by
   frame by the Engine with per-step timing (`profile`, as live), in bursts of a few frames
   between 2-second turns of each live case below (the live run paused meanwhile), so each live
   figure has an offline one measured under the same load;
1. live without a window: the LiveRunner the editor makes (same thread priority, preview width);
2. live without a window with the network's `sync: delay_video` (the picture held back to the
   frame its mask was made from);
3. live in the editor: the real Dear PyGui window on a private Xvfb, in-process, its own loop;
   first untouched (the UI draws what it needs: "UI frames/s" is then how often it
   drew), then with the pointer moving over the canvas (xdotool), which asks the UI for every
   frame it can draw (at most the display's rate).

Per node: the median time per frame live and offline and their ratio; the pipeline's frames per
second, frames dropped, the preview's age; the UI's frames per second; CPU per thread (% of one
core, from /proc). `./fg bench --only live`. The machine is shared: read the ratios, and the
absolute figures with the load average printed beside them.
"""
from __future__ import annotations

import os
import queue
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
SECONDS = 10.0  # of live running per case
CHUNK_S = 2.0  # live turns of this long ...
BURST_FRAMES = 8  # ... with this many offline frames between them
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
    return name.split(" [")[0]  # (a step's name may carry its label's note in brackets)


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
            timed = getattr(stats, "timed", True)  # per-node times: of the frames they were measured on
            self.frames.append({**(stats.history[-1] if timed else {}), "frame_ms": stats.frame_ms,
                                "mask_age": dict(getattr(stats, "ages", {})),
                                "held_back": getattr(stats, "held_back", 0),
                                "async_ms": dict(getattr(stats, "async_ms", {}))})

    def window(self, runner, seconds: float, offline: "Offline", step=None) -> dict:
        """Measure for `seconds` of live running (calling step() in a loop when given: the UI's
        loop), in turns of CHUNK_S with a burst of the offline engine between them (the live run
        paused), so that both see the same load on this shared machine."""
        self.frames, live_s, dropped, ui_frames = [], 0.0, 0, 0
        cpu: dict[str, float] = {}
        off_rows, off_ms = [], []
        while live_s < seconds:
            s0, cpu0, t0 = runner.stats(), thread_times(), time.perf_counter()
            self.on = True
            while time.perf_counter() - t0 < CHUNK_S:
                if step is None:
                    time.sleep(0.05)
                else:
                    ui_frames += step()
            self.on = False
            took = time.perf_counter() - t0
            live_s += took
            dropped += runner.stats().dropped - s0.dropped
            for k, v in cpu_share(cpu0, thread_times(), took).items():
                cpu[k] = cpu.get(k, 0.0) + v * took
            paused = hasattr(runner, "pause") and runner.pause()
            try:
                rows, ms = offline.burst(BURST_FRAMES)
            finally:
                if paused:
                    runner.pause(False)
            off_rows += rows
            off_ms += ms
        n = len(self.frames)
        return {"fps": n / live_s, "dropped": dropped, "dropped_share": dropped / max(1, dropped + n),
                "node_ms": medians(self.frames),
                "frame_ms": statistics.median(f["frame_ms"] for f in self.frames) if n else float("nan"),
                "cpu": dict(sorted(((k, v / live_s) for k, v in cpu.items()), key=lambda kv: -kv[1])),
                "ui_fps": ui_frames / live_s if step is not None else None,
                "mask_age": mask_ages(self.frames),
                "held_back": statistics.mean(f["held_back"] for f in self.frames) if n else 0.0,
                "async_ms": {k: statistics.median(f["async_ms"][k] for f in self.frames if k in f["async_ms"])
                             for k in {k for f in self.frames for k in f["async_ms"]}},
                "offline": {"node_ms": medians(off_rows), "frame_ms": statistics.median(off_ms),
                            "fps": 1000.0 / statistics.median(off_ms)}}


def medians(frames: list[dict]) -> dict[str, float]:
    keys = {k for f in frames for k, v in f.items() if isinstance(v, float) and k not in ("frame_ms", "held_back")}
    return {k: statistics.median(f[k] for f in frames if k in f) for k in sorted(keys)}


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


class Offline:
    """The same plan run offline (`profile`: synchronised per-step timing, as live), on a thread
    of its own (a GL context left current on the main thread would be in the way of the editor
    window's), in bursts between the live measurements."""

    def __init__(self, graph):
        self.graph = graph
        self._jobs: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="offline", daemon=True)
        self._thread.start()
        self.burst(5)  # compiles, fills caches

    def burst(self, frames: int) -> tuple[list[dict], list[float]]:
        """(node ms per frame, frame ms) of the next `frames` frames."""
        self._jobs.put(frames)
        result = self._done.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _run(self) -> None:
        from fusegraph.runtime.engine import Engine

        try:
            engine = Engine(self.graph, profile=True, search_dirs=(str(PRESET.parent),), record=frozenset())
            engine.taps = (preview_tap(self.graph),)
            engine.open()
        except BaseException as exc:
            self._done.put(exc)
            return
        index = 0
        try:
            while (frames := self._jobs.get()) is not None:
                rows, frame_ms = [], []
                for _ in range(frames):
                    t = time.perf_counter()
                    engine.process(index % engine.frame_count())
                    frame_ms.append((time.perf_counter() - t) * 1000.0)
                    rows.append(engine.node_ms())
                    index += 1
                self._done.put((rows, frame_ms))
        finally:
            engine.close()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


def listen(runner, rec: Recorder) -> None:
    if hasattr(runner, "frame_listeners"):
        runner.frame_listeners.append(rec)
    else:  # the code before (one hook)
        runner.on_frame = rec


def headless(graph, seconds: float, offline: Offline, sync: str | None = None) -> dict:
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
        return rec.window(runner, seconds, offline)
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


def with_window(seconds: float, offline: Offline) -> dict:
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
        out["idle"] = rec.window(app.ctl.runner, seconds, offline, loop)
        mover = pointer_moves(os.environ["DISPLAY"], 3 * seconds, (200, 200, 900, 600))
        time.sleep(0.2)
        try:
            out["pointer"] = rec.window(app.ctl.runner, seconds, offline, loop)
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
    offline = Offline(graph)
    try:
        cases = {"live, no window": headless(graph, seconds, offline)}
        net = next(n for n in graph.nodes if n.type == "neural_net")
        if "sync" in type(net.params).model_fields:  # (not in the code before it)
            cases["live, no window, sync delay_video"] = headless(graph, seconds, offline, "delay_video")
        ui = with_window(seconds, offline)
    finally:
        offline.close()
    cases["live, editor"], cases["live, editor, pointer moving"] = ui["idle"], ui["pointer"]
    load1 = os.getloadavg()

    print("\n== live: background_blur.json, 1280x720, the shipped clip (30 fps), preview of the sink's input")
    rows = [["run", "pipeline fps", "ms/frame", "offline fps, same time", "dropped", "UI frames/s", "mask age, frames",
             "held back", "network on its thread ms"]]
    for name, r in cases.items():
        age = ", ".join(f"{a:.2f}" for a in r["mask_age"].values()) or "0 (in the frame)"
        rows.append([name, f"{r['fps']:.1f}", f"{r['frame_ms']:.1f}", f"{r['offline']['fps']:.1f}",
                     f"{r['dropped']} ({100 * r['dropped_share']:.0f}%)",
                     "-" if r["ui_fps"] is None else f"{r['ui_fps']:.0f}", age, f"{r['held_back']:.2f}",
                     ", ".join(f"{ms:.1f}" for ms in r["async_ms"].values()) or "-"])
    print(table(rows))

    print("\nper node, median ms per frame, live (offline in the bursts between, ratio live/offline):")
    first = next(iter(cases.values()))["offline"]["node_ms"]
    nodes = sorted({n for r in cases.values() for n in r["node_ms"]}, key=lambda n: -first.get(n, 0.0))
    rows = [["node", *cases.keys()]]
    for n in nodes:
        cells = []
        for r in cases.values():
            live, off = r["node_ms"].get(n, 0.0), r["offline"]["node_ms"].get(n, 0.0)
            cells.append(f"{live:.1f} ({off:.1f}, {ratio(live, off)})")
        rows.append([n, *cells])
    print(table(rows))
    print("(a node run beside the frame, live, counts here only its time in the frame: its input's read-back, "
          "the hand-over and the mask's upload; its thread's time is in the first table)")

    print("\nCPU per thread, % of one core:")
    names = list(dict.fromkeys(k for r in cases.values() for k in r["cpu"]))
    rows = [["thread", *cases.keys()]]
    for k in names:
        rows.append([k, *(f"{r['cpu'].get(k, 0.0):.0f}" for r in cases.values())])
    rows.append(["total", *(f"{sum(r['cpu'].values()):.0f}" for r in cases.values())])
    print(table(rows))
    for name, r in cases.items():  # % of a core is 10 ms a second
        if r["ui_fps"]:
            ui_ms = 10.0 * sum(v for k, v in r["cpu"].items() if k in ("MainThread (UI)", "llvmpipe (window)"))
            print(f"{name}: the window's CPU per UI frame {ui_ms / r['ui_fps']:.1f} ms")
    print(f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end, on {os.cpu_count()} cores")
    return cases


if __name__ == "__main__":
    run()
