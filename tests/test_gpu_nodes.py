"""Every GPU node against its numpy float64 reference, on random and on real images."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import graph_doc, to_float
from fusegraph.nodes import blur, color, composite, resize, threshold
from fusegraph.nodes.contract import Incoming

TOL = 1.0 / 255 + 1e-6  # 8-bit output: one step of the 8-bit grid


def images(astronaut):
    rng = np.random.default_rng(7)
    yield "random", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    yield "photo", astronaut[::2, ::2].copy()  # 256x256 of a real photograph


def run_filter(run_graph, write_png, rgb, kind, params):
    doc = graph_doc([
        {"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
        {"id": "f", "type": kind, "params": params},
        {"id": "view", "type": "preview", "params": {"max_width": 3840}},
    ], [("src.out", "f.in"), ("f.out", "view.in")])
    return run_graph(doc)["view"].astype(np.float64) / 255.0


def assert_close(got: np.ndarray, want: np.ndarray, tol: float = TOL):
    """8-bit output against the float64 reference rounded to the same 8-bit grid."""
    want = np.round(np.clip(want, 0.0, 1.0) * 255.0) / 255.0
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.abs(got - want)
    assert err.max() <= tol, f"max error {err.max() * 255:.2f}/255 at {np.unravel_index(err.argmax(), err.shape)}"


@pytest.mark.parametrize("params", [
    {}, {"brightness": 0.2, "contrast": 1.5, "saturation": 0.3, "gamma": 2.2},
    {"brightness": -0.3, "contrast": 0.5, "saturation": 2.5, "gamma": 0.6},
])
def test_color_matches_reference(run_graph, write_png, astronaut, params):
    for name, rgb in images(astronaut):
        got = run_filter(run_graph, write_png, rgb, "color", params)
        assert_close(got, color.reference(to_float(rgb), color.ColorParams(**params)))


@pytest.mark.parametrize("params", [
    {"sigma": 0.0}, {"sigma": 1.5}, {"sigma": 5.0, "scale": "full"},
    {"sigma": 8.0, "scale": "half"}, {"sigma": 20.0}, {"sigma": 40.0, "scale": "eighth"},
])
def test_blur_matches_reference(run_graph, write_png, astronaut, params):
    for name, rgb in images(astronaut):
        got = run_filter(run_graph, write_png, rgb, "blur", params)
        want = blur.reference(to_float(rgb), blur.BlurParams(**params))
        # half-float intermediates between the passes: within one 8-bit step
        assert_close(got, want)


def test_blur_auto_scale_works_at_reduced_resolution():
    p = blur.BlurParams(sigma=16.0)
    body = blur.build(p, {"in": Incoming((1280, 720), "video")})
    assert blur.factor(p) == 4
    assert [s.label for s in body.stages] == ["down", "h", "v"]
    assert body.stages[-1].out_size == (320, 180)


@pytest.mark.parametrize("params", [
    {"width": 37, "height": 29, "filter": "bilinear"}, {"width": 100, "height": 0, "filter": "nearest"},
    {"width": 16, "height": 12, "filter": "area"}, {"width": 130, "height": 97, "filter": "bilinear"},
    {"width": 0, "height": 20, "filter": "area"},
    {"width": 32, "height": 16, "filter": "area"},  # whole ratios (2x3 and 8x16): the unrolled box shader
])
def test_resize_matches_reference(run_graph, write_png, astronaut, params):
    for name, rgb in images(astronaut):
        got = run_filter(run_graph, write_png, rgb, "resize", params)
        assert_close(got, resize.reference(to_float(rgb), resize.ResizeParams(**params)))


def test_area_resize_at_a_whole_ratio_compiles_the_ratio_in():
    box = resize.resize_stage("in", "video", (1280, 720), (256, 144), "area")
    assert (box.fn, box.consts) == ("fg_resize_box", ("5", "5"))
    assert resize.resize_stage("in", "video", (1280, 720), (300, 144), "area").fn == "fg_resize"
    assert resize.resize_stage("in", "video", (1280, 720), (256, 144), "bilinear").fn == "fg_resize"


@pytest.mark.parametrize("params", [{}, {"level": 0.3, "softness": 0.0}, {"level": 0.7, "softness": 0.2, "invert": True}])
def test_threshold_matches_reference(run_graph, write_png, astronaut, params):
    for name, rgb in images(astronaut):
        got = run_filter(run_graph, write_png, rgb, "threshold", params)
        want = threshold.reference(to_float(rgb), threshold.ThresholdParams(**params))
        if params.get("softness", 0.05) == 0.0:  # a hard step: pixels on the level itself may go either way
            ok = np.abs(threshold.reference(to_float(rgb), threshold.ThresholdParams(level=params["level"], softness=0.0))
                        - got) <= TOL
            assert ok.mean() > 0.999
        else:
            assert_close(got, want)


@pytest.mark.parametrize("params", [{}, {"opacity": 0.7, "mode": "screen"}, {"mode": "multiply"}, {"mode": "add", "opacity": 0.5},
                                    {"choke": 0.1, "feather": 0.2, "light_wrap": 0.6}])
def test_composite_matches_reference_with_low_res_mask(run_graph, write_png, astronaut, params):
    rgb = astronaut[::2, ::2].copy()
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 256, rgb.shape, dtype=np.uint8)
    small = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # a quarter-size mask source: sampled bilinearly
    doc = graph_doc([
        {"id": "fg", "type": "image", "params": {"path": write_png(rgb)}},
        {"id": "bg", "type": "image", "params": {"path": write_png(bg)}},
        {"id": "m", "type": "image", "params": {"path": write_png(small)}},
        {"id": "th", "type": "threshold", "params": {"level": 0.5, "softness": 0.3}},
        {"id": "c", "type": "composite", "params": params},
        {"id": "view", "type": "preview", "params": {"max_width": 3840}},
    ], [("fg.out", "c.fg"), ("bg.out", "c.bg"), ("m.out", "th.in"), ("th.out", "c.mask"), ("c.out", "view.in")])
    got = run_graph(doc)["view"].astype(np.float64) / 255.0
    mask = threshold.reference(to_float(small), threshold.ThresholdParams(level=0.5, softness=0.3))
    # the mask is a half-float texture, then bilinearly filtered by the sampler
    want = composite.reference(to_float(rgb), to_float(bg), mask, composite.CompositeParams(**params))
    assert_close(got, want)
