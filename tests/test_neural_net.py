"""neural_net: GPU preprocessing + onnxruntime against numpy preprocessing; model errors; the
background-blur pipeline's mask against the float64 reference pipeline."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import graph_doc, to_float
from media import face_box, person_frames, photo_box, write_clip
from fusegraph.nodes import bilateral, neural_net
from fusegraph.nodes.lib.onnx_session import open_model
from fusegraph.nodes.resize import ResizeParams
from fusegraph.nodes.resize import reference as resize_reference
from fusegraph.nodes.contract import NodeError
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.loader import load_graph, parse_graph


def numpy_mask(rgb: np.ndarray, p: neural_net.NeuralNetParams) -> np.ndarray:
    """The reference: float64 area resize, normalisation, the same onnxruntime model."""
    net = open_model(p.model, p.threads)
    w, h = net.input_size(p.layout, p.input_width, p.input_height)
    small = resize_reference(to_float(rgb), ResizeParams(width=w, height=h, filter="area"))
    if p.channels == "BGR":
        small = small[..., [2, 1, 0, 3]]
    scale, offset = neural_net.scale_offset(p)
    x = (small[..., :3] * scale + offset).astype(np.float32)
    return neural_net.infer_mask(p, np.concatenate([x, np.ones_like(x[..., :1])], -1))


def run_net(run_graph, write_png, rgb, params):
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                     {"id": "net", "type": "neural_net", "params": params},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("src.out", "net.in"), ("net.out", "view.in")])
    return run_graph(doc)["view"].astype(np.float64) / 255.0


def test_selfie_on_gpu_matches_numpy_preprocessing(run_graph, write_png):
    p = neural_net.NeuralNetParams()
    for i, frame in enumerate(person_frames(640, 360, 3)):
        rgb = frame[..., ::-1].copy()
        got = run_net(run_graph, write_png, rgb, {})
        want = numpy_mask(rgb, p)
        assert got.shape == want.shape == (144, 256)
        assert np.abs(got - want).mean() < 0.005
    # frame 0: the photo spans mask columns 20..142; she fills its lower middle, the wall is empty
    first = run_net(run_graph, write_png, next(person_frames(640, 360, 3))[..., ::-1].copy(), {})
    assert first[90:, 50:110].mean() > 0.8 and first[:, 170:].mean() < 0.05


def tiny_model(path, layout="NCHW", size=(8, 6)):
    """A model whose output channels are its input channels (R, G, B) and their mean: exact checks."""
    w, h = size
    shape = [1, 3, h, w] if layout == "NCHW" else [1, h, w, 3]
    axis = 1 if layout == "NCHW" else 3
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    out_shape = list(shape)
    out_shape[axis] = 4
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Concat", ["x", "m"], ["y"], axis=axis)]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [axis])
    g = helper.make_graph(nodes, "tiny", [x], [y], initializer=[axes])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("channels,normalize,channel", [("RGB", "0..1", 0), ("BGR", "0..1", 0),
                                                        ("RGB", "mean_std", 3), ("RGB", "-1..1", 2)])
def test_layout_channels_and_normalisation_are_exact(run_graph, write_png, tmp_path, layout, channels,
                                                     normalize, channel):
    model = tiny_model(tmp_path / f"tiny_{layout}.onnx", layout)
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # the model's own size: no resampling
    params = {"model": model, "layout": layout, "channels": channels, "normalize": normalize,
              "channel": channel, "mean": (0.2, 0.3, 0.4), "std": (0.5, 0.5, 0.5)}
    got = run_net(run_graph, write_png, rgb, params)
    p = neural_net.NeuralNetParams(**params)
    scale, offset = neural_net.scale_offset(p)
    x = rgb / 255.0
    if channels == "BGR":
        x = x[..., ::-1]
    x = x * scale + offset
    want = np.clip(np.concatenate([x, x.mean(-1, keepdims=True)], -1)[..., channel], 0, 1)
    assert np.abs(got - want).max() <= 1 / 255 + 1e-6


def test_model_errors_name_the_model_and_shapes(tmp_path, monkeypatch):
    model = tiny_model(tmp_path / "tiny.onnx", "NCHW")
    with pytest.raises(NodeError, match="input_width 9 does not fit"):
        neural_net.build(neural_net.NeuralNetParams(model=model, layout="NCHW", input_width=9), {})
    with pytest.raises(NodeError, match="channels in NHWC"):
        neural_net.build(neural_net.NeuralNetParams(model=model, layout="NHWC"), {})
    with pytest.raises(NodeError, match="channel 7 does not exist"):
        neural_net.build(neural_net.NeuralNetParams(model=model, layout="NCHW", channel=7), {})
    with pytest.raises(NodeError, match="output 2 does not exist"):
        neural_net.build(neural_net.NeuralNetParams(model=model, layout="NCHW", output=2), {})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(NodeError, match="cannot be loaded"):
        neural_net.build(neural_net.NeuralNetParams(model=str(bad)), {})
    with pytest.raises(NodeError, match="missing.onnx"):
        neural_net.build(neural_net.NeuralNetParams(model=str(tmp_path / "missing.onnx")), {})
    monkeypatch.setenv("FUSEGRAPH_MODELS", str(tmp_path / "empty-cache"))
    with pytest.raises(NodeError, match="fusegraph models fetch selfie"):
        neural_net.build(neural_net.NeuralNetParams(model="selfie"), {})


def test_background_blur_mask_matches_float64_reference_pipeline(gpu):
    """The preset's refined mask (GPU resize, onnxruntime, joint bilateral) against numpy float64."""
    graph = load_graph("presets/background_blur.json")
    doc = graph.model_dump(mode="json", by_alias=True)
    for node in doc["nodes"]:
        if node["id"] == "out":
            node.update(type="preview", params={"max_width": 3840})
    doc["links"] = [l for l in doc["links"] if l["to"] != "out.in"] + [{"from": "refine.out", "to": "out.in"}]
    frames = list(person_frames(640, 360, 4))
    doc["nodes"][0] = {"id": "source", "type": "pattern", "params": {"width": 640, "height": 360}}
    engine = Engine(parse_graph(doc), gpu=gpu)
    engine.open()
    src = engine.sources["source"]
    src.read = lambda i: frames[i]  # the clip's frames through the preset's own graph
    engine.sources["source"].info.size = (640, 360)
    try:
        for i, frame in enumerate(frames):
            assert engine.process(i)
            got = engine.sinks["out"].last.astype(np.float64) / 255.0
            rgb = frame[..., ::-1]
            mask = numpy_mask(rgb, neural_net.NeuralNetParams())
            bp = bilateral.BilateralParams(**doc["nodes"][2]["params"])
            want = bilateral.reference(mask.astype(np.float64), to_float(rgb), bp)
            assert np.abs(got - want).mean() < 0.01
    finally:
        engine.close()


