"""The compiler: pass counts, MRT, dead nodes, pooling, and fused output == unfused output."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import graph_doc
from fusegraph.nodes.contract import SourceInfo
from fusegraph.runtime.compiler import compile_graph, describe, fusion_break
from fusegraph.runtime.loader import parse_graph


def chain_doc(path, sigma=3.0, scale="full", sink="view"):
    """image -> blur -> color -> threshold, composite(fg=color, bg=image, mask=threshold) -> sink"""
    return graph_doc([
        {"id": "src", "type": "image", "params": {"path": path}},
        {"id": "blur", "type": "blur", "params": {"sigma": sigma, "scale": scale}},
        {"id": "col", "type": "color", "params": {"saturation": 1.8, "gamma": 1.3}},
        {"id": "th", "type": "threshold", "params": {"level": 0.4}},
        {"id": "mix", "type": "composite", "params": {"opacity": 0.8}},
        {"id": sink, "type": "preview", "params": {"max_width": 3840}},
    ], [("src.out", "blur.in"), ("blur.out", "col.in"), ("col.out", "th.in"), ("col.out", "mix.fg"),
        ("src.out", "mix.bg"), ("th.out", "mix.mask"), ("mix.out", f"{sink}.in")])


def plan_of(doc, fuse=True, size=(64, 48)):
    return compile_graph(parse_graph(doc), {"src": SourceInfo(size, 30.0, 10)}, fuse=fuse)


def test_thin_ops_fuse_into_the_thick_pass():
    plan = plan_of(chain_doc("x.png"))
    names = [p.name for p in plan.passes]
    assert len(plan.passes) == 2, names  # blur.h, then blur.v + color + threshold + composite
    assert [m.node for m in plan.passes[1].members] == ["blur", "col", "th", "mix"]
    assert plan.passes[1].outputs == [plan.outputs["mix.out"]]  # intermediates stay in registers
    assert len(plan_of(chain_doc("x.png"), fuse=False).passes) == 5


def test_low_resolution_blur_breaks_fusion_and_is_sampled_directly():
    plan = plan_of(chain_doc("x.png", sigma=20.0, scale="auto"), size=(256, 128))
    # down, h, v+col+th at 1/8 size; the composite runs at full size and samples the small colour
    assert len(plan.passes) == 4
    last = plan.passes[-1]
    assert [m.node for m in last.members] == ["mix"]
    assert "resolution differs" in last.break_reason or "no input" in last.break_reason
    assert "texture(" in last.source and "texelFetch" in last.source


def test_value_needed_elsewhere_becomes_an_extra_render_target():
    doc = chain_doc("x.png")
    doc["nodes"].append({"id": "tap", "type": "preview", "params": {"max_width": 3840}})
    doc["links"].append({"from": "col.out", "to": "tap.in"})
    plan = plan_of(doc)
    assert len(plan.passes) == 2
    assert {v.key for v in plan.passes[1].outputs} == {"col@0", "mix@0"}
    assert "layout(location = 1)" in plan.passes[1].source


def test_dead_nodes_are_dropped():
    doc = chain_doc("x.png")
    doc["nodes"].append({"id": "unused", "type": "color", "params": {}})
    doc["links"].append({"from": "src.out", "to": "unused.in"})
    plan = plan_of(doc)
    assert plan.dropped == ["unused"]
    assert all("unused" not in p.nodes for p in plan.passes)


def test_fusion_break_gives_reasons():
    plan = plan_of(chain_doc("x.png"), fuse=False)
    by_node = {p.members[0].node: p for p in plan.passes}
    thin = by_node["col"].members[0]
    assert fusion_break(by_node["blur"], by_node["blur"].members[0], lambda v, p: False) == "not per-pixel"
    assert fusion_break(by_node["blur"], thin, lambda v, p: False) is None  # same size, thin: it could join


def test_textures_are_pooled_by_liveness():
    nodes = [{"id": "src", "type": "image", "params": {"path": "x.png"}}]
    links, prev = [], "src"
    for i in range(6):  # a chain of thick ops: each intermediate dies after the next pass
        nodes.append({"id": f"r{i}", "type": "resize", "params": {"width": 64, "height": 48, "filter": "nearest"}})
        links.append((f"{prev}.out", f"r{i}.in"))
        prev = f"r{i}"
    nodes.append({"id": "view", "type": "preview", "params": {"max_width": 3840}})
    links.append((f"{prev}.out", "view.in"))
    plan = plan_of(graph_doc(nodes, links))
    assert len(plan.passes) == 6
    assert len(plan.slots) == 3  # the upload and two 8-bit targets used in turn


def test_plan_text_lists_passes_sizes_and_transfers():
    text = describe(plan_of(chain_doc("x.png")))
    assert "pass1:blur.v+col+th+mix" in text and "[64x48]" in text
    assert "uploaded" in text and "read back" in text


@pytest.mark.parametrize("sigma,scale", [(3.0, "full"), (20.0, "auto")])
def test_fused_output_equals_unfused(run_graph, write_png, astronaut, sigma, scale):
    rng = np.random.default_rng(11)
    for rgb in (astronaut[::2, ::2].copy(), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)):
        doc = chain_doc(write_png(rgb), sigma, scale)
        fused = run_graph(doc, fuse=True)["view"].astype(int)
        unfused = run_graph(doc, fuse=False)["view"].astype(int)
        assert np.abs(fused - unfused).max() <= 1  # half-float intermediates only when unfused


def test_param_change_is_a_uniform_update_and_structure_change_recompiles(run_graph, write_png, astronaut, gpu):
    from fusegraph.runtime.engine import Engine

    engine = Engine(parse_graph(chain_doc(write_png(astronaut[::4, ::4].copy()))), gpu=gpu)
    engine.open()
    try:
        engine.process(0)
        plan, programs = engine.plan, len(gpu.programs)
        before = np.array(engine.sinks["view"].last)
        engine.set_param("col", "saturation", 0.0)
        engine.process(1)
        assert engine.plan is plan and len(gpu.programs) == programs  # no recompile
        assert not np.array_equal(before, engine.sinks["view"].last)
        engine.set_param("blur", "scale", "half")  # a different texture size: a new plan
        engine.process(2)
        assert engine.plan is not plan
        assert engine.plan.passes[0].size == (64, 64)  # 128x128 at half scale
    finally:
        engine.close()


def test_source_straight_into_a_sink_keeps_channel_order(run_graph, write_png):
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    out = run_graph(graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                               {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                              [("src.out", "view.in")]))["view"]
    assert out.shape == (24, 32, 4)
    assert (out[..., 0] == 200).all() and (out[..., 1:3] == 0).all() and (out[..., 3] == 255).all()


def test_cpu_stage_between_gpu_passes(run_graph, write_png, astronaut, monkeypatch):
    """A CPU stage reads back its input, runs Python, and its result is uploaded for the GPU."""
    from dataclasses import replace

    from fusegraph.nodes import REGISTRY, threshold
    from fusegraph.nodes.contract import Body, CpuStage

    def cpu_build(p, ins):
        run = lambda q, xs: threshold.reference(xs[0].astype(np.float64), q).astype(np.float32)  # noqa: E731
        return Body([CpuStage(("in",), ("mask",), "mask", ins["in"].size, run)], {"out": 0})

    rgb = astronaut[::4, ::4].copy()
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                     {"id": "k", "type": "threshold", "params": {"level": 0.4, "softness": 0.2}},
                     {"id": "c", "type": "composite"},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("src.out", "k.in"), ("src.out", "c.fg"), ("src.out", "c.bg"), ("k.out", "c.mask"),
                     ("k.out", "view.in")])
    doc["nodes"].append({"id": "mixview", "type": "preview", "params": {"max_width": 3840}})
    doc["links"].append({"from": "c.out", "to": "mixview.in"})
    gpu_out = run_graph(doc)["view"].astype(int)
    monkeypatch.setitem(REGISTRY, "threshold", replace(REGISTRY["threshold"], role="cpu", build=cpu_build))
    engines = []
    cpu_out = run_graph(doc, engine_out=engines)["view"].astype(int)
    assert any(s.name == "cpu:k" for s in engines[0].plan.steps)
    assert np.abs(cpu_out - gpu_out).max() <= 1


def test_offline_passes_not_needing_a_cpu_stage_are_drawn_while_it_runs(gpu, write_png, astronaut, monkeypatch):
    """Offline, a CPU stage (a network) runs on a worker while the passes that do not need its
    result are drawn; its result is uploaded before the first step that reads it. The stage here
    waits until the blur has been drawn: without the overlap it would wait in vain."""
    import threading
    from dataclasses import replace

    from fusegraph.nodes import REGISTRY, threshold
    from fusegraph.nodes.contract import Body, CpuStage, NodeError
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.loader import parse_graph

    blur_drawn = threading.Event()
    seen = []

    def run(q, xs):
        seen.append(blur_drawn.wait(timeout=20))
        if q.level > 0.9:
            raise NodeError("no such level")
        return threshold.reference(xs[0].astype(np.float64), q).astype(np.float32)

    def cpu_build(p, ins):
        return Body([CpuStage(("in",), ("mask",), "mask", ins["in"].size, run)], {"out": 0})

    monkeypatch.setitem(REGISTRY, "threshold", replace(REGISTRY["threshold"], role="cpu", build=cpu_build))
    rgb = astronaut[::4, ::4].copy()
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                     {"id": "k", "type": "threshold", "params": {"level": 0.4, "softness": 0.2}},
                     {"id": "b", "type": "blur", "params": {"sigma": 2.0}},
                     {"id": "c", "type": "composite"},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("src.out", "k.in"), ("src.out", "b.in"), ("src.out", "c.fg"), ("b.out", "c.bg"),
                     ("k.out", "c.mask"), ("c.out", "view.in")])
    outs = {}
    for overlap in (True, False):
        blur_drawn.clear()
        engine = Engine(parse_graph(doc), gpu=gpu, profile=not overlap)  # profiled: one step after another
        draw = engine._draw

        def draw_and_tell(p, draw=draw):
            draw(p)
            if any(m.node == "b" for m in p.members):
                blur_drawn.set()

        engine._draw = draw_and_tell
        if not overlap:
            blur_drawn.set()  # it could not be drawn before the stage ends: do not wait for it
        engine.open()
        try:
            steps = [s.name for s in engine.plan.steps]
            assert steps.index("cpu:k") < min(i for i, n in enumerate(steps) if n.startswith("pass") and "b." in n)
            assert engine.process(0)
            outs[overlap] = np.array(engine.sinks["view"].last)
            assert engine.timings["cpu:k"].ms > 0
        finally:
            engine.close()
    assert seen == [True, True]
    assert np.array_equal(outs[True], outs[False])  # the same frame either way

    doc["nodes"][1]["params"]["level"] = 0.95  # the stage fails on its worker: the error names the node
    engine = Engine(parse_graph(doc), gpu=gpu)
    engine.open()
    try:
        with pytest.raises(NodeError, match="no such level") as err:
            engine.process(0)
        assert err.value.node == "k"
    finally:
        engine.close(ok=False)


def test_the_same_work_on_the_same_value_is_done_once():
    """The network's downsized frame and the bilateral's low guide are one pass, not two."""
    from fusegraph.runtime.loader import load_graph

    graph = load_graph("presets/background_blur.json")
    plan = compile_graph(graph, {"source": SourceInfo((1280, 720), 30.0, 10)})
    resizes = [m for p in plan.passes for m in p.members if m.stage.fn.startswith("fg_resize")]
    assert len(resizes) == 1 and resizes[0].node == "segment"
    pack = next(m for p in plan.passes for m in p.members if m.stage.fn == "fg_bilateral_pack")
    assert pack.inputs[0] is resizes[0].out


def test_a_source_nothing_uses_is_not_opened(run_graph):
    """A camera left unconnected (none exists here) does not stop the rest of the graph."""
    doc = graph_doc([{"id": "cam", "type": "camera"}, {"id": "p", "type": "pattern", "params": {"width": 32, "height": 24}},
                     {"id": "view", "type": "preview"}], [("p.out", "view.in")])
    assert run_graph(doc)["view"].shape == (24, 32, 4)
