"""Several GL contexts on one thread: an engine keeps drawing into its own context after another
(an engine with a Gpu of its own, the editor's window) was created, or released, on the same
thread. Before, the session's engines then drew nothing (GL_INVALID_OPERATION) and read back
whatever memory their textures held: the network's input turned to NaN."""
from __future__ import annotations

import numpy as np

from fusegraph.runtime.engine import Engine
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.loader import parse_graph

DOC = {"format": 2, "nodes": [
    {"id": "pattern", "type": "pattern", "params": {"width": 96, "height": 64}},
    {"id": "glow", "type": "blur", "params": {"sigma": 3.0}},
    {"id": "out", "type": "preview", "params": {}}],
    "links": [{"from": "pattern.out", "to": "glow.in"}, {"from": "glow.out", "to": "out.in"}]}


def frame(gpu: Gpu) -> np.ndarray:
    engine = Engine(parse_graph(DOC), gpu=gpu)
    engine.taps = ("glow.out",)
    engine.open()
    try:
        engine.gpu.ctx.error  # reading it clears it: what follows is the frame's own
        engine.process(0)
        assert engine.gpu.ctx.error == "GL_NO_ERROR"
        return engine.tap_frames["glow.out"].copy()
    finally:
        engine.close(ok=False)


def test_an_engine_draws_into_its_own_context_after_another_was_made_current(gpu):
    before = frame(gpu)
    other = Gpu()  # made current on this thread
    frame(other)
    assert np.array_equal(frame(gpu), before)
    other.release()
    other.ctx.release()  # and released: no context is current now
    assert np.array_equal(frame(gpu), before)
