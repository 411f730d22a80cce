"""The network compiler (`./fg bench --only nn`): per model, the network as GPU passes (fused with
four render targets, fused with one, one pass per op) against onnxruntime on 1 and 2 threads, ms
per inference taking turns; passes, texel reads per inference, bytes across CPU<->GPU per frame;
then whole frames of background_blur.json with each backend."""
from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

from benchmarks.common import alternate, median, table
from fusegraph.nodes.lib.model_registry import cached_path
from fusegraph.nodes.lib.nn.compile import compile_file
from fusegraph.nodes.lib.nn.report import texel_reads, texel_writes
from fusegraph.nodes.lib.onnx_session import Model
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.loader import parse_graph
from fusegraph.runtime.models import fetch
from fusegraph.runtime.nn_run import GlNet
from fusegraph.runtime.resources import presets_dir

MODELS = {"selfie": (256, 144), "selfie_square": (256, 256)}
ROUNDS, RUNS = 5, 8


def _timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def per_model(gpu: Gpu, name: str) -> list[list[str]]:
    w, h = MODELS[name]
    path = str(cached_path(name))
    x = np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)
    gl = {
        "gl fused, 4 targets": compile_file(path, name, (w, h), True, 4, gpu.max_texture),
        "gl fused, 1 target": compile_file(path, name, (w, h), True, 1, gpu.max_texture),
        "gl one pass per op": compile_file(path, name, (w, h), False, 1, gpu.max_texture),
    }
    nets = {k: GlNet(c, gpu, "f4") for k, c in gl.items()}
    for n in nets.values():
        n.run(x[0].transpose(2, 0, 1))  # input uploaded once: in a graph it is already on the GPU

    def draw(n: GlNet):
        n.draw()
        gpu.ctx.finish()

    ort = {f"onnxruntime {t} thread{'s' if t > 1 else ''}": Model(name, path, t) for t in (1, 2)}
    runs = {k: (lambda n=n: draw(n)) for k, n in nets.items()}
    runs |= {k: (lambda m=m: m.run(x, 0)) for k, m in ort.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for _ in range(ROUNDS):
        for k, fn in runs.items():
            times[k] += _timed(fn, RUNS)
    tensor_back, mask_up = w * h * 16, w * h  # RGBA32F tensor read back, R8 mask uploaded
    rows = []
    for k in runs:
        c = gl.get(k)
        rows.append([name, f"{w}x{h}", k, f"{median(times[k]):.2f}",
                     str(len(c.passes)) if c else "-",
                     f"{texel_reads(c) / 1e6:.2f} M" if c else "-",
                     f"{texel_writes(c) / 1e3:.0f} K" if c else "-",
                     "0" if c else f"{(tensor_back + mask_up) / 1e3:.0f} KB"])
    for n in nets.values():
        n.release()
    return rows


def whole_frames(gpu: Gpu) -> list[list[str]]:
    doc = json.loads((presets_dir() / "background_blur.json").read_text())
    engines = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("gl", "onnxruntime"):
            d = json.loads(json.dumps(doc))
            for n in d["nodes"]:
                if n["id"] == "segment":
                    n["params"]["backend"] = backend
                if n["id"] == "source":
                    n["params"].update(path=str(presets_dir() / "media" / "person.mp4"), loop=True)
                if n["id"] == "out":
                    n.update(type="preview", params={"max_width": 3840})
            e = Engine(parse_graph(d), gpu=gpu)
            e.open()
            engines[backend] = e
        try:
            times = alternate(engines, rounds=3, frames=8)
            rows = []
            for k, e in engines.items():
                up, down = e.plan.transfer_bytes()
                rows.append(["background_blur 1280x720", k, f"{median(times[k]):.1f}", str(len(e.plan.passes)),
                             f"{up / 1e6:.2f} MB up, {down / 1e6:.2f} MB back"])
        finally:
            for e in engines.values():
                e.close()
    del tmp
    return rows


def run() -> None:
    for name in MODELS:
        fetch([name], log=lambda msg: None)
    gpu = Gpu()
    print(f"\n== nn: the network as GPU passes vs onnxruntime ({gpu.renderer}; load "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}) ==")
    rows = [["model", "input", "engine", "ms/inference", "passes", "texel reads", "texel writes", "CPU<->GPU per frame"]]
    for name in MODELS:
        rows += per_model(gpu, name)
    print(table(rows))
    frames = [["graph", "segment backend", "ms/frame", "GPU passes", "transfers per frame"]] + whole_frames(gpu)
    print(table(frames))
    print(f"(load after: {' '.join(f'{v:.1f}' for v in os.getloadavg())})")
    gpu.release()
