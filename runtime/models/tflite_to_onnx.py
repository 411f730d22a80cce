"""Convert a float TFLite model (MediaPipe selfie segmentation and the like) to ONNX.

Handles exactly the operators those models use: DEQUANTIZE (float16 weights, folded into
float32 initializers), CONV_2D, DEPTHWISE_CONV_2D, RELU, HARD_SWISH, ADD, MUL, MEAN,
AVERAGE_POOL_2D, LOGISTIC, RESIZE_BILINEAR and MediaPipe's custom
`Convolution2DTransposeBias`. Anything else is refused with an error naming the operator
and its index.

Layout: the model keeps its NHWC interface (e.g. input 1x144x256x3, output 1x144x256x1);
one Transpose at each boundary, and the body runs NCHW, as ONNX Conv wants. Weights are
transposed at conversion time. TFLite SAME padding becomes explicit (asymmetric) pads.

    python -m fusegraph.runtime.models.tflite_to_onnx model.tflite model.onnx
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusegraph.runtime.models.tflite_reader import (
    Operator,
    TfliteError,
    TfliteModel,
    read_tflite,
    transpose_conv_bias_options,
)

OPSET = 17
CONVERTER_VERSION = "1"  # bump when the produced graph changes

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}  # where an NHWC axis lives in NCHW

# tflite.Padding and tflite.ActivationFunctionType values
SAME, VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6, ACT_TANH = 0, 1, 2, 3, 4


class UnsupportedOpError(TfliteError):
    """An operator (or an option of one) the converter does not handle."""

    def __init__(self, op: Operator, detail: str = ""):
        self.op_name = op.label
        self.op_index = op.index
        if detail:
            text = f"operator #{op.index} {op.label}: {detail}"
        else:
            text = (f"operator #{op.index} {op.label} is not supported by the TFLite->ONNX converter "
                    f"(supported: {', '.join(supported_ops())})")
        super().__init__(text)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TF SAME padding for one axis: output ceil(size/stride); the odd pixel goes at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def transpose_conv_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Padding of MediaPipe's Convolution2DTransposeBias (transpose_conv_bias.cc), SAME mode.

    Output = stride*(size-1) + kernel - total; the kernel writes from `total // 2` before.
    """
    total = max(0, kernel - (size - 1) % stride - 1)
    return total // 2, total - total // 2


