"""onnxruntime sessions for the neural_net node: opened once per model file and options, shapes checked."""
from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np
from fusegraph.nodes.lib.lazy import onnxruntime as ort

from fusegraph.nodes.lib.model_registry import KNOWN, ModelInfo, resolve
from fusegraph.nodes.contract import NodeError

PREFERRED = ("CUDAExecutionProvider", "ROCMExecutionProvider", "CoreMLExecutionProvider",
             "DmlExecutionProvider", "CPUExecutionProvider")


def providers() -> list[str]:
    """Available execution providers, in our order of preference."""
    have = ort.get_available_providers()
    return [p for p in PREFERRED if p in have] or have


class Model:
    def __init__(self, name: str, path: str, threads: int):
        self.name, self.path = name, path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between runs: the GPU passes and the encoder want those cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        known = KNOWN.get(name.strip())
        refetch = f"; run `fusegraph models fetch --force {known.name}`" if known else ""
        try:
            self.session = ort.InferenceSession(path, opts, providers=providers())
        except Exception as exc:  # onnxruntime raises its own types for bad files
            raise NodeError(f"model '{name}' ({path}) cannot be loaded: {str(exc).splitlines()[0]}{refetch}") from None
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        if known:  # a cached file is the model its name says, or it is replaced, not run
            if why := self._not_as_fetched(known):
                raise NodeError(f"cached model '{name}' ({path}) is not the one fetched as '{name}': {why}{refetch}")
        if not self.inputs or self.inputs[0].type != "tensor(float)":
            got = self.inputs[0].type if self.inputs else "nothing"
            raise NodeError(f"model '{name}' takes {got} as input; the neural_net node feeds a float32 image "
                            f"tensor (tensor(float))")
        self.lock = threading.Lock()

    def _not_as_fetched(self, info: ModelInfo) -> str | None:
        """Why this session is not the model `fusegraph models fetch` made for `info`, or None:
        its recorded source hash, then its input and output shapes."""
        recorded = self.session.get_modelmeta().custom_metadata_map.get("source_sha256")
        if recorded != info.source.sha256:
            return "its recorded source hash differs" if recorded else "it records no source hash"
        shapes = (tuple(self.inputs[0].shape) if self.inputs else None,
                  tuple(self.outputs[info.output_index].shape) if len(self.outputs) > info.output_index else None)
        if shapes != (info.input_shape, info.output_shape):
            return f"its input/output shapes are {shapes}, expected {(info.input_shape, info.output_shape)}"
        return None

    def _shape(self, shape) -> str:
        return "x".join(str(d) if isinstance(d, int) else "?" for d in shape)

    def input_size(self, layout: str, width: int, height: int) -> tuple[int, int]:
        shape = self.inputs[0].shape
        if len(shape) != 4:
            raise NodeError(f"model '{self.name}' input is {self._shape(shape)}; a 4-d image tensor is needed")
        c, h, w = (shape[3], shape[1], shape[2]) if layout == "NHWC" else (shape[1], shape[2], shape[3])
        if isinstance(c, int) and c != 3:
            raise NodeError(f"model '{self.name}' input {self._shape(shape)} has {c} channels in {layout} "
                            f"layout; 3 are needed (is the layout right?)")
        size = []
        for name, given, dim in (("width", width, w), ("height", height, h)):
            if isinstance(dim, int) and dim > 0:
                if given and given != dim:
                    raise NodeError(f"model '{self.name}' takes input {self._shape(shape)} ({layout}); "
                                    f"input_{name} {given} does not fit")
                size.append(dim)
            elif given:
                size.append(given)
            else:
                raise NodeError(f"model '{self.name}' has a free input {name} ({self._shape(shape)}): "
                                f"set input_{name}")
        return size[0], size[1]

    def output_size(self, layout: str, index: int, channel: int, in_size: tuple[int, int]) -> tuple[int, int]:
        if index >= len(self.outputs):
            raise NodeError(f"model '{self.name}' has {len(self.outputs)} output(s); output {index} does not exist")
        shape = self.outputs[index].shape
        if len(shape) != 4:
            raise NodeError(f"model '{self.name}' output {index} is {self._shape(shape)}; a 4-d map is needed")
        c, h, w = (shape[3], shape[1], shape[2]) if layout == "NHWC" else (shape[1], shape[2], shape[3])
        if isinstance(c, int) and channel >= c:
            raise NodeError(f"model '{self.name}' output {index} ({self._shape(shape)}) has {c} channel(s); "
                            f"channel {channel} does not exist")
        w = w if isinstance(w, int) and w > 0 else in_size[0]
        h = h if isinstance(h, int) and h > 0 else in_size[1]
        return w, h

    def run(self, x: np.ndarray, index: int) -> np.ndarray:
        with self.lock:  # one inference at a time per session
            return self.session.run([self.outputs[index].name], {self.inputs[0].name: x})[0]


def open_model(name: str, threads: int = 1) -> Model:
    path = str(resolve(name))
    return _open(name, path, os.path.getmtime(path), threads)


@lru_cache(maxsize=4)
def _open(name: str, path: str, mtime: float, threads: int) -> Model:
    return Model(name, path, threads)
