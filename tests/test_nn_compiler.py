"""The network compiler (nodes/lib/nn) against onnxruntime: small random ONNX models built here
(odd sizes, channel counts not divisible by 4, strides, depthwise and grouped convolutions,
upsample -> conv, residual adds, squeeze-excite), fused and unfused, several render targets or
one; fused == unfused tensor by tensor; both selfie models on real pictures; bad models."""
from __future__ import annotations

import av
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from media import person_frames
from fusegraph.nodes.lib.model_registry import cached_path
from fusegraph.nodes.lib.nn.compile import compile_net
from fusegraph.nodes.lib.nn.import_onnx import from_model, load
from fusegraph.nodes.lib.nn.ir import NetError
from fusegraph.runtime.nn_run import GlNet, pack, unpack
from fusegraph.runtime.resources import presets_dir

RNG = np.random.default_rng(13)


class Builder:
    """A model built op by op: x (1xCxHxW) in, the last value out."""

    def __init__(self, c: int, h: int, w: int, opset: int = 17):
        self.nodes, self.inits, self.opset = [], [], opset
        self.shape = [1, c, h, w]
        self.last = "x"
        self.n = 0

    def const(self, value, name=None) -> str:
        self.n += 1
        name = name or f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32 if np.asarray(value).dtype.kind == "f"
                                                             else np.int64), name))
        return name

    def op(self, op_type: str, inputs=None, **attrs) -> str:
        self.n += 1
        out = f"{op_type.lower()}{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs if inputs is not None else [self.last], [out],
                                           name=f"n{self.n}_{op_type}", **attrs))
        self.last = out
        return out

    def conv(self, cin: int, cout: int, k: int = 3, group: int = 1, x=None, bias=True, **attrs) -> str:
        w = self.const(RNG.normal(0, 1 / np.sqrt(cin // group * k * k), (cout, cin // group, k, k)))
        ins = [x or self.last, w] + ([self.const(RNG.normal(0, 0.2, cout))] if bias else [])
        return self.op("Conv", ins, group=group, kernel_shape=[k, k], **attrs)

    def model(self, outputs=None):
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in (outputs or [self.last])]
        g = helper.make_graph(self.nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)],
                              outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        return m


def reference(model, x: np.ndarray, names: list[str] | None = None, input_name: str = "x") -> list[np.ndarray]:
    """onnxruntime, every named value as an output (intermediate tensors too)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    if names:
        have = {o.name for o in m.graph.output}
        m.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(names or [o.name for o in model.graph.output], {input_name: x})
    return [o[0] for o in outs]


def run_gl(gpu, model, x, fused=True, mrt=4, dtype="f4", names=None):
    compiled = compile_net(from_model(model, "test"), fused=fused, mrt=mrt, max_texture=gpu.max_texture)
    net = GlNet(compiled, gpu, dtype)
    try:
        got = net.run(x[0], names)
    finally:
        net.release()
    return got, compiled


def check(gpu, model, c, h, w, tol=1e-4, fused_modes=((True, 4), (False, 1), (True, 1))):
    x = RNG.normal(0, 1, (1, c, h, w)).astype(np.float32)
    (want,) = reference(model, x)
    for fused, mrt in fused_modes:
        (got,), compiled = run_gl(gpu, model, x, fused, mrt)
        scale = max(1.0, float(np.abs(want).max()))
        err = float(np.abs(got - want).max())
        assert got.shape == want.shape
        assert err <= tol * scale, f"fused={fused} mrt={mrt}: max error {err} (scale {scale})"
    return compiled


def test_pack_unpack_round_trip():
    from fusegraph.nodes.lib.nn.ir import Tensor
    for c, mrt in ((3, 4), (13, 4), (13, 1), (40, 4)):
        t = Tensor("t", c, 5, 7)
        t.layout(mrt, 32)  # a small limit: several rows of tiles
        x = RNG.normal(size=(c, 5, 7)).astype(np.float32)
        assert np.array_equal(unpack(pack(x, t), t), x)


@pytest.mark.parametrize("stride,dilation,pads", [(1, 1, [1, 1, 1, 1]), (2, 1, [0, 0, 1, 1]), (2, 2, [2, 1, 0, 2])])
def test_dense_conv(gpu, stride, dilation, pads):
    b = Builder(5, 13, 11)
    b.conv(5, 7, 3, strides=[stride, stride], dilations=[dilation, dilation], pads=pads)
    b.op("Relu")
    b.conv(7, 9, 1)
    check(gpu, b.model(), 5, 13, 11)


def test_depthwise_and_grouped_conv(gpu):
    b = Builder(6, 15, 9)
    b.conv(6, 6, 5, group=6, strides=[2, 2], pads=[2, 2, 2, 2])
    b.op("HardSwish")
    b.conv(6, 10, 3, group=2, pads=[1, 1, 1, 1])
    b.op("LeakyRelu", alpha=0.1)
    b.conv(10, 10, 3, group=10, auto_pad="SAME_UPPER")
    b.op("Clip", [b.last, b.const(np.float32(-0.5)), b.const(np.float32(0.7))])
    check(gpu, b.model(), 6, 15, 9)


def test_upsample_then_conv_and_residual(gpu):
    b = Builder(5, 7, 9)
    x1 = b.conv(5, 6, 3, pads=[1, 1, 1, 1])
    b.op("Relu")
    up = b.op("Resize", [b.last, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="linear",
              coordinate_transformation_mode="half_pixel")
    y = b.conv(6, 6, 1)
    near = b.op("Resize", [x1, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.op("Add", [y, near])  # residual add of an upscaled branch
    b.op("Sigmoid")
    compiled = check(gpu, b.model(), 5, 7, 9)
    # fused: neither upscaled tensor is stored; the 1x1 conv reads its input through the resize
    assert up not in compiled.schedule.stored and near not in compiled.schedule.stored


def test_resize_modes(gpu):
    b = Builder(3, 6, 5)
    a = b.op("Resize", ["x", "", "", b.const(np.array([1, 3, 11, 13], np.int64))], mode="linear",
             coordinate_transformation_mode="align_corners")
    c = b.op("Resize", ["x", "", b.const(np.array([1, 1, 0.5, 0.5], np.float32))], mode="nearest",
             coordinate_transformation_mode="half_pixel")
    d = b.op("Resize", ["x", "", "", b.const(np.array([1, 3, 9, 7], np.int64))], mode="linear",
             coordinate_transformation_mode="pytorch_half_pixel")
    x = RNG.normal(size=(1, 3, 6, 5)).astype(np.float32)
    model = b.model([a, c, d])
    want = reference(model, x)
    got, _ = run_gl(gpu, model, x)
    for g_, w_ in zip(got, want):
        assert g_.shape == w_.shape and np.abs(g_ - w_).max() < 1e-5


def test_squeeze_excite_block(gpu):
    b = Builder(7, 9, 11)
    y = b.conv(7, 12, 3, pads=[1, 1, 1, 1])
    b.op("HardSwish")
    y = b.last
    b.op("GlobalAveragePool")
    b.conv(12, 4, 1)
    b.op("Relu")
    b.conv(4, 12, 1)
    b.op("HardSigmoid", alpha=0.2, beta=0.5)
    b.op("Mul", [y, b.last])
    b.conv(12, 7, 1)
    b.op("Add", [b.last, "x"])
    check(gpu, b.model(), 7, 9, 11)


def test_conv_transpose_pools_and_channel_ops(gpu):
    b = Builder(6, 9, 7)
    b.op("ConvTranspose", ["x", b.const(RNG.normal(0, 0.3, (6, 5, 3, 3))), b.const(RNG.normal(0, 0.1, 5))],
         strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], kernel_shape=[3, 3])
    t = b.op("Tanh")
    m = b.op("MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    a = b.op("AveragePool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    a2 = b.op("AveragePool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    s = b.op("Sub", [m, a])
    d = b.op("Div", [a2, b.const(np.linspace(0.5, 2, 5).reshape(1, 5, 1, 1))])
    cat = b.op("Concat", [s, d], axis=1)
    b.op("Softmax", [cat], axis=1)
    b.op("Pad", [b.last, b.const(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], mode="reflect")
    b.op("Pad", [b.last, b.const(np.array([0, 0, 1, 0, 0, 0, 0, 3], np.int64)), b.const(np.float32(0.25))])
    b.op("Mul", [b.last, b.const(np.float32(3.0))])
    check(gpu, b.model(), 6, 9, 7)


def test_batchnorm_folds_and_nhwc_boundaries(gpu):
    b = Builder(3, 10, 12)
    b.shape = [1, 10, 12, 3]
    b.op("Transpose", ["x"], perm=[0, 3, 1, 2])
    b.conv(3, 6, 3, pads=[1, 1, 1, 1], bias=False)
    bn = [b.const(RNG.uniform(0.5, 1.5, 6)), b.const(RNG.normal(0, 0.1, 6)), b.const(RNG.normal(0, 0.1, 6)),
          b.const(RNG.uniform(0.5, 2, 6))]
    b.op("BatchNormalization", [b.last] + bn, epsilon=1e-3)
    b.op("Relu")
    b.op("Transpose", perm=[0, 2, 3, 1])
    model = b.model()
    net = from_model(model, "bn")
    assert net.input_layout == "NHWC" and net.output_layouts == ["NHWC"]
    assert [op.kind for op in net.ops] == ["conv", "unary"] and len(net.ops[0].onnx_nodes) == 2
    x = RNG.normal(size=(1, 10, 12, 3)).astype(np.float32)
    (want,) = reference(model, x)
    (got,), _ = run_gl(gpu, model, x.transpose(0, 3, 1, 2))
    assert np.abs(got.transpose(1, 2, 0) - want).max() < 1e-4


def test_fused_equals_unfused_tensor_by_tensor(gpu):
    """Every tensor the fused net stores equals the same tensor of the one-pass-per-op net."""
    path = str(cached_path("selfie"))
    x = RNG.random((1, 3, 144, 256), dtype=np.float32)
    fused = compile_net(load(path, "selfie"), fused=True, mrt=4, max_texture=gpu.max_texture)
    unfused = compile_net(load(path, "selfie"), fused=False, mrt=1, max_texture=gpu.max_texture)
    assert len(fused.passes) < len(unfused.passes) * 0.6
    names = sorted(fused.schedule.stored - {fused.net.input})
    a, b = GlNet(fused, gpu, "f4"), GlNet(unfused, gpu, "f4")
    try:
        got_f, got_u = a.run(x[0], names), b.run(x[0], names)
    finally:
        a.release(), b.release()
    made = {o for node in onnx.load(path).graph.node for o in node.output}
    onnx_names = [n for n in names if n in made]
    want = dict(zip(onnx_names, reference(onnx.load(path), x.transpose(0, 2, 3, 1), onnx_names, "input_1")))
    assert len(want) > 40
    for n, f, u in zip(names, got_f, got_u):
        assert np.abs(f - u).max() <= 1e-5 * max(1.0, np.abs(u).max()), n
        if n not in want:  # our own intermediate (a row mean)
            continue
        w = want[n]
        assert np.abs(f - u).max() <= 1e-5 * max(1.0, np.abs(w).max()), n
        assert np.abs(f - w).max() <= 1e-4 * max(1.0, np.abs(w).max()), n


def clip_frames(n: int = 3) -> list[np.ndarray]:
    """RGB frames of the shipped clip (presets/media/person.mp4), spread over it."""
    with av.open(str(presets_dir() / "media" / "person.mp4")) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    return [frames[i] for i in np.linspace(0, len(frames) - 1, n).astype(int)]


def as_input(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@pytest.mark.parametrize("name,tol", [("selfie", 1e-4), ("selfie_square", 5e-4)])
def test_selfie_models_on_real_pictures(gpu, name, tol):
    """Float32 tensors against onnxruntime, person probability: selfie within 1e-4 (measured 2.4e-5
    at most); selfie_square's logits reach 90, where float32 summation order alone moves a few
    steep pixels by up to 2.5e-4 (mean 7e-7; onnxruntime against itself, optimised or not, differs
    by 7e-5 there). Half-float tensors drift (about 0.03 per stored layer at those magnitudes:
    measured max 0.2-0.3, mean 3e-4 and 2e-3): not within the issue's 2e-3, so the node stores
    float32; half is checked here only for a sane mask."""
    from fusegraph.runtime.models import fetch
    (path,) = fetch([name], log=lambda msg: None)
    model = onnx.load(str(path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    h, w = dims[1], dims[2]
    pictures = clip_frames(2) + [f[..., ::-1] for f in person_frames(640, 360, 2)]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compiled = compile_net(load(str(path), name), True, 4, gpu.max_texture)
    nets = {"f2": GlNet(compiled, gpu, "f2"), "f4": GlNet(compiled, gpu, "f4")}
    try:
        for rgb in pictures:
            x = as_input(rgb, w, h)
            want = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0][0, ..., 0]
            assert 0.05 < want.mean() < 0.95  # a person and a background
            err = np.abs(nets["f4"].run(x.transpose(2, 0, 1))[0][0] - want)
            assert err.max() < tol and err.mean() < 1e-5, (float(err.max()), float(err.mean()))
            err = np.abs(nets["f2"].run(x.transpose(2, 0, 1))[0][0] - want)
            assert err.mean() < 5e-3 and (err > 0.1).mean() < 0.01, float(err.mean())
    finally:
        for n in nets.values():
            n.release()


def test_unsupported_op_names_model_node_and_op():
    b = Builder(3, 4, 4)
    b.op("Relu")
    b.op("Flatten")
    with pytest.raises(NetError, match=r"model 'bad': ONNX node 'n2_Flatten' \(Flatten\): op Flatten is not supported"):
        from_model(b.model(), "bad")
    b = Builder(3, 4, 4)
    b.op("Softmax", axis=2)
    with pytest.raises(NetError, match=r"ONNX node 'n1_Softmax' \(Softmax\): Softmax only over channels"):
        from_model(b.model(), "bad")


def test_dynamic_shape_and_texture_limits():
    b = Builder(3, 4, 4)
    b.conv(3, 4, 1)
    m = b.model()
    for d in m.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "free"
    with pytest.raises(NetError, match="free height the node cannot fix"):
        from_model(m, "dyn")
    net = from_model(m, "dyn", size=(6, 5))
    assert net.tensors[net.outputs[0]].shape == (4, 5, 6)
    b = Builder(3, 40, 40)
    b.conv(3, 64, 1)
    with pytest.raises(NetError, match=r"needs a \d+x\d+ texture; the GPU allows 100"):
        compile_net(from_model(b.model(), "big"), mrt=1, max_texture=100)


def test_more_ops_and_attributes(gpu):
    """Depthwise ConvTranspose, a standalone BatchNormalization, Pad edge, pools in ceil mode,
    a whole-picture mean of a picture larger than one loop may run on software GL."""
    b = Builder(6, 9, 8)
    b.op("ConvTranspose", ["x", b.const(RNG.normal(0, 0.3, (6, 1, 4, 4))), b.const(RNG.normal(0, 0.1, 6))],
         group=6, strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[4, 4])
    bn = [b.const(RNG.uniform(0.5, 1.5, 6)), b.const(RNG.normal(0, 0.1, 6)), b.const(RNG.normal(0, 0.1, 6)),
          b.const(RNG.uniform(0.5, 2, 6))]
    b.op("Relu")
    b.op("BatchNormalization", [b.last] + bn)  # not after a conv: a per-channel multiply-add
    b.op("Pad", [b.last, b.const(np.array([0, 0, 2, 1, 0, 0, 0, 3], np.int64))], mode="edge")
    b.op("MaxPool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    b.op("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    check(gpu, b.model(), 6, 9, 8)
    b = Builder(5, 300, 260)  # 78000 pixels per channel: more than one loop of 65535
    b.op("GlobalAveragePool")
    b.op("Sigmoid")
    check(gpu, b.model(), 5, 300, 260, fused_modes=((True, 4),))


def test_upsample_of_opset_9(gpu):
    b = Builder(3, 5, 7, opset=9)
    b.op("Upsample", ["x", b.const(np.array([1, 1, 2, 3], np.float32))], mode="nearest")
    b.conv(3, 5, 3, pads=[1, 1, 1, 1])
    b.op("Upsample", [b.last, b.const(np.array([1, 1, 2, 2], np.float32))], mode="linear")
    check(gpu, b.model(), 3, 5, 7)
