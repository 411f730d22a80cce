"""The shader node against the built-in it imitates: blur + colour grade at 1280x720, the grade as
the built-in `color` node, as a `shader` node with the same maths (fused, then unfused), side by side."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import alternate, finish, median, table
from fusegraph.nodes.contract import OpenContext
from fusegraph.nodes.pattern import PatternParams, open_pattern
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.loader import parse_graph

GRADE = {"brightness": 0.02, "contrast": 1.3, "saturation": 1.5, "gamma": 1.4}
# shaders/color.glsl's maths, written as a user would
CODE = """vec3 rgb = (in0.rgb + brightness - 0.5) * contrast + 0.5;
float y = dot(rgb, vec3(0.2126, 0.7152, 0.0722));
rgb = clamp(y + (rgb - y) * saturation, 0.0, 1.0);
return vec4(pow(rgb, vec3(1.0 / gamma)), in0.a);"""


def doc(path: str, grade: dict) -> dict:
    nodes = [{"id": "src", "type": "image", "params": {"path": path}},
             {"id": "blur", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}}, grade,
             {"id": "view", "type": "preview", "params": {"max_width": 3840}}]
    port = "in0" if grade["type"] == "shader" else "in"
    links = [("src.out", "blur.in"), ("blur.out", f"grade.{port}"), ("grade.out", "view.in")]
    return {"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}


def run(rounds: int = 5, frames: int = 10) -> dict:
    gpu = Gpu()
    builtin = {"id": "grade", "type": "color", "params": GRADE}
    shader = {"id": "grade", "type": "shader", "params": {
        "code": CODE, "uniforms": [{"name": k, "default": v, "min": -1.0, "max": 4.0} for k, v in GRADE.items()]}}
    with tempfile.TemporaryDirectory() as tmp:
        frame = open_pattern(PatternParams(width=1280, height=720), OpenContext("bench")).read(40)
        path = str(Path(tmp) / "frame.png")
        cv2.imwrite(path, frame)
        engines = {"color (built-in), fused": Engine(parse_graph(doc(path, builtin)), gpu=gpu),
                   "shader, fused": Engine(parse_graph(doc(path, shader)), gpu=gpu),
                   "shader, unfused": Engine(parse_graph(doc(path, shader)), gpu=gpu, fuse=False)}
        for e in engines.values():
            e.open()
        times = alternate(engines, rounds, frames)
        outs, passes = finish(engines)
    gpu.release()
    ms = {k: median(v) for k, v in times.items()}
    base = "color (built-in), fused"
    diff = max(int(np.abs(outs[k] - outs[base]).max()) for k in outs)
    print("\n== shader node vs the built-in it imitates: blur (sigma 2) + colour grade, 1280x720 ==")
    print(table([["grade", "passes", "frame ms (median)", "vs built-in"],
                 *[[k, str(passes[k]), f"{ms[k]:.1f}", f"{ms[k] / ms[base]:.2f}x"] for k in ms]]))
    print(f"max output difference from the built-in: {diff}/255 (target <= 1); target: the fused shader "
          f"within 10% of the built-in")
    return {"ms": ms, "passes": passes, "max_diff": diff}


if __name__ == "__main__":
    run()