def test_background_blur_preset_on_a_video_keeps_the_person_sharp(tmp_path):
    import subprocess
    import sys

    import av
    import cv2

    clip = write_clip(tmp_path / "clip.mp4", 640, 360, frames=12)
    out = tmp_path / "out.mp4"
    # swap the pattern source for the clip: a video node with the same id
    doc = load_graph("presets/background_blur.json").model_dump(mode="json", by_alias=True)
    doc["nodes"][0] = {"id": "source", "type": "video", "params": {"path": str(clip)}, "pos": [0, 0]}
    doc["nodes"][-1]["params"]["path"] = str(out)
    import json

    preset = tmp_path / "bb.json"
    preset.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "fusegraph.runtime.cli", "run", str(preset), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path)  # the output is in the CWD
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        got = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    src = list(person_frames(640, 360, 12))
    assert len(got) == 12

    def sharpness(img, box):
        y0, y1, x0, x1 = box
        return cv2.Laplacian(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()

    for i in (0, 6, 11):
        face = face_box(640, 360, 12, i)
        x0, _, side = photo_box(640, 360, 12, i)
        wall = (0, 360, 0, x0 - 8) if x0 > 100 else (0, 360, x0 + side + 8, 640)
        assert sharpness(got[i], face) > 0.6 * sharpness(src[i], face)  # the person stays sharp
        assert sharpness(got[i], wall) < 0.1 * sharpness(src[i], wall)  # the wall is blurred


@pytest.mark.parametrize("source", [{"type": "video", "params": {"path": "media/person.mp4"}},
                                    {"type": "pattern", "params": {"width": 640, "height": 360}}],
                         ids=["shipped clip", "pattern"])
def test_background_blur_fast_paths_change_no_output(gpu, source):
    """The whole preset as it runs offline (tiled early-out drawn as run quads, each class of sure
    tiles by its own folded program, the network on a worker while the blur is drawn): the same
    bytes as the same graph run step by step (profiled) and as one program for all sure tiles,
    within 1/255 of the unfused graph, and within 1/255 of the full filter where that is sure."""
    from pathlib import Path

    doc = load_graph("presets/background_blur.json").model_dump(mode="json", by_alias=True)
    doc["nodes"][0].update(source)
    doc["nodes"][-1].update(type="preview", params={"max_width": 3840})
    full_doc = load_graph("presets/background_blur.json").model_dump(mode="json", by_alias=True)
    full_doc["nodes"] = [dict(n) for n in doc["nodes"]]
    full_doc["links"] = doc["links"]
    full_doc["nodes"][2] = {**doc["nodes"][2], "params": {**doc["nodes"][2]["params"], "early_out": False}}
    presets = str(Path(__file__).resolve().parent.parent / "presets")
    runs = {"offline": (doc, {}), "profiled": (doc, {"profile": True}), "unfused": (doc, {"fuse": False}),
            "full filter": (full_doc, {}), "one sure program": (doc, {})}
    outs, masks = {}, {}
    for name, (d, kw) in runs.items():
        engine = Engine(parse_graph(d), gpu=gpu, search_dirs=(presets,), **kw)
        if name == "full filter":
            engine.taps = ("refine.out",)
        engine.gl.specialise = name != "one sure program"  # as live runs draw: sure tiles of both classes at once
        engine.open()
        try:
            if name == "offline":
                assert any(p.tiles is not None for p in engine.plan.passes)
            outs[name], masks[name] = [], []
            for i in (0, 5):
                assert engine.process(i)
                outs[name].append(np.array(engine.sinks["out"].last, dtype=int))
                masks[name].append(engine.tap_frames.get("refine.out"))
        finally:
            engine.close()
    for i in range(2):
        assert np.array_equal(outs["offline"][i], outs["profiled"][i])
        assert np.array_equal(outs["offline"][i], outs["one sure program"][i])
        assert np.abs(outs["offline"][i] - outs["unfused"][i]).max() <= 1
        m = masks["full filter"][i].astype(int)
        sure = (m <= 1) | (m >= 254)
        assert 0.5 < sure.mean() < 0.99  # a person with an outline in the picture
        assert np.abs(outs["offline"][i] - outs["full filter"][i]).max(-1)[sure].max() <= 1
