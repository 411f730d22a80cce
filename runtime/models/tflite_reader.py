"""Read a .tflite flatbuffer into plain Python objects (tensors, operators, constant data).

Uses the `tflite` package (the schema's generated flatbuffer bindings). Only the first
subgraph is read; models with control flow (several subgraphs) are refused.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tflite


class TfliteError(Exception):
    """A model file the converter cannot read or convert; the message names the problem."""


_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT16: np.int16,
    tflite.TensorType.BOOL: np.bool_,
}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type_name: str  # "FLOAT32", "FLOAT16", ...
    data: np.ndarray | None  # constant contents, None for activations
    quantized: bool  # has scale/zero-point quantisation parameters


@dataclass
class Operator:
    index: int  # position in the execution order (used in error messages)
    op: str  # builtin name ("CONV_2D", ...) or "CUSTOM"
    custom_code: str | None
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: Any = None  # the builtin options table (e.g. tflite.Conv2DOptions), or None
    custom_options: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.op} '{self.custom_code}'" if self.op == "CUSTOM" else self.op


@dataclass
class TfliteModel:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    op_counts: dict[str, int] = field(default_factory=dict)


def _builtin_options(raw: tflite.Operator) -> Any:
    kind = raw.BuiltinOptionsType()
    if not kind:
        return None
    cls = getattr(tflite, _OPTION_CLASSES[kind], None)
    table = raw.BuiltinOptions()
    if cls is None or table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def read_tflite(buf: bytes) -> TfliteModel:
    """Parse the flatbuffer; raises TfliteError for files that are not TFLite models."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TfliteError("not a TensorFlow Lite model (no 'TFL3' identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() != 1:
            raise TfliteError(f"expected one subgraph, found {model.SubgraphsLength()}")
        graph = model.Subgraphs(0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            # builtin_code replaced the int8 deprecated_builtin_code; old files fill only the latter.
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = oc.CustomCode()
            codes.append((_OP_NAMES.get(code, f"BUILTIN_{code}"), custom.decode() if custom else None))

        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            data = None
            buffer = model.Buffers(t.Buffer())
            if buffer is not None and buffer.DataLength():
                dtype = _DTYPES.get(t.Type())
                if dtype is None:
                    raise TfliteError(f"tensor {i} '{t.Name().decode()}': unsupported constant type "
                                      f"{_TYPE_NAMES.get(t.Type(), t.Type())}")
                data = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape).copy()
            q = t.Quantization()
            quantized = q is not None and (q.ScaleLength() > 0 or q.ZeroPointLength() > 0)
            tensors.append(Tensor(i, t.Name().decode(), shape, _TYPE_NAMES.get(t.Type(), str(t.Type())),
                                  data, quantized))

        operators = []
        counts: dict[str, int] = {}
        for i in range(graph.OperatorsLength()):
            raw = graph.Operators(i)
            name, custom = codes[raw.OpcodeIndex()]
            op = Operator(
                index=i, op=name, custom_code=custom,
                inputs=[int(x) for x in raw.InputsAsNumpy()] if raw.InputsLength() else [],
                outputs=[int(x) for x in raw.OutputsAsNumpy()] if raw.OutputsLength() else [],
                options=_builtin_options(raw),
                custom_options=raw.CustomOptionsAsNumpy().tobytes() if raw.CustomOptionsLength() else b"",
            )
            counts[op.label] = counts.get(op.label, 0) + 1
            operators.append(op)
        description = model.Description().decode(errors="replace") if model.Description() else ""
        return TfliteModel(tensors, operators,
                           [int(x) for x in graph.InputsAsNumpy()], [int(x) for x in graph.OutputsAsNumpy()],
                           description, counts)
    except TfliteError:
        raise
    except Exception as exc:  # a corrupt flatbuffer fails deep inside the bindings
        raise TfliteError(f"cannot read the TensorFlow Lite model ({type(exc).__name__}: {exc})") from exc


def transpose_conv_bias_options(raw: bytes) -> tuple[str, int, int]:
    """MediaPipe's `Convolution2DTransposeBias` custom options: a raw TfLiteTransposeConvParams.

    The C struct starts {TfLitePadding padding; int stride_width; int stride_height; ...} as
    little-endian int32 (padding: 1 = SAME, 2 = VALID). Returns (padding, stride_w, stride_h).
    """
    if len(raw) < 12:
        raise TfliteError(f"Convolution2DTransposeBias: {len(raw)} bytes of custom options, expected at least 12")
    padding, stride_w, stride_h = struct.unpack_from("<iii", raw, 0)
    names = {1: "SAME", 2: "VALID"}
    if padding not in names or stride_w < 1 or stride_h < 1:
        raise TfliteError(f"Convolution2DTransposeBias: bad options padding={padding} "
                          f"stride=({stride_w}, {stride_h})")
    return names[padding], stride_w, stride_h
