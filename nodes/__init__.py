"""Node kinds: every module in this package that defines SPEC is one kind."""
from __future__ import annotations

import importlib
import pkgutil

from fusegraph.nodes.spec import NodeSpec


def _discover() -> dict[str, NodeSpec]:
    found: dict[str, NodeSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, NodeSpec):
            if spec.type in found:
                raise RuntimeError(f"node type {spec.type!r} declared twice")
            found[spec.type] = spec
    return found


REGISTRY: dict[str, NodeSpec] = _discover()
