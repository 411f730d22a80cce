"""Fused vs unfused: blur + 4 thin ops at 1280x720, measured side by side in one run."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import alternate, finish, median, table
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


def run(rounds: int = 6, frames: int = 10) -> dict:
    """Two measures, side by side in one run: wall and CPU time per frame of plain (unprofiled)
    engines, as a user runs them; and each pass drawn once more alone after every frame, its CPU
    time (where the two modes differ: the same upload, read-back and preview copy are in both)."""
    gpu = Gpu()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        frame = open_pattern(PatternParams(width=1280, height=720), OpenContext("bench")).read(40)
        path = str(Path(tmp) / "frame.png")
        cv2.imwrite(path, frame)
        graph = parse_graph(chain(path))
        engines = {"fused": Engine(graph, gpu=gpu, fuse=True), "unfused": Engine(graph, gpu=gpu, fuse=False)}
        for e in engines.values():
            e.open()
        pass_cpu: dict[str, dict[str, list[float]]] = {k: {p.name: [] for p in e.plan.passes} for k, e in engines.items()}

        def passes_cpu(name: str, e: Engine) -> None:  # each pass again, alone: the CPU time of its draw
            for p in e.plan.passes:
                e.gpu.ctx.finish()
                c = time.process_time()
                e._draw(p)
                e.gpu.ctx.finish()
                pass_cpu[name][p.name].append((time.process_time() - c) * 1000.0)

        cpu: dict[str, list[float]] = {}
        times = alternate(engines, rounds, frames, after=passes_cpu, cpu=cpu)
        outs, passes = finish(engines)
    gpu.release()
    ms = {k: median(v) for k, v in times.items()}
    cpu_ms = {k: median(v) for k, v in cpu.items()}
    per_pass = {k: {n: median(v) for n, v in d.items()} for k, d in pass_cpu.items()}
    pass_sum = {k: sum(d.values()) for k, d in per_pass.items()}
    diff = int(np.abs(outs["fused"] - outs["unfused"]).max())
    result = {"ms": ms, "cpu_ms": cpu_ms, "pass_cpu": per_pass, "passes": passes, "max_diff": diff,
              "ratio": ms["unfused"] / ms["fused"], "cpu_ratio": cpu_ms["unfused"] / cpu_ms["fused"],
              "pass_ratio": pass_sum["unfused"] / pass_sum["fused"]}
    print("\n== fusion: blur (sigma 2) + 4 thin ops (color, color with gamma, threshold, composite), 1280x720 ==")
    print(table([["mode", "passes", "frame ms (wall)", "frame CPU ms", "passes CPU ms (each drawn alone)"],
                 *[[k, str(passes[k]), f"{ms[k]:.1f}", f"{cpu_ms[k]:.1f}",
                    f"{pass_sum[k]:.1f} = " + " + ".join(f"{n.split(':', 1)[1]} {v:.1f}" for n, v in per_pass[k].items())]
                   for k in ms]]))
    print(f"fused vs unfused: {result['ratio']:.2f}x per frame in wall time, {result['cpu_ratio']:.2f}x in CPU time, "
          f"{result['pass_ratio']:.2f}x in the passes' CPU time (target >= 2x); max output difference {diff}/255 "
          f"(target <= 1)")
    print(f"(a frame also holds the upload, the read-back and the preview copy, the same in both modes; CPU time: "
          f"the process's, every thread (llvmpipe's rasterisers), which the machine's other load moves much less "
          f"than wall time; {rounds} rounds of {frames} frames, the modes taking turns; 1-minute load average "
          f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    return result


if __name__ == "__main__":
    run()
