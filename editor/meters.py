"""Level meters for sound nodes on the canvas: a bar in text and its colour."""
from __future__ import annotations


def meter_text(db: float, width: int = 16) -> str:
    """A level meter in text: a bar over -60..0 dBFS and the reading."""
    filled = int(round(width * min(1.0, max(0.0, (db + 60.0) / 60.0))))
    return "[" + "|" * filled + "." * (width - filled) + f"] {max(db, -99.0):4.0f} dBFS"


def meter_colour(db: float) -> tuple[int, int, int]:
    """Green, yellow from -12 dBFS, red from -3 (about to clip)."""
    return (230, 70, 60) if db > -3 else (220, 190, 60) if db > -12 else (110, 200, 120)
