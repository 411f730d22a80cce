"""The joint bilateral filter against its float64 reference; early-out against the full filter."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import graph_doc, to_float
from fusegraph.nodes import bilateral, threshold
from fusegraph.nodes.pattern import SPEC as PATTERN
from fusegraph.nodes.lib.reference import to_8bit
from fusegraph.nodes.pattern import PatternParams, open_pattern
from fusegraph.nodes.contract import OpenContext

SOFT = threshold.ThresholdParams(level=0.5, softness=0.5)  # the test's way to turn a grey PNG into a mask


def scene(index=30, size=(320, 180), mask_size=(64, 36)):
    """A frame of the pattern, and its true person mask at low resolution (as a network gives)."""
    pp = PatternParams(width=size[0], height=size[1])
    frame = open_pattern(pp, OpenContext("p")).read(index)
    small = cv2.resize(PATTERN.extra["mask"](pp, index), mask_size, interpolation=cv2.INTER_AREA)
    return frame[..., ::-1].copy(), np.round(small * 255).astype(np.uint8)


def run_bilateral(run_graph, write_png, rgb, mask8, params, guided=True):
    nodes = [{"id": "m", "type": "image", "params": {"path": write_png(np.repeat(mask8[..., None], 3, -1))}},
             {"id": "t", "type": "threshold", "params": SOFT.model_dump()},
             {"id": "b", "type": "bilateral", "params": params},
             {"id": "v", "type": "preview", "params": {"max_width": 3840}}]
    links = [("m.out", "t.in"), ("t.out", "b.mask"), ("b.out", "v.in")]
    if guided:
        nodes.append({"id": "g", "type": "image", "params": {"path": write_png(rgb)}})
        links.append(("g.out", "b.guide"))
    got = run_graph(graph_doc(nodes, links))["v"].astype(np.float64) / 255.0
    mask = to_8bit(threshold.reference(mask8 / 255.0, SOFT))  # as stored on the GPU
    return got, mask


@pytest.mark.parametrize("params", [{}, {"early_out": False}, {"radius": 3, "sigma_space": 2.0, "sigma_color": 0.2},
                                    {"radius": 1, "sigma_color": 0.05, "tolerance": 0.1}])
def test_guided_matches_float64_reference(run_graph, write_png, params):
    rgb, mask8 = scene()
    got, mask = run_bilateral(run_graph, write_png, rgb, mask8, params)
    want = bilateral.reference(mask, to_float(rgb), bilateral.BilateralParams(**params))
    assert got.shape == want.shape == (180, 320)
    assert np.abs(got - to_8bit(want)).max() <= 1 / 255 + 1e-9


def test_on_random_mask_and_real_photo(run_graph, write_png, astronaut):
    rng = np.random.default_rng(5)
    rgb = astronaut[::2, ::2].copy()
    mask8 = (rng.random((32, 32)) > 0.5).astype(np.uint8) * 255
    p = bilateral.BilateralParams(radius=2, sigma_space=1.5, sigma_color=0.15)
    got, mask = run_bilateral(run_graph, write_png, rgb, mask8, p.model_dump())
    want = bilateral.reference(mask, to_float(rgb), p)
    err = np.abs(got - to_8bit(want)) * 255
    # A binary mask under a high-contrast photo makes the output hinge on single weights:
    # a guide average that ties at x.5/255 may round either way in float32, and that one
    # step can move the result by two. Such pixels must stay rare.
    assert err.max() <= 2 + 1e-6
    assert (err > 1 + 1e-6).mean() < 1e-3


def test_unguided_is_edge_preserving_on_the_mask(run_graph, write_png):
    _, mask8 = scene(mask_size=(80, 45))
    p = bilateral.BilateralParams(early_out=False, sigma_color=0.3)
    got, mask = run_bilateral(run_graph, write_png, None, mask8, p.model_dump(), guided=False)
    want = bilateral.reference(mask, None, p)
    assert got.shape == (45, 80)
    assert np.abs(got - to_8bit(want)).max() <= 1 / 255 + 1e-9


def test_early_out_equals_full_filter_where_it_is_sure():
    """Within 1/255 wherever the full filter's result is within 1/255 of 0 or 1; the rest measured."""
    rgb, mask8 = scene(size=(640, 360), mask_size=(128, 72))
    mask = to_8bit(threshold.reference(mask8 / 255.0, SOFT))
    guide = to_float(rgb)
    p = bilateral.BilateralParams()
    full = bilateral.full(mask, guide, p)
    early = bilateral.reference(mask, guide, p)
    sure = (full <= 1 / 255) | (full >= 1 - 1 / 255)
    assert np.abs(early - full)[sure].max() <= 1 / 255
    rest = np.abs(early - full)[~sure]
    assert rest.max() <= p.tolerance + 1e-9  # a sure tile's whole window is within tolerance
    cls = bilateral.tile_classes(mask, (640, 360), p)
    assert 0.02 < (cls == 0.5).mean() < 0.6  # the person's outline, not the whole frame


