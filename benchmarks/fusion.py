"""Fused vs unfused: blur + 4 thin ops at 1280x720, measured side by side in one run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import alternate, median, table
from fusegraph.nodes.pattern import PatternParams, open_pattern
from fusegraph.nodes.contract import OpenContext
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.loader import parse_graph


def chain(path: str) -> dict:
    """image -> blur -> color -> color -> threshold; composite(fg=graded, bg=image, mask=threshold) -> preview"""
    nodes = [
        {"id": "src", "type": "image", "params": {"path": path}},
        {"id": "blur", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}},
        {"id": "grade", "type": "color", "params": {"contrast": 1.3, "saturation": 1.5}},
        {"id": "tone", "type": "color", "params": {"gamma": 1.4, "brightness": 0.02}},
        {"id": "key", "type": "threshold", "params": {"level": 0.45, "softness": 0.1}},
        {"id": "mix", "type": "composite", "params": {"opacity": 0.9}},
        {"id": "view", "type": "preview", "params": {"max_width": 3840}},
    ]
    links = [("src.out", "blur.in"), ("blur.out", "grade.in"), ("grade.out", "tone.in"), ("tone.out", "key.in"),
             ("tone.out", "mix.fg"), ("src.out", "mix.bg"), ("key.out", "mix.mask"), ("mix.out", "view.in")]
    return {"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}


def run(rounds: int = 5, frames: int = 10) -> dict:
    gpu = Gpu()
    with tempfile.TemporaryDirectory() as tmp:
        frame = open_pattern(PatternParams(width=1280, height=720), OpenContext("bench")).read(40)
        path = str(Path(tmp) / "frame.png")
        cv2.imwrite(path, frame)
        graph = parse_graph(chain(path))
        # profile mode: glFinish after each step, so each pass's time is its own
        engines = {"fused": Engine(graph, gpu=gpu, fuse=True, profile=True),
                   "unfused": Engine(graph, gpu=gpu, fuse=False, profile=True)}
        for e in engines.values():
            e.open()
        gpu_ms: dict[str, list[float]] = {k: [] for k in engines}

        def passes_ms(name: str, e: Engine) -> None:  # this frame's GPU passes (profile: synchronised)
            gpu_ms[name].append(sum(e.timings[p.name].ms for p in e.plan.passes))

        times = alternate(engines, rounds, frames, after=passes_ms)
        outs = {k: np.array(e.sinks["view"].last, dtype=int) for k, e in engines.items()}
        passes = {k: len(e.plan.passes) for k, e in engines.items()}
        for e in engines.values():
            e.close()
    gpu.release()
    ms = {k: median(v) for k, v in times.items()}
    pass_ms = {k: median(v) for k, v in gpu_ms.items()}
    diff = int(np.abs(outs["fused"] - outs["unfused"]).max())
    result = {"ms": ms, "pass_ms": pass_ms, "passes": passes, "ratio": ms["unfused"] / ms["fused"],
              "pass_ratio": pass_ms["unfused"] / pass_ms["fused"], "max_diff": diff}
    print("\n== fusion: blur (sigma 2) + 4 thin ops (color, color with gamma, threshold, composite), 1280x720 ==")
    print(table([["mode", "passes", "frame ms (median)", "GPU passes ms"],
                 *[[k, str(passes[k]), f"{ms[k]:.1f}", f"{pass_ms[k]:.1f}"] for k in ms]]))
    print(f"fused is {result['ratio']:.2f}x faster per frame, {result['pass_ratio']:.2f}x in its GPU passes "
          f"(target >= 2x); max output difference {diff}/255 (target <= 1)")
    print("(a frame also holds the upload, the read-back and the preview copy, the same in both modes)")
    return result


if __name__ == "__main__":
    run()