class Converter:
    """One conversion: walks the TFLite operators in order and emits ONNX nodes."""

    def __init__(self, model: TfliteModel):
        self.m = model
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        # constants by tensor index (weights, axes, sizes; float16 ones become float32 via DEQUANTIZE)
        self.const: dict[int, np.ndarray] = {t.index: t.data for t in model.tensors if t.data is not None}
        self.value: dict[int, str] = {}  # tensor index -> ONNX value name (activations)
        self.nchw: set[int] = set()  # activations whose ONNX value is NCHW (4-D ones)
        self.used: set[str] = set()

    # ---- names, constants, nodes -------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def initializer(self, array: np.ndarray, base: str) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, op_type: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def shape(self, idx: int) -> tuple[int, ...]:
        return self.m.tensors[idx].shape

    def tname(self, idx: int) -> str:
        return self.m.tensors[idx].name or f"t{idx}"

    def constant(self, op: Operator, idx: int, what: str) -> np.ndarray:
        if idx not in self.const:
            raise UnsupportedOpError(op, f"{what} must be a constant tensor")
        return self.const[idx]

    def image(self, op: Operator, idx: int) -> str:
        """An NCHW 4-D activation input."""
        if idx not in self.nchw:
            raise UnsupportedOpError(op, f"input tensor {idx} '{self.tname(idx)}' is not a 4-D image tensor")
        return self.value[idx]

    def operand(self, op: Operator, idx: int, nchw: bool) -> str:
        """Any input: an activation, or a constant brought to the layout of the other operands."""
        if idx in self.value:
            if nchw and idx not in self.nchw:
                raise UnsupportedOpError(op, f"cannot broadcast tensor {idx} '{self.tname(idx)}' "
                                        "against a 4-D image tensor")
            return self.value[idx]
        array = self.constant(op, idx, f"input {idx}")
        if array.dtype == np.float16:
            array = array.astype(np.float32)
        if nchw and array.ndim:
            if array.ndim > 4:
                raise UnsupportedOpError(op, f"constant of rank {array.ndim} against a 4-D tensor")
            array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(TO_NCHW)
        return self.initializer(array, self.tname(idx))

    def output(self, op: Operator, value: str, activation: int = ACT_NONE, nchw: bool = True) -> None:
        """Record the ONNX value of the operator's output, after its fused activation."""
        out = op.outputs[0]
        base = self.tname(out)
        if activation == ACT_RELU:
            value = self.emit("Relu", [value], base)
        elif activation in (ACT_RELU6, ACT_RELU_N1_TO_1):
            lo, hi = (0.0, 6.0) if activation == ACT_RELU6 else (-1.0, 1.0)
            value = self.emit("Clip", [value, self.initializer(np.float32(lo), f"{base}/min"),
                                       self.initializer(np.float32(hi), f"{base}/max")], base)
        elif activation == ACT_TANH:
            value = self.emit("Tanh", [value], base)
        elif activation != ACT_NONE:
            raise UnsupportedOpError(op, f"fused activation {activation} is not supported")
        self.value[out] = value
        if nchw:
            self.nchw.add(out)

    # ---- the walk ----------------------------------------------------------------------
    def convert_op(self, op: Operator) -> None:
        """Dispatch one operator to its handler; an operator without one is a clear error."""
        fn = HANDLERS.get(f"CUSTOM:{op.custom_code}" if op.op == "CUSTOM" else op.op)
        if fn is None:
            raise UnsupportedOpError(op)
        fn(self, op)

    def build(self, graph_name: str = "model") -> onnx.GraphProto:
        inputs, outputs = [], []
        for idx in self.m.inputs:
            t = self.m.tensors[idx]
            if t.type_name != "FLOAT32":
                raise TfliteError(f"input '{t.name}' is {t.type_name}; only float32 models are supported")
            self.used.add(t.name)
            inputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)))
            if len(t.shape) == 4:
                self.value[idx] = self.emit("Transpose", [t.name], f"{t.name}/nchw", perm=TO_NCHW)
                self.nchw.add(idx)
            else:
                self.value[idx] = t.name
        for idx in self.m.outputs:  # keep the graph's output names free for the final nodes
            self.used.add(self.m.tensors[idx].name)

        for op in self.m.operators:
            self.convert_op(op)

        for idx in self.m.outputs:
            t = self.m.tensors[idx]
            if idx not in self.value:
                raise TfliteError(f"output '{t.name}' is not computed by any operator")
            src = self.value[idx]
            perm = TO_NHWC if idx in self.nchw else None
            if perm:
                self.nodes.append(helper.make_node("Transpose", [src], [t.name], name=t.name, perm=perm))
            else:
                self.nodes.append(helper.make_node("Identity", [src], [t.name], name=t.name))
            outputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)))
        return helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)

    def check_shapes(self, model: onnx.ModelProto) -> None:
        """Every converted activation must have the TFLite tensor's shape (in its layout)."""
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        shapes = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = vi.type.tensor_type.shape.dim
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
        for idx, name in self.value.items():
            want = self.shape(idx)
            if idx in self.nchw:
                want = tuple(want[i] for i in TO_NCHW)
            got = shapes.get(name)
            if got is not None and want and got != want:
                raise TfliteError(f"conversion error: tensor {idx} '{self.tname(idx)}' has shape {got} "
                                  f"in ONNX, {want} expected")


# ---- operators ---------------------------------------------------------------------------
def _dequantize(c: Converter, op: Operator) -> None:
    src = c.m.tensors[op.inputs[0]]
    if src.type_name != "FLOAT16" or src.quantized:
        raise UnsupportedOpError(op, f"only float16 -> float32 is supported (input is {src.type_name}"
                                f"{', quantised' if src.quantized else ''})")
    if op.inputs[0] in c.const:  # fp16 weights: fold
        c.const[op.outputs[0]] = c.const[op.inputs[0]].astype(np.float32)
    else:
        c.output(op, c.emit("Cast", [c.operand(op, op.inputs[0], False)], c.tname(op.outputs[0]),
                            to=TensorProto.FLOAT), nchw=op.inputs[0] in c.nchw)


