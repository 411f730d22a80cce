"""What fusegraph reads from its own package at run time: GLSL shaders and the shipped presets
(with their media). Found through importlib.resources, so an editable checkout and an installed
wheel are read the same way; nothing computes paths from __file__ up into the checkout."""
from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

DEFAULT_PRESET_NAME = "default"


@cache
def shader_source(name: str) -> str:
    """The text of shaders/NAME (cached: shaders do not change while the program runs)."""
    return files("fusegraph.shaders").joinpath(name).read_text(encoding="utf-8")


def presets_dir() -> Path:
    """The folder of the shipped presets (a real folder: presets name media files beside them)."""
    return Path(str(files("fusegraph.presets").joinpath(f"{DEFAULT_PRESET_NAME}.json"))).parent


def shipped_presets() -> dict[str, Path]:
    """Shipped presets by name (the file's stem), sorted."""
    return {p.stem: p for p in sorted(presets_dir().glob("*.json"))}


def default_preset() -> Path:
    return presets_dir() / f"{DEFAULT_PRESET_NAME}.json"


def resolve_preset(arg: str) -> str:
    """A preset argument as a path: an existing file as given, else a shipped preset's name
    (`default`, `stylise.json`); anything else is returned unchanged, so the loader's
    'not found' error names what the user typed."""
    if Path(arg).exists() or "/" in arg:
        return arg
    shipped = shipped_presets().get(arg.removesuffix(".json"))
    return str(shipped) if shipped else arg


def is_shipped_preset(path: str | Path) -> bool:
    """True for a file of the shipped presets folder: a template a save must not overwrite (an
    installed package's own file; in a checkout, the tracked preset)."""
    try:
        return Path(path).resolve().parent == presets_dir().resolve()
    except OSError:
        return False
