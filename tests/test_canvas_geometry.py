"""The drawn canvas's geometry without a window: view transform, node layout, hit tests."""
from __future__ import annotations

import pytest

from fusegraph.editor import hit
from fusegraph.editor.layout import PIN_R, bounds, free_spot, node_box
from fusegraph.editor.view import MAX_ZOOM, MIN_ZOOM, View


def test_zoom_keeps_the_point_under_the_pointer_and_is_bounded():
    v = View(30.0, -20.0, 1.0)
    world = v.to_world((400.0, 300.0))
    v.zoom_at((400.0, 300.0), 1.7)
    assert v.to_world((400.0, 300.0)) == pytest.approx(world)
    assert v.to_screen(world) == pytest.approx((400.0, 300.0))
    for _ in range(50):
        v.zoom_at((0, 0), 2.0)
    assert v.zoom == MAX_ZOOM
    for _ in range(50):
        v.zoom_at((0, 0), 0.5)
    assert v.zoom == MIN_ZOOM


def test_fit_shows_the_bounds_whole_and_centred():
    v = View()
    v.fit((-500.0, 100.0, 3500.0, 1300.0), (1000.0, 600.0), margin=20)
    x0, y0, x1, y1 = v.visible((1000.0, 600.0))
    assert x0 <= -500 and y0 <= 100 and x1 >= 3500 and y1 >= 1300
    cx, cy = v.to_screen((1500.0, 700.0))
    assert cx == pytest.approx(500.0) and cy == pytest.approx(300.0)
    v.fit((0.0, 0.0, 100.0, 50.0), (1000.0, 600.0))  # a small graph is not blown up past zoom 1
    assert v.zoom == 1.0


def test_node_layout_pins_and_hit_tests():
    box = node_box("blur", (100.0, 50.0), [("in", "video", True), ("mask", "mask", False)], [("out", "video")],
                   [("sub", "blur (thick)")], record=False)
    pins = box.pins
    assert set(pins) == {"in:blur.in", "in:blur.mask", "out:blur.out"}
    assert pins["in:blur.in"].x == 100.0 and pins["out:blur.out"].x == 100.0 + box.w
    assert pins["in:blur.in"].y < pins["in:blur.mask"].y < pins["out:blur.out"].y < box.y + box.h
    assert pins["in:blur.mask"].label == "mask (opt)"
    assert hit.pin_at([box], (pins["out:blur.out"].x + 3, pins["out:blur.out"].y), PIN_R + 2)[0] == "out:blur.out"
    assert hit.pin_at([box], (box.x + box.w / 2, box.y + 5), PIN_R) is None
    assert hit.node_at([box], (box.x + 5, box.y + 5)) is box and hit.node_at([box], (0, 0)) is None
    other = node_box("view", (400.0, 300.0), [("in", "video", True)], [], [])
    assert hit.boxed([box, other], (90, 40, 120, 70)) == ["blur"]
    assert hit.boxed([box, other], (1000, 1000, 0, 0)) == ["blur", "view"]  # any corner order
    assert bounds([box, other]) == (100.0, 50.0, other.x + other.w, other.y + other.h)
    sink = node_box("out", (0.0, 0.0), [("in", "video", True)], [], [], record=True)
    assert sink.record is not None and sink.pins["in:out.in"].y > sink.record[3]


def test_links_are_hit_along_their_curve_and_through_reroute_dots():
    a, b = (0.0, 0.0), (300.0, 200.0)
    pts = hit.curve(a, b)
    assert pts[0] == a and pts[-1] == b
    mid = pts[len(pts) // 2]
    assert hit.link_at({("x.out", "y.in"): pts}, (mid[0] + 2, mid[1]), 5) == ("x.out", "y.in")
    assert hit.link_at({("x.out", "y.in"): pts}, (300.0, 0.0), 5) is None
    routed = hit.curve(a, b, [(150.0, 400.0)])
    assert min(abs(p[0] - 150) + abs(p[1] - 400) for p in routed) < 1e-6  # passes through the dot


def test_free_spot_overlaps_no_node():
    boxes = [node_box(f"n{i}", (i * 40.0, 0.0), [], [("out", "video")], []) for i in range(4)]
    x, y = free_spot(boxes, (0.0, 0.0))
    new = (x - 10, y - 10, x + 180, y + 120)
    assert not any(hit.overlaps(new, b.rect) for b in boxes)
    assert free_spot([], (5.0, 7.0)) == (5.0, 7.0)
