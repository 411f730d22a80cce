"""neural_net's backends: `gl` (the network as the node's GPU stages) against `onnxruntime` on the
background-blur preset's frames; the plan of `gl` has no CPU stage and no read-back for the net;
`auto`'s choice and its reason; bad models under `gl` are one-line errors (exit 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import graph_doc
from media import person_frames
from test_nn_compiler import Builder
from fusegraph.nodes.lib.nn import backend
from fusegraph.nodes.lib.nn.ir import NetError
from fusegraph.runtime.cli import main
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.loader import parse_graph
from fusegraph.runtime.plan import CpuStep
from fusegraph.runtime.resources import presets_dir


def blur_preset(backend_name: str, preset: str = "background_blur") -> dict:
    """A shipped background graph with a preview sink (frames as arrays) and a backend."""
    doc = json.loads((presets_dir() / f"{preset}.json").read_text())
    for n in doc["nodes"]:
        if n["id"] == "segment":
            n["params"]["backend"] = backend_name
        if n["type"] in ("video", "image"):  # the preset's media, found from anywhere
            n["params"]["path"] = str(presets_dir() / n["params"]["path"])
        if n["id"] == "out":
            n.update(type="preview", params={"max_width": 3840})
    return doc


def frames_of(gpu, doc: dict, count: int) -> tuple[list[np.ndarray], object]:
    engine = Engine(parse_graph(doc), gpu=gpu)
    engine.open()
    out = []
    try:
        for i in range(count):
            assert engine.process(i)
            out.append(np.array(engine.sinks["out"].last))
        plan = engine.plan
    finally:
        engine.close()
    return out, plan


@pytest.mark.parametrize("preset", ["background_blur", "background_replace"])
def test_background_frames_equal_between_backends(gpu, preset):
    got, plan = frames_of(gpu, blur_preset("gl", preset), 3)
    want, plan_ort = frames_of(gpu, blur_preset("onnxruntime", preset), 3)
    for g, w in zip(got, want):
        assert np.abs(g.astype(int) - w.astype(int)).max() <= 1
    # gl: no CPU stage; one upload (the frame) and one read-back (the sink) per frame
    assert not [s for s in plan.steps if isinstance(s, CpuStep)]
    up, down = plan.transfer_bytes()
    up_ort, down_ort = plan_ort.transfer_bytes()
    w, h = 256, 144
    assert up_ort - up == w * h and down_ort - down == w * h * 16  # the mask (R8) and the tensor (RGBA32F)
    nn_passes = sum(".nn" in p.name for p in plan.passes)  # counted first: a failing assert would print the plan
    assert nn_passes == 56, nn_passes  # the selfie network's passes (docs/design.md)


def test_mask_equals_onnxruntime_on_pictures(gpu, write_png):
    for frame in person_frames(640, 360, 2):
        masks = {}
        for b in ("gl", "onnxruntime"):
            doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(frame[..., ::-1].copy())}},
                             {"id": "net", "type": "neural_net", "params": {"backend": b}},
                             {"id": "out", "type": "preview", "params": {"max_width": 3840}}],
                            [("src.out", "net.in"), ("net.out", "out.in")])
            masks[b] = frames_of(gpu, doc, 1)[0][0].astype(int)
        assert masks["gl"].shape == (144, 256)
        assert np.abs(masks["gl"] - masks["onnxruntime"]).max() <= 1


def test_auto_chooses_onnxruntime_on_software_gl_and_says_why(gpu, capsys):
    assert "llvmpipe" in gpu.renderer  # these machines
    choice = backend.choose("auto", "selfie", str(presets_dir()), (256, 144))
    assert choice.backend == "onnxruntime" and "software GL (llvmpipe)" in choice.reason
    assert main(["plan", str(presets_dir() / "background_blur.json"), "--layers"]) == 0
    out = capsys.readouterr().out
    assert "segment.infer [onnxruntime: auto: software GL (llvmpipe)" in out
    assert "nn0   -> h_swish 16x72x128" in out and "head  Conv 'conv2d/conv': 3x144x256 -> 16x72x128" in out
    assert "in    Mul 'multiply': 16x36x64, 16x1x1 -> 16x36x64" in out  # squeeze-excite fused into a conv


def test_auto_falls_back_on_a_model_the_passes_cannot_run(tmp_path, monkeypatch):
    import onnx
    b = Builder(3, 16, 16)
    b.conv(3, 4, 3, pads=[1, 1, 1, 1])
    b.op("Erf")
    onnx.save(b.model(), tmp_path / "erf.onnx")
    monkeypatch.setattr(backend, "current_gl", lambda: ("AMD Radeon RX 7600 (radeonsi)", 16384))
    choice = backend.choose("auto", "erf", str(tmp_path / "erf.onnx"), (16, 16))
    assert choice.backend == "onnxruntime"
    assert "ONNX node 'n4_Erf' (Erf): op Erf is not supported" in choice.reason
    with pytest.raises(NetError, match="op Erf is not supported"):
        backend.choose("gl", "erf", str(tmp_path / "erf.onnx"), (16, 16))
    b = Builder(3, 16, 16)
    b.conv(3, 4, 3, pads=[1, 1, 1, 1])
    onnx.save(b.model(), tmp_path / "ok.onnx")
    assert backend.choose("auto", "ok", str(tmp_path / "ok.onnx"), (16, 16)).backend == "gl"


def test_gl_with_an_unsupported_model_is_exit_2(tmp_path, capsys):
    import onnx
    b = Builder(3, 16, 16)
    b.conv(3, 4, 3, pads=[1, 1, 1, 1])
    b.op("Erf")
    onnx.save(b.model(), tmp_path / "erf.onnx")
    preset = tmp_path / "p.json"
    doc = blur_preset("gl")
    doc["nodes"][1]["params"].update(model=str(tmp_path / "erf.onnx"), layout="NCHW")
    preset.write_text(json.dumps(doc))
    assert main(["plan", str(preset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "segment: model" in err[0] and "ONNX node 'n4_Erf' (Erf)" in err[0]
    assert "use backend onnxruntime or auto" in err[0]
    doc["nodes"][1]["params"]["backend"] = "auto"
    preset.write_text(json.dumps(doc))
    assert main(["plan", str(preset), "--layers"]) == 0  # auto runs it on onnxruntime; --layers says why not gl
    out = capsys.readouterr().out
    assert "backend onnxruntime" in out and "it cannot: model" in out and "op Erf is not supported" in out


def test_editor_tooltip_says_which_backend_and_why(gpu):
    """The editor's node tooltip shows the plan's note on the node (editor/timing.plan_notes)."""
    from fusegraph.editor.timing import plan_notes
    from fusegraph.runtime.compiler import describe

    for name, want in (("gl", "gl: asked for"), ("auto", "onnxruntime: auto: software GL (llvmpipe)")):
        engine = Engine(parse_graph(blur_preset(name)), gpu=gpu)
        engine.open()
        try:
            notes = plan_notes(describe(engine.plan), "segment")
        finally:
            engine.close()
        assert len(notes) == 1 and notes[0].startswith(want)
        assert plan_notes(describe(engine.plan), "segmen") == []
