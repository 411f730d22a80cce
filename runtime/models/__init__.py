"""Neural-network models: known names, the user's model cache, fetching and conversion.

    from fusegraph.runtime.models import resolve, KNOWN
    path = resolve("selfie")        # cached .onnx, or NodeError: run `fusegraph models fetch selfie`
    info = KNOWN["selfie"]          # input size (w, h), NHWC, RGB in [0,1], output already sigmoid

Importing this package is cheap (no onnx, no tflite): the converter loads those only when
called.
"""
from __future__ import annotations

from fusegraph.nodes.lib.model_registry import (
    ARCHIVES,
    ENV_DIR,
    KNOWN,
    ArchiveModel,
    ModelInfo,
    WheelSource,
    archive_path,
    cached_path,
    is_cached,
    models_dir,
    resolve,
    source_path,
)
from fusegraph.runtime.models.download import fetch  # stdlib only at import: onnx and tflite load when converting


def add_models_parser(sub):
    """Add `fusegraph models {list,fetch}` to the CLI's subparsers."""
    from fusegraph.runtime.models.cli import add_models_parser as _add

    return _add(sub)


__all__ = ["ARCHIVES", "ArchiveModel", "ENV_DIR", "KNOWN", "ModelInfo", "archive_path", "WheelSource", "add_models_parser", "cached_path", "fetch",
           "is_cached", "models_dir", "resolve", "source_path"]