@pytest.mark.parametrize("mix", [{"feather": 0.35, "light_wrap": 0.2},  # sure tiles fold to a copy / the background
                                 {"opacity": 0.6, "choke": -0.3, "feather": 0.3, "mode": "screen"}],  # they cannot
                         ids=["folds", "does not fold"])
def test_sure_tile_classes_drawn_by_their_own_programs_change_nothing(gpu, write_png, astronaut, mix):
    """Offline, each class of sure tiles is drawn by a program with the fused stages' uniforms
    compiled in (codegen.specialise_class): the same bytes as one program for every sure tile (live),
    within 1/255 of the numpy references of the chain, and again after a uniform edit (a new program)."""
    from fusegraph.nodes import composite
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.loader import parse_graph

    rng = np.random.default_rng(7)
    rgb = astronaut[::2, ::2].copy()
    mask8 = np.zeros((32, 32), np.uint8)
    mask8[8:26, 6:20] = 255  # sure foreground, sure background and an outline
    mask8[14:18, 10:14] = rng.integers(0, 256, (4, 4))
    back = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # a low-resolution background, sampled bilinearly
    nodes = [{"id": "m", "type": "image", "params": {"path": write_png(np.repeat(mask8[..., None], 3, -1))}},
             {"id": "t", "type": "threshold", "params": SOFT.model_dump()},
             {"id": "b", "type": "bilateral", "params": {}},
             {"id": "g", "type": "image", "params": {"path": write_png(rgb)}},
             {"id": "bg", "type": "image", "params": {"path": write_png(back)}},
             {"id": "mix", "type": "composite", "params": mix},
             {"id": "v", "type": "preview", "params": {"max_width": 3840}}]
    links = [("m.out", "t.in"), ("t.out", "b.mask"), ("g.out", "b.guide"), ("g.out", "mix.fg"),
             ("bg.out", "mix.bg"), ("b.out", "mix.mask"), ("mix.out", "v.in")]
    engines = {k: Engine(parse_graph(graph_doc(nodes, links)), gpu=gpu) for k in ("classes", "one program")}
    engines["one program"].gl.specialise = False
    outs = {k: [] for k in engines}
    for k, e in engines.items():
        e.open()
        try:
            tiled = next(p for p in e.plan.passes if p.tiles is not None)
            assert [m.node for m in tiled.members] == ["b", "mix"]  # the composite fused after the filter
            for i, opacity in enumerate((mix.get("opacity", 1.0), 0.8)):
                if i:
                    e.set_param("mix", "opacity", opacity)  # a uniform edit: the class programs change
                assert e.process(i)
                outs[k].append(np.array(e.sinks["v"].last, dtype=int))
            classes = sorted(key for key in e.gl._classes)
            assert classes == ([] if k == "one program" else [f"{tiled.name}:class0", f"{tiled.name}:class1"])
            # the engine's own programs, the edited-away ones freed: none in the shared cache
            assert not any("const float fg_tile" in key for key in gpu.programs)
        finally:
            e.close()
    mask = to_8bit(threshold.reference(mask8 / 255.0, SOFT))
    filtered = to_8bit(bilateral.reference(mask, to_float(rgb), bilateral.BilateralParams()))
    for i, opacity in enumerate((mix.get("opacity", 1.0), 0.8)):
        d = np.abs(outs["classes"][i] - outs["one program"][i])
        # exact where the fold leaves a copy or the background; constants folded into arithmetic
        # may round a last bit the other way (a few pixels in 10^5)
        assert d.max() <= (0 if "light_wrap" in mix else 1)
        p = composite.CompositeParams(**{**mix, "opacity": opacity})
        want = to_8bit(composite.reference(to_float(rgb), to_float(back), filtered, p))
        err = np.abs(outs["classes"][i] / 255.0 - want)
        # the background is sampled bilinearly with llvmpipe's 8-bit weights (up to 1.5/255 off)
        assert err.max() <= 2 / 255 + 1e-9
