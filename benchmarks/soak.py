"""Soak: thousands of frames of the stylise preset; memory must stay flat and GPU objects constant."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import rss_mb
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.graph import load_graph

PRESET = Path(__file__).resolve().parent.parent / "presets" / "stylise.json"


def run(frames: int = 10_000, warmup: int = 2_100) -> dict:
    """warmup: frames before the baseline is taken; the default covers one whole cycle of the
    structural edits (each distinct program is compiled once, llvmpipe keeps its machine code)."""
    warmup = min(warmup, frames // 2)
    graph = load_graph(PRESET)
    with tempfile.TemporaryDirectory() as tmp:
        out = graph.node("out")
        out.params = out.params.model_copy(update={"path": str(Path(tmp) / "soak.mp4")})
        src = graph.node("pattern")
        src.params = src.params.model_copy(update={"frames": frames})
        engine = Engine(graph)
        engine.open()
        t0 = time.perf_counter()
        counts, base = None, None
        samples = []
        for i in range(frames):
            if i % 1000 == 500:  # a structural edit and back: recompiles must not leak
                engine.set_param("glow", "scale", "half" if (i // 1000) % 2 == 0 else "auto")
            if i % 250 == 100:  # a uniform edit
                engine.set_param("tint", "saturation", 1.0 + (i % 7) / 10)
            assert engine.process(i)
            if i == warmup:
                base = rss_mb()
                counts = (engine.gpu.textures, engine.gpu.framebuffers)
            if i > warmup and i % 500 == 0:
                samples.append((i, rss_mb(), engine.gpu.textures, engine.gpu.framebuffers, len(engine.gpu.programs)))
        elapsed = time.perf_counter() - t0
        final = (rss_mb(), engine.gpu.textures, engine.gpu.framebuffers, len(engine.gpu.programs))
        engine.close()
    growth = final[0] - base
    peak = max([m for _, m, *_ in samples] + [final[0]])
    print(f"\n== soak: {frames} frames of presets/stylise.json (1280x720 -> H.264), "
          f"edits every 250 frames, a recompile every 1000 ==")
    print(f"{frames / elapsed:.1f} fps; RSS after warm-up {base:.1f} MB, at the end {final[0]:.1f} MB "
          f"(growth {growth:+.1f} MB, target < 20 MB; highest after warm-up {peak:.1f} MB)")
    print(f"GPU objects after warm-up: {counts[0]} textures, {counts[1]} framebuffers; at the end: "
          f"{final[1]} textures, {final[2]} framebuffers, {final[3]} cached programs (one per distinct source)")
    print("RSS over time (frame: MB): " + ", ".join(f"{i}: {m:.0f}" for i, m, *_ in samples[:: max(1, len(samples) // 10)]))
    return {"growth_mb": growth, "peak_mb": peak, "textures": (counts[0], final[1]), "framebuffers": (counts[1], final[2]),
            "programs": final[3], "fps": frames / elapsed}


if __name__ == "__main__":
    run()
