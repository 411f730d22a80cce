"""Node kinds: every module in this package that defines SPEC is one kind."""
from __future__ import annotations

import importlib
import os
import pkgutil

from fusegraph.nodes.contract import PIXEL_BUDGET, NodeSpec

# OpenCV's own bound on a picture it decodes (read once, when cv2 loads: set before any node
# imports it): the same pixel budget the header check of nodes/lib/input_files.py applies, for the
# formats Pillow cannot size (Radiance .hdr and the like). A user's own setting wins.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(PIXEL_BUDGET))


def _discover() -> dict[str, NodeSpec]:
    found: dict[str, NodeSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg:  # nodes/contract/ and the helper libraries: not node kinds
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, NodeSpec):
            if spec.type in found:
                raise RuntimeError(f"node type {spec.type!r} declared twice")
            found[spec.type] = spec
    return found


REGISTRY: dict[str, NodeSpec] = _discover()