def _bias(c: Converter, op: Operator, channels: int) -> str:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = c.constant(op, op.inputs[2], "bias").astype(np.float32).reshape(-1)
    else:
        b = np.zeros(channels, np.float32)
    return c.initializer(b, c.tname(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else "bias")


def _conv_pads(c: Converter, op: Operator, in_idx: int, kh: int, kw: int, o) -> list[int]:
    _, h, w, _ = c.shape(in_idx)
    if o.Padding() == VALID:
        return [0, 0, 0, 0]
    if o.Padding() != SAME:
        raise UnsupportedOpError(op, f"padding {o.Padding()} is not supported")
    top, bottom = same_pads(h, kh, o.StrideH(), o.DilationHFactor())
    left, right = same_pads(w, kw, o.StrideW(), o.DilationWFactor())
    return [top, left, bottom, right]


def _conv_2d(c: Converter, op: Operator) -> None:
    o = op.options
    x = c.image(op, op.inputs[0])
    w = c.constant(op, op.inputs[1], "weights").astype(np.float32)  # O, KH, KW, I
    out_ch, kh, kw, per_group = w.shape
    in_ch = c.shape(op.inputs[0])[3]
    if in_ch % per_group:
        raise UnsupportedOpError(op, f"{in_ch} input channels do not divide into groups of {per_group}")
    y = c.emit("Conv", [x, c.initializer(w.transpose(0, 3, 1, 2), c.tname(op.inputs[1])), _bias(c, op, out_ch)],
               c.tname(op.outputs[0]) + "/conv",
               kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()],
               dilations=[o.DilationHFactor(), o.DilationWFactor()],
               pads=_conv_pads(c, op, op.inputs[0], kh, kw, o), group=in_ch // per_group)
    c.output(op, y, o.FusedActivationFunction())


def _depthwise_conv_2d(c: Converter, op: Operator) -> None:
    o = op.options
    x = c.image(op, op.inputs[0])
    w = c.constant(op, op.inputs[1], "weights").astype(np.float32)  # 1, KH, KW, C*multiplier
    _, kh, kw, out_ch = w.shape
    in_ch = c.shape(op.inputs[0])[3]
    if out_ch % in_ch:
        raise UnsupportedOpError(op, f"{out_ch} output channels are not a multiple of {in_ch} input channels")
    # output channel ic*multiplier + m reads input channel ic: ONNX groups in the same order
    weights = w[0].transpose(2, 0, 1)[:, None]  # C*multiplier, 1, KH, KW
    y = c.emit("Conv", [x, c.initializer(weights, c.tname(op.inputs[1])), _bias(c, op, out_ch)],
               c.tname(op.outputs[0]) + "/conv",
               kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()],
               dilations=[o.DilationHFactor(), o.DilationWFactor()],
               pads=_conv_pads(c, op, op.inputs[0], kh, kw, o), group=in_ch)
    c.output(op, y, o.FusedActivationFunction())


def _transpose_conv_bias(c: Converter, op: Operator) -> None:
    """MediaPipe's custom op: inputs (x, weights OHWI, bias); see transpose_conv_bias.cc."""
    padding, stride_w, stride_h = transpose_conv_bias_options(op.custom_options)
    x = c.image(op, op.inputs[0])
    w = c.constant(op, op.inputs[1], "weights").astype(np.float32)  # O, KH, KW, I
    out_ch, kh, kw, _ = w.shape
    _, h, wd, _ = c.shape(op.inputs[0])
    if padding == "SAME":
        top, bottom = transpose_conv_same_pads(h, kh, stride_h)
        left, right = transpose_conv_same_pads(wd, kw, stride_w)
    else:
        top = bottom = left = right = 0
    # ConvTranspose: out[i*stride + k - pad_begin] += x[i] * W[in, out, k]: the same scatter
    y = c.emit("ConvTranspose", [x, c.initializer(w.transpose(3, 0, 1, 2), c.tname(op.inputs[1])),
                                 _bias(c, op, out_ch)],
               c.tname(op.outputs[0]), kernel_shape=[kh, kw], strides=[stride_h, stride_w],
               pads=[top, left, bottom, right])
    c.output(op, y)


def _unary(onnx_op: str) -> Callable[[Converter, Operator], None]:
    def convert(c: Converter, op: Operator) -> None:
        idx = op.inputs[0]
        c.output(op, c.emit(onnx_op, [c.operand(op, idx, False)], c.tname(op.outputs[0])), nchw=idx in c.nchw)
    return convert


def _binary(onnx_op: str) -> Callable[[Converter, Operator], None]:
    def convert(c: Converter, op: Operator) -> None:
        nchw = any(i in c.nchw for i in op.inputs)
        a, b = (c.operand(op, i, nchw) for i in op.inputs[:2])
        act = op.options.FusedActivationFunction() if op.options is not None else ACT_NONE
        c.output(op, c.emit(onnx_op, [a, b], c.tname(op.outputs[0]) + ("/" + onnx_op.lower() if act else "")),
                 act, nchw=nchw)
    return convert


