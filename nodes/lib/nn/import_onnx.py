"""ONNX -> the compiler's IR: shapes fixed and inferred, constants folded, BatchNormalization
folded into the Conv before it, the boundary transposes (NHWC in and out) absorbed.

Every op or attribute outside what the GPU passes implement is a NetError naming the model, the
ONNX node and the op.
"""
from __future__ import annotations

import numpy as np

from fusegraph.nodes.lib.nn.ir import Net, NetError, Op, Tensor

UNARY = {"Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh", "Identity", "Dropout"}
BINARY = {"Add": "+", "Mul": "*", "Sub": "-", "Div": "/"}
SUPPORTED = sorted({"Conv", "ConvTranspose", "BatchNormalization", "GlobalAveragePool", "ReduceMean",
                    "AveragePool", "MaxPool", "Resize", "Upsample", "Concat", "Softmax", "Pad", "Transpose",
                    "Constant", "Shape"} | UNARY | set(BINARY))
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


class _Importer:
    def __init__(self, model, name: str):
        self.model, self.name = model, name
        self.const: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.net_consts: dict[str, np.ndarray] = {}

    def fail(self, node, detail: str) -> NetError:
        return NetError(f"model '{self.name}': ONNX node '{node.name or node.output[0]}' ({node.op_type}): {detail}")

    def attrs(self, node) -> dict:
        from onnx import helper
        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out


