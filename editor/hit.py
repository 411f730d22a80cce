"""Hit tests on the canvas, in world units: which node, pin, link or comment is under a point,
and which nodes a box selection takes. Links are cubic Béziers between pins, sampled. No Dear
PyGui here."""
from __future__ import annotations

import math


def inside(r: tuple[float, float, float, float], p: tuple[float, float]) -> bool:
    return r[0] <= p[0] <= r[2] and r[1] <= p[1] <= r[3]


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def curve(a: tuple[float, float], b: tuple[float, float], via: list[tuple[float, float]] = (), n: int = 20):
    """A link from output a to input b (through reroute points `via`) as a polyline."""
    points = [a, *via, b]
    out = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        k = max(40.0, abs(x1 - x0) * 0.5)
        c0, c1 = (x0 + k, y0), (x1 - k, y1)
        for i in range(n + 1):
            t = i / n
            u = 1 - t
            out.append((u ** 3 * x0 + 3 * u * u * t * c0[0] + 3 * u * t * t * c1[0] + t ** 3 * x1,
                        u ** 3 * y0 + 3 * u * u * t * c0[1] + 3 * u * t * t * c1[1] + t ** 3 * y1))
    return out


def segment_distance(p, a, b) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(p[0] - (ax + t * dx), p[1] - (ay + t * dy))


def node_at(boxes, p):
    """The topmost box under p (boxes in drawing order), or None."""
    for box in reversed(list(boxes)):
        if inside(box.rect, p):
            return box
    return None


def pin_at(boxes, p, radius: float):
    """The pin nearest p within `radius` (key "in:node.port" / "out:node.port", Pin), or None."""
    best, best_d = None, radius
    for box in boxes:
        r = box.rect
        if not inside((r[0] - radius, r[1], r[2] + radius, r[3]), p):
            continue
        for key, pin in box.pins.items():
            d = math.hypot(p[0] - pin.x, p[1] - pin.y)
            if d <= best_d:
                best, best_d = (key, pin), d
    return best


def link_at(polylines: dict, p, tolerance: float):
    """The link (its key) whose polyline passes within `tolerance` of p, or None."""
    best, best_d = None, tolerance
    for key, pts in polylines.items():
        xs, ys = [q[0] for q in pts], [q[1] for q in pts]
        if not (min(xs) - tolerance <= p[0] <= max(xs) + tolerance and min(ys) - tolerance <= p[1] <= max(ys) + tolerance):
            continue
        for a, b in zip(pts, pts[1:]):
            d = segment_distance(p, a, b)
            if d <= best_d:
                best, best_d = key, d
    return best


def boxed(boxes, rect) -> list[str]:
    """Ids of the boxes a box selection `rect` touches."""
    r = (min(rect[0], rect[2]), min(rect[1], rect[3]), max(rect[0], rect[2]), max(rect[1], rect[3]))
    return [b.id for b in boxes if overlaps(b.rect, r)]
