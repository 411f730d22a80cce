"""How a pin and a link of a port type look: the port type's own row of the node contract
(nodes/contract/types.py) says, so a new port type brings its look with it."""
from __future__ import annotations

from fusegraph.nodes.contract import TYPES

COLOURS = {t.name: t.pin_colour for t in TYPES.values()}
SHAPES = {"circle": "circle", "quad": "square", "triangle": "triangle"}  # the table's names -> the canvas's
OTHER = ((200, 200, 200), "circle")


def pin_look(port_type: str) -> tuple[tuple[int, int, int], str]:
    """(colour, shape: "circle" | "square" | "triangle") of a pin of `port_type`."""
    row = TYPES.get(port_type)
    return (row.pin_colour, SHAPES.get(row.pin_shape, "circle")) if row is not None else OTHER
