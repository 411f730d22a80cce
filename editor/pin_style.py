"""How a pin and a link of a port type look: one small function for the canvas to ask (the port
type table of the node contract can take its place)."""
from __future__ import annotations

COLOURS = {"video": (90, 160, 255), "mask": (120, 220, 120), "audio": (255, 160, 60)}
SHAPES = {"video": "circle", "mask": "square", "audio": "triangle"}
OTHER = ((200, 200, 200), "circle")


def pin_look(port_type: str) -> tuple[tuple[int, int, int], str]:
    """(colour, shape: "circle" | "square" | "triangle") of a pin of `port_type`."""
    return (COLOURS[port_type], SHAPES[port_type]) if port_type in COLOURS else OTHER
