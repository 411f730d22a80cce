"""The issue's walk-through, through the controller (what the mouse drives): build the
background-blur graph from an empty document, run it live, save, reopen, and run the saved
file headless: the headless frame equals the live preview of the same frame."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import numpy as np

from fusegraph.editor.controller import EditorController


def test_build_run_save_reopen_and_run_headless_to_the_same_output(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEGRAPH_CONFIG", str(tmp_path / "config"))
    ctl = EditorController(autosave_seconds=3600, preview_width=3840)
    src = ctl.add("pattern", (0, 100), {"width": 320, "height": 180, "frames": 0})
    net = ctl.add("neural_net", (200, 0))
    ref = ctl.add("bilateral", (400, 0))
    bg = ctl.add("blur", (200, 200), {"sigma": 8.0})
    mix = ctl.add("composite", (600, 100), {"feather": 0.35})
    out = ctl.add("preview", (800, 100), {"max_width": 3840})
    for a, b in [(f"{src}.out", f"{net}.in"), (f"{net}.out", f"{ref}.mask"), (f"{src}.out", f"{ref}.guide"),
                 (f"{src}.out", f"{bg}.in"), (f"{src}.out", f"{mix}.fg"), (f"{bg}.out", f"{mix}.bg"),
                 (f"{ref}.out", f"{mix}.mask"), (f"{mix}.out", f"{out}.in")]:
        assert ctl.link(a, b) is None
    assert ctl.link(f"{net}.out", f"{mix}.fg") is not None  # a mask into a video input is refused
    assert ctl.run()
    try:
        ctl.runner.set_preview(out)
        end = time.time() + 30
        while time.time() < end and not (ctl.runner.preview()[0] is not None and ctl.runner.stats().node_ms.keys()
                                         >= {src, net, ref, bg, mix}):
            time.sleep(0.05)
        live, index = ctl.runner.preview()
        stats = ctl.runner.stats()
    finally:
        ctl.stop()
    assert live is not None and stats.failure == "" and not stats.errors
    assert all(stats.node_ms[n] > 0 for n in (src, net, ref, bg, mix))  # timings on every node
    saved = tmp_path / "mine.json"
    ctl.save(saved)
    again = EditorController(autosave_seconds=3600)
    assert again.open(saved) == [] and again.doc.graph == ctl.doc.graph  # positions and all
    # headless: the same graph into a lossless sequence of PNGs, frame `index` compared
    doc = again.doc.graph.model_dump(mode="json", by_alias=True)
    for node in doc["nodes"]:
        if node["id"] == out:
            node.update(type="image_out", params={"path": str(tmp_path / "f{frame:05d}.png"), "mode": "sequence"})
    headless = tmp_path / "headless.json"
    headless.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "fusegraph.runtime.cli", "run", str(headless), "--frames", str(index + 1),
                        "--quiet", "--allow-outside"], capture_output=True, text=True)  # writes into tmp_path
    assert r.returncode == 0, r.stderr
    frame = cv2.cvtColor(cv2.imread(str(tmp_path / f"f{index:05d}.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGBA)
    assert frame.shape == live.shape
    assert np.abs(frame.astype(int) - live.astype(int)).max() <= 1