def _fix_input(model, name: str, size: tuple[int, int] | None) -> str:
    """Set the image input's free dimensions (batch 1; height and width from `size`), so shapes infer."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise NetError(f"model '{name}' has {len(inputs)} inputs; the gl backend runs models of one image input")
    inp = inputs[0]
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise NetError(f"model '{name}': input '{inp.name}' is {len(dims)}-d; a 4-d image tensor is needed")
    values = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    nhwc = values[3] == 3 or (values[3] in (0,) and values[1] not in (0, 3))
    hw_axes = (1, 2) if nhwc else (2, 3)
    if values[0] not in (0, 1):
        raise NetError(f"model '{name}': input '{inp.name}' has batch {values[0]}; the gl backend runs batch 1")
    for axis, given in zip(hw_axes, (size[1], size[0]) if size else (0, 0)):
        if values[axis] == 0:
            if not given:
                raise NetError(f"model '{name}': input '{inp.name}' has a free {'height' if axis == hw_axes[0] else 'width'}"
                               " the node cannot fix: set input_width and input_height")
            values[axis] = given
    values[0] = 1
    for d, v in zip(dims, values):
        d.dim_value = v
    return inp.name


def load(path: str, name: str, size: tuple[int, int] | None = None) -> Net:
    import onnx
    try:
        model = onnx.load(path)
    except Exception as exc:
        raise NetError(f"model '{name}' ({path}) cannot be read: {str(exc).splitlines()[0]}") from None
    return from_model(model, name, size)


def from_model(model, name: str, size: tuple[int, int] | None = None) -> Net:
    import onnx
    from onnx import numpy_helper, shape_inference
    model = onnx.ModelProto.FromString(model.SerializeToString())  # our edits stay ours
    in_name = _fix_input(model, name, size)
    try:
        model = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        raise NetError(f"model '{name}': shapes cannot be inferred: {str(exc).splitlines()[0]}") from None
    imp = _Importer(model, name)
    g = model.graph
    for init in g.initializer:
        imp.const[init.name] = numpy_helper.to_array(init)
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            imp.shapes[vi.name] = tuple(d.dim_value for d in dims)
    nodes = _fold_constants(imp, list(g.node))
    return _build(imp, nodes, in_name, [o.name for o in g.output])


def _fold_constants(imp: _Importer, nodes: list) -> list:
    """Evaluate every node whose inputs are all constant (onnx's reference evaluator), and Shape
    of a tensor whose shape is known; keep the rest."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    kept = []
    for node in nodes:
        if node.op_type == "Constant":
            a = imp.attrs(node)
            if "value" in a:
                imp.const[node.output[0]] = numpy_helper.to_array(a["value"])
                continue
        if node.op_type == "Shape" and node.input[0] in imp.shapes and not imp.attrs(node):
            imp.const[node.output[0]] = np.array(imp.shapes[node.input[0]], dtype=np.int64)
            continue
        ins = [i for i in node.input if i]
        if ins and all(i in imp.const for i in ins) and node.op_type not in ("Shape",):
            graph = helper.make_graph(
                [node], "fold",
                [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(imp.const[i].dtype), imp.const[i].shape)
                 for i in ins],
                [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
            try:
                outs = ReferenceEvaluator(helper.make_model(graph, opset_imports=imp.model.opset_import)).run(
                    None, {i: imp.const[i] for i in ins})
            except Exception as exc:
                raise imp.fail(node, f"constant folding failed: {str(exc).splitlines()[0]}") from None
            for o, v in zip([o for o in node.output if o], outs):
                imp.const[o] = np.asarray(v)
            continue
        kept.append(node)
    return kept


def _pads(imp: _Importer, node, a: dict, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from `pads` or `auto_pad`."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        p = list(a.get("pads", [0, 0, 0, 0])) if auto == "NOTSET" else [0, 0, 0, 0]
        if len(p) != 4:
            raise imp.fail(node, f"pads {p}: only 2-d (4 values) are supported")
        return p[0], p[1], p[2], p[3]
    out = []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        out.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _build(imp: _Importer, nodes: list, in_name: str, out_names: list[str]) -> Net:
    name = imp.name
    uses: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            uses.setdefault(i, []).append(n)
    alias: dict[str, str] = {}  # ONNX name -> IR tensor name (through absorbed nodes)
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    producer: dict[str, Op] = {}

    input_layout = "NCHW"
    first = uses.get(in_name, [])
    if len(first) == 1 and first[0].op_type == "Transpose" and list(imp.attrs(first[0]).get("perm", [])) == TO_NCHW:
        input_layout = "NHWC"
        alias[first[0].output[0]] = in_name
        absorbed = {id(first[0])}
        shape = imp.shapes[in_name]
        imp.shapes[in_name] = (shape[0], shape[3], shape[1], shape[2])
    else:
        absorbed = set()
    if in_name not in imp.shapes:
        raise NetError(f"model '{name}': the input's shape is unknown")
    out_layouts = []
    out_ir = []
    made_by = {o: n for n in nodes for o in n.output}
    for o in out_names:
        n = made_by.get(o)
        if n is not None and n.op_type == "Transpose" and list(imp.attrs(n).get("perm", [])) == TO_NHWC \
                and len(uses.get(n.input[0], [])) == 1:
            absorbed.add(id(n))
            out_ir.append(n.input[0])
            out_layouts.append("NHWC")
        else:
            out_ir.append(o)
            out_layouts.append("NCHW")

    def tensor(onnx_name: str, node) -> Tensor:
        key = alias.get(onnx_name, onnx_name)
        if key in tensors:
            return tensors[key]
        if key in imp.const:
            raise imp.fail(node, f"a constant tensor '{onnx_name}' as this op's input is not supported")
        shape = imp.shapes.get(key)
        if shape is None:
            raise imp.fail(node, f"the shape of '{onnx_name}' is unknown (a dynamic shape the node cannot fix)")
        if len(shape) != 4 or shape[0] != 1:
            raise imp.fail(node, f"tensor '{onnx_name}' is {list(shape)}; the gl backend handles 1xCxHxW tensors")
        t = Tensor(key, shape[1], shape[2], shape[3])
        tensors[key] = t
        return t

    def operand(onnx_name: str, node, channels: int) -> str:
        """A tensor, or a constant broadcast over channels (scalar or one value per channel)."""
        if onnx_name in imp.const:
            v = np.asarray(imp.const[onnx_name], dtype=np.float32)
            if v.size == 1:
                flat = v.reshape(1)
            elif v.size == channels and (v.ndim == 1 or (v.ndim >= 3 and v.shape[-2:] == (1, 1))
                                         or (v.ndim == 2 and v.shape[-1] == 1)):
                flat = v.reshape(channels)
            else:
                raise imp.fail(node, f"constant operand '{onnx_name}' of shape {list(v.shape)}: only scalars and "
                                     "one value per channel broadcast")
            key = f"{node.name or node.output[0]}/{onnx_name}"
            imp.net_consts[key] = flat
            return key
        t = tensor(onnx_name, node)
        return t.name

    def const_of(node, idx: int, what: str) -> np.ndarray | None:
        if len(node.input) <= idx or not node.input[idx]:
            return None
        if node.input[idx] not in imp.const:
            raise imp.fail(node, f"its {what} must be constant")
        return np.asarray(imp.const[node.input[idx]])

    def emit(kind: str, node, inputs: list[str], **attrs) -> Op:
        out = node.output[0]
        tensor(out, node)
        op = Op(kind, inputs, out, attrs, [node.name or out], node.op_type)
        ops.append(op)
        producer[out] = op
        return op

    def global_mean(node) -> None:
        """Mean over H and W in two passes, rows then the column of row means: no invocation
        loops over a whole picture (software GL ends loops past 65535 iterations; a real GPU
        wants the parallelism)."""
        x = tensor(node.input[0], node)
        src = x.name
        if x.width > 1 and x.height > 1:
            rows = f"{node.output[0]}/rows"
            tensors[rows] = Tensor(rows, x.channels, x.height, 1)
            ops.append(Op("pool", [x.name], rows, dict(mode="avg", kernel=[1, x.width], strides=[1, x.width],
                                                        pads=(0, 0, 0, 0), count_pad=False),
                          [node.name or node.output[0]], node.op_type))
            src = rows
        emit("global_pool", node, [src])

    for node in nodes:
        if id(node) in absorbed:
            continue
        op_type = node.op_type
        a = imp.attrs(node)
        if op_type not in SUPPORTED:
            raise imp.fail(node, f"op {op_type} is not supported by the gl backend (supported: {', '.join(SUPPORTED)})")
        if op_type in ("Identity", "Dropout"):
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            continue
        if op_type == "Transpose":
            raise imp.fail(node, f"a Transpose (perm {list(a.get('perm', []))}) inside the network is not supported; "
                                 "only the NHWC<->NCHW transposes at the input and outputs are absorbed")
        x = tensor(node.input[0], node)
        if op_type in ("Conv", "ConvTranspose"):
            w = const_of(node, 1, "weight")
            if w is None or w.ndim != 4:
                raise imp.fail(node, "only 2-d convolutions with constant weights are supported")
            b = const_of(node, 2, "bias")
            group = int(a.get("group", 1))
            kernel = list(a.get("kernel_shape", w.shape[2:]))
            strides = list(a.get("strides", [1, 1]))
            dil = list(a.get("dilations", [1, 1]))
            if op_type == "Conv":
                pads = _pads(imp, node, a, (x.height, x.width), kernel, strides, dil)
                cout = w.shape[0]
            else:
                if group != 1 and not (group == x.channels and w.shape[1] == 1):
                    raise imp.fail(node, f"ConvTranspose with group {group} is not supported (only 1 or depthwise)")
                if a.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in a:
                    raise imp.fail(node, "ConvTranspose auto_pad / output_shape are not supported; give pads")
                pads = tuple(a.get("pads", [0, 0, 0, 0]))
                cout = w.shape[1] * group
            bias = np.zeros(cout, np.float32) if b is None else b.astype(np.float32)
            emit("conv" if op_type == "Conv" else "conv_transpose", node, [x.name], weight=w.astype(np.float32),
                 bias=bias, group=group, kernel=kernel, strides=strides, dilations=dil, pads=pads)
        elif op_type == "BatchNormalization":
            scale, shift, mean, var = (const_of(node, i, n).astype(np.float64)
                                       for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
            k = scale / np.sqrt(var + a.get("epsilon", 1e-5))
            prev = producer.get(x.name)
            if prev is not None and prev.kind == "conv" and len(uses.get(node.input[0], [])) == 1 \
                    and x.name not in out_ir:
                w = prev.attrs["weight"].astype(np.float64)
                prev.attrs["weight"] = (w * k.reshape(-1, 1, 1, 1)).astype(np.float32)
                prev.attrs["bias"] = ((prev.attrs["bias"] - mean) * k + shift).astype(np.float32)
                prev.onnx_nodes.append(node.name or node.output[0])
                alias[node.output[0]] = x.name
                continue
            sk = f"{node.name or node.output[0]}/scale"
            ss = f"{node.name or node.output[0]}/shift"
            imp.net_consts[sk] = k.astype(np.float32)
            imp.net_consts[ss] = (shift - mean * k).astype(np.float32)
            mid = node.output[0] + "/scaled"
            tensors[mid] = Tensor(mid, *x.shape)
            ops.append(Op("binary", [x.name, sk], mid, {"fn": "*"}, [node.name or node.output[0]], op_type))
            ops.append(Op("binary", [mid, ss], tensor(node.output[0], node).name, {"fn": "+"},
                          [node.name or node.output[0]], op_type))
            producer[node.output[0]] = ops[-1]
        elif op_type in UNARY:
            fn = {"Relu": "relu", "Clip": "clip", "LeakyRelu": "leaky", "HardSwish": "hardswish",
                  "HardSigmoid": "hardsigmoid", "Sigmoid": "sigmoid", "Tanh": "tanh"}[op_type]
            extra = {}
            if op_type == "Clip":
                lo, hi = a.get("min", -3.4e38), a.get("max", 3.4e38)
                lo_c, hi_c = const_of(node, 1, "min"), const_of(node, 2, "max")
                extra = {"lo": float(lo if lo_c is None else lo_c), "hi": float(hi if hi_c is None else hi_c)}
            elif op_type == "LeakyRelu":
                extra = {"alpha": float(a.get("alpha", 0.01))}
            elif op_type == "HardSigmoid":
                extra = {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))}
            emit("unary", node, [x.name], fn=fn, **extra)
        elif op_type in BINARY:
            out = tensor(node.output[0], node)
            ins = []
            for i in node.input[:2]:
                if i in imp.const:
                    ins.append(operand(i, node, out.channels))
                    continue
                t = tensor(i, node)
                if t.channels != out.channels or (t.height, t.width) not in ((out.height, out.width), (1, 1)):
                    raise imp.fail(node, f"operand '{i}' {list(t.shape)} does not broadcast to {list(out.shape)} "
                                         "(only same shape, 1x1 per channel, per-channel or scalar constants)")
                ins.append(t.name)
            emit("binary", node, ins, fn=BINARY[op_type])
        elif op_type in ("GlobalAveragePool", "ReduceMean"):
            if op_type == "ReduceMean":
                axes = a.get("axes")
                if axes is None and len(node.input) > 1:
                    axes = list(const_of(node, 1, "axes"))
                axes = sorted(int(v) % 4 for v in (axes or []))
                if axes != [2, 3] or a.get("keepdims", 1) != 1:
                    raise imp.fail(node, f"ReduceMean over axes {axes} keepdims {a.get('keepdims', 1)}: only over H "
                                         "and W with keepdims=1")
            global_mean(node)
        elif op_type in ("AveragePool", "MaxPool"):
            kernel = list(a["kernel_shape"])
            strides = list(a.get("strides", [1, 1]))
            dil = list(a.get("dilations", [1, 1]))
            if dil != [1, 1] or a.get("storage_order", 0):
                raise imp.fail(node, "pool dilations / storage_order are not supported")
            if len(node.output) > 1 and node.output[1]:
                raise imp.fail(node, "MaxPool's Indices output is not supported")
            pads = _pads(imp, node, a, (x.height, x.width), kernel, strides, dil)
            if op_type == "AveragePool" and kernel == [x.height, x.width] and not any(pads):
                global_mean(node)  # a whole-picture mean (a squeeze-excite written as a pool)
                continue
            emit("pool", node, [x.name], mode="max" if op_type == "MaxPool" else "avg", kernel=kernel,
                 strides=strides, pads=pads, count_pad=bool(a.get("count_include_pad", 0)))
        elif op_type in ("Resize", "Upsample"):
            mode = a.get("mode", "nearest")
            if mode not in ("nearest", "linear", "bilinear"):
                raise imp.fail(node, f"{op_type} mode '{mode}' is not supported (nearest, linear)")
            out = tensor(node.output[0], node)
            if out.channels != x.channels:
                raise imp.fail(node, "resizing the channel axis is not supported")
            if op_type == "Upsample":
                ctm = "asymmetric"
            else:
                ctm = a.get("coordinate_transformation_mode", "half_pixel")
                if ctm not in ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"):
                    raise imp.fail(node, f"coordinate_transformation_mode '{ctm}' is not supported")
                if a.get("antialias", 0) or a.get("exclude_outside", 0) or "axes" in a \
                        or a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
                    raise imp.fail(node, "Resize antialias / exclude_outside / axes / keep_aspect_ratio_policy "
                                         "are not supported")
            idx = 1 if op_type == "Upsample" or imp.model.opset_import[0].version < 11 else 2
            given = const_of(node, idx, "scales") if len(node.input) > idx and node.input[idx] else None
            if op_type == "Upsample" and given is None and "scales" in a:
                given = np.asarray(a["scales"])
            if given is not None and given.size == 4:
                if float(given[0]) != 1.0 or float(given[1]) != 1.0:
                    raise imp.fail(node, f"{op_type} scales {list(given)}: only H and W may be resized")
                scales = (float(given[2]), float(given[3]))
                if op_type == "Upsample" and min(scales) < 1:
                    raise imp.fail(node, f"Upsample scales {list(given)} below 1 are not supported")
            else:  # from sizes: ONNX maps coordinates with the ratio of the sizes
                scales = (out.height / x.height, out.width / x.width)
            emit("resize", node, [x.name], mode="linear" if mode != "nearest" else "nearest", ctm=ctm,
                 scales=scales,  # Upsample's nearest is the floor (onnxruntime's "simple" mode, scales >= 1)
                 nearest_mode="floor" if op_type == "Upsample" else a.get("nearest_mode", "round_prefer_floor"))
        elif op_type == "Concat":
            if int(a["axis"]) % 4 != 1:
                raise imp.fail(node, f"Concat on axis {a['axis']}: only on channels (axis 1)")
            emit("concat", node, [tensor(i, node).name for i in node.input])
        elif op_type == "Softmax":
            if int(a.get("axis", 1 if imp.model.opset_import[0].version < 13 else -1)) % 4 != 1:
                raise imp.fail(node, "Softmax only over channels (axis 1)")
            emit("softmax", node, [x.name])
        elif op_type == "Pad":
            mode = a.get("mode", "constant")
            pads = a.get("pads")
            if pads is None:
                pads = const_of(node, 1, "pads")
            pads = [int(v) for v in pads]
            value = a.get("value", 0.0)
            if len(node.input) > 2 and node.input[2]:
                value = float(const_of(node, 2, "constant_value"))
            if len(node.input) > 3 and node.input[3]:
                raise imp.fail(node, "Pad with axes is not supported")
            if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
                raise imp.fail(node, f"Pad {pads}: only non-negative padding of H and W")
            if mode not in ("constant", "edge", "reflect"):
                raise imp.fail(node, f"Pad mode '{mode}' is not supported")
            emit("pad", node, [x.name], mode=mode, pads=(pads[2], pads[3], pads[6], pads[7]), value=float(value))
        else:  # Constant of a sparse value and the like
            raise imp.fail(node, f"op {op_type} with these attributes is not supported")

    outs = [alias.get(o, o) for o in out_ir]
    for o in outs:
        if o not in tensors:
            raise NetError(f"model '{name}': output '{o}' is a constant or the input; nothing to compute")
    if in_name not in tensors:
        raise NetError(f"model '{name}': the input is not used")
    return Net(name, in_name, input_layout, outs, out_layouts, tensors, ops, imp.net_consts)
