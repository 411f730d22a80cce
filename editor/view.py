"""The canvas's view transform: pan and zoom between world (graph) and screen coordinates.

World coordinates are the node positions saved in the preset; screen coordinates are pixels
relative to the canvas's top-left corner. screen = world * zoom + offset. No Dear PyGui here.
"""
from __future__ import annotations

from dataclasses import dataclass

MIN_ZOOM, MAX_ZOOM = 0.2, 2.5
FIT_MAX_ZOOM = 1.0  # fitting a small graph does not blow it up past its natural size


@dataclass
class View:
    x: float = 0.0  # where world (0, 0) is on the canvas
    y: float = 0.0
    zoom: float = 1.0

    def to_screen(self, p: tuple[float, float]) -> tuple[float, float]:
        return p[0] * self.zoom + self.x, p[1] * self.zoom + self.y

    def to_world(self, s: tuple[float, float]) -> tuple[float, float]:
        return (s[0] - self.x) / self.zoom, (s[1] - self.y) / self.zoom

    def pan(self, dx: float, dy: float) -> None:
        self.x += dx
        self.y += dy

    def zoom_at(self, s: tuple[float, float], factor: float) -> None:
        """Zoom by `factor` keeping the world point under canvas point `s` where it is."""
        self.zoom_to(s, self.zoom * factor)

    def zoom_to(self, s: tuple[float, float], zoom: float) -> None:
        wx, wy = self.to_world(s)
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.x, self.y = s[0] - wx * self.zoom, s[1] - wy * self.zoom

    def fit(self, bounds: tuple[float, float, float, float], size: tuple[float, float], margin: float = 30.0) -> None:
        """Show world rectangle `bounds` (x0, y0, x1, y1) whole and centred in a canvas of `size`."""
        x0, y0, x1, y1 = bounds
        w, h = max(1.0, x1 - x0), max(1.0, y1 - y0)
        room_w, room_h = max(1.0, size[0] - 2 * margin), max(1.0, size[1] - 2 * margin)
        self.zoom = min(FIT_MAX_ZOOM, max(MIN_ZOOM, min(room_w / w, room_h / h)))
        self.x = size[0] / 2 - (x0 + w / 2) * self.zoom
        self.y = size[1] / 2 - (y0 + h / 2) * self.zoom

    def visible(self, size: tuple[float, float]) -> tuple[float, float, float, float]:
        """The world rectangle the canvas shows."""
        (x0, y0), (x1, y1) = self.to_world((0.0, 0.0)), self.to_world(size)
        return x0, y0, x1, y1
