"""Where each part of a node is on the canvas, in world units (zoom 1): its box, title bar, text
rows, pins and Record toggle. Pure geometry from the node's spec and what it shows; the canvas
draws it (editor/graph_canvas.py) and hit-tests it (editor/hit.py). No Dear PyGui here."""
from __future__ import annotations

from dataclasses import dataclass, field

CHAR_W = 7.0  # the default font's advance at zoom 1 (13 px)
LINE = 18.0
TITLE_H = 24.0
PAD = 8.0
MIN_W = 130.0
PIN_R = 5.0


@dataclass
class Pin:
    endpoint: str  # "node.port"
    output: bool
    type: str  # its port type (an output's may follow its input's)
    label: str
    x: float
    y: float


@dataclass
class NodeBox:
    id: str
    x: float
    y: float
    w: float
    h: float
    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, text): "sub", "badge", "ms", "meter"
    pins: dict[str, Pin] = field(default_factory=dict)  # "in:node.port" / "out:node.port" -> Pin
    record: tuple[float, float, float, float] | None = None  # the Record toggle's box

    @property
    def rect(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h

    @property
    def title_rect(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + TITLE_H


def node_box(node_id: str, pos: tuple[float, float], inputs: list[tuple[str, str, bool]],
             outputs: list[tuple[str, str]], rows: list[tuple[str, str]], record: bool = False) -> NodeBox:
    """inputs: (port, type, required); outputs: (port, type); rows: text lines under the title."""
    x, y = pos
    labels = [name + ("" if req else " (opt)") for name, _, req in inputs] + [name for name, _ in outputs]
    longest = max([len(node_id) + 11] + [len(t) for _, t in rows] + [len(l) + 2 for l in labels] + [14])
    w = max(MIN_W, 2 * PAD + CHAR_W * longest)
    box = NodeBox(node_id, x, y, w, 0.0, list(rows))
    cy = y + TITLE_H + 4
    cy += LINE * len(rows)
    if record:
        box.record = (x + PAD, cy + 2, x + PAD + 13, cy + 15)
        cy += LINE
    for (name, t, req), label in zip(inputs, labels):
        box.pins[f"in:{node_id}.{name}"] = Pin(f"{node_id}.{name}", False, t, label, x, cy + LINE / 2)
        cy += LINE
    for name, t in outputs:
        box.pins[f"out:{node_id}.{name}"] = Pin(f"{node_id}.{name}", True, t, name, x + w, cy + LINE / 2)
        cy += LINE
    box.h = cy - y + 6
    return box


def bounds(boxes, extra: list[tuple[float, float, float, float]] = ()) -> tuple[float, float, float, float] | None:
    """The world rectangle around every box (and `extra` rectangles); None when there is nothing."""
    rects = [b.rect for b in boxes] + list(extra)
    if not rects:
        return None
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def free_spot(boxes, at: tuple[float, float], size: tuple[float, float] = (170.0, 110.0),
              step: float = 40.0) -> tuple[float, float]:
    """The nearest place to `at` (searching right and down) where a new node of `size` overlaps
    no box: nodes from the palette no longer land on top of others."""
    rects = [b.rect for b in boxes]
    for ring in range(0, 40):
        for dx, dy in ([(0, 0)] if ring == 0 else
                       [(ring, k) for k in range(ring + 1)] + [(k, ring) for k in range(ring)]):
            x, y = at[0] + dx * step, at[1] + dy * step
            r = (x - 10, y - 10, x + size[0] + 10, y + size[1] + 10)
            if not any(r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3] for o in rects):
                return x, y
    return at