def _mean(c: Converter, op: Operator) -> None:
    idx = op.inputs[0]
    rank = len(c.shape(idx))
    axes = sorted({int(a) % rank for a in np.atleast_1d(c.constant(op, op.inputs[1], "axes"))})
    keep = bool(op.options.KeepDims()) if op.options is not None else False
    nchw = idx in c.nchw
    if nchw:
        # without keep_dims the NCHW result must come out in NHWC order: C gone, or H and W both gone
        if not keep and 3 not in axes and not {1, 2} <= set(axes):
            raise UnsupportedOpError(op, f"MEAN over NHWC axes {axes} without keep_dims")
        axes = sorted(NHWC_TO_NCHW_AXIS[a] for a in axes)
    y = c.emit("ReduceMean", [c.operand(op, idx, False)],
               c.tname(op.outputs[0]), axes=axes, keepdims=int(keep))
    c.output(op, y, nchw=nchw and keep)


def _average_pool_2d(c: Converter, op: Operator) -> None:
    o = op.options
    x = c.image(op, op.inputs[0])
    kh, kw = o.FilterHeight(), o.FilterWidth()
    _, h, w, _ = c.shape(op.inputs[0])
    if o.Padding() == SAME:
        top, bottom = same_pads(h, kh, o.StrideH())
        left, right = same_pads(w, kw, o.StrideW())
        pads = [top, left, bottom, right]
    else:
        pads = [0, 0, 0, 0]
    # TFLite averages over the in-bounds taps only: count_include_pad=0
    y = c.emit("AveragePool", [x], c.tname(op.outputs[0]) + "/pool", kernel_shape=[kh, kw],
               strides=[o.StrideH(), o.StrideW()], pads=pads, count_include_pad=0)
    c.output(op, y, o.FusedActivationFunction())


def _resize_bilinear(c: Converter, op: Operator) -> None:
    o = op.options
    x = c.image(op, op.inputs[0])
    new_h, new_w = (int(v) for v in c.constant(op, op.inputs[1], "size"))
    n, _, _, ch = c.shape(op.inputs[0])
    align, half = bool(o.AlignCorners()), bool(o.HalfPixelCenters())
    if align and half:
        raise UnsupportedOpError(op, "align_corners and half_pixel_centers are both set")
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    sizes = c.initializer(np.array([n, ch, new_h, new_w], np.int64), c.tname(op.inputs[1]))
    y = c.emit("Resize", [x, "", "", sizes], c.tname(op.outputs[0]), mode="linear",
               coordinate_transformation_mode=mode)
    c.output(op, y)


HANDLERS: dict[str, Callable[[Converter, Operator], None]] = {
    "DEQUANTIZE": _dequantize,
    "CONV_2D": _conv_2d,
    "DEPTHWISE_CONV_2D": _depthwise_conv_2d,
    "RELU": _unary("Relu"),
    "HARD_SWISH": _unary("HardSwish"),  # x * relu6(x + 3) / 6, as ONNX defines it
    "LOGISTIC": _unary("Sigmoid"),
    "ADD": _binary("Add"),
    "MUL": _binary("Mul"),
    "MEAN": _mean,
    "AVERAGE_POOL_2D": _average_pool_2d,
    "RESIZE_BILINEAR": _resize_bilinear,
    "CUSTOM:Convolution2DTransposeBias": _transpose_conv_bias,
}


def supported_ops() -> list[str]:
    return [k.replace("CUSTOM:", "CUSTOM ") for k in HANDLERS]


def convert(buf: bytes, *, graph_name: str = "model", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """TFLite flatbuffer bytes -> a checked ONNX model (opset 17). Raises TfliteError."""
    tfl = read_tflite(buf)
    conv = Converter(tfl)
    graph = conv.build(graph_name)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fusegraph", producer_version=CONVERTER_VERSION)
    model.ir_version = 8  # onnxruntime >= 1.14 reads it; opset 17 needs at least 8
    if tfl.description:
        model.doc_string = f"converted from TFLite ({tfl.description})"
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise TfliteError(f"the converted ONNX model is invalid: {str(exc).splitlines()[0]}") from exc
    conv.check_shapes(model)
    return model


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m fusegraph.runtime.models.tflite_to_onnx IN.tflite OUT.onnx", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as f:
            model = convert(f.read())
    except (OSError, TfliteError) as exc:
        print(f"tflite_to_onnx: {exc}", file=sys.stderr)
        return 1
    onnx.save(model, args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
