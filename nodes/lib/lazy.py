"""Heavy libraries bound lazily: `from fusegraph.nodes.lib.lazy import cv2` gives a stand-in
that imports OpenCV on its first attribute use, so finding the node kinds (`fusegraph schema`,
`validate`) does not load OpenCV, PyAV or onnxruntime (about a second on a busy machine).

(importlib.util.LazyLoader cannot do this on Python 3.11: an `import` statement of a module
already in sys.modules reads its __spec__, which loads it.)
"""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


cv2: Any = LazyModule("cv2")
av: Any = LazyModule("av")
onnxruntime: Any = LazyModule("onnxruntime")
