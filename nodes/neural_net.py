"""neural_net: runs an ONNX model (onnxruntime) on the picture; its output comes back as a mask.

Inputs:  in (video)
Outputs: out (mask, at the model's output size; e.g. 256x144 for "selfie")
Params:  model (a cached name such as "selfie", or a path to an .onnx file); input size (0: the
         model's own), layout (NHWC/NCHW), channel order, value range or mean/std; which output
         and channel; activation; threads; backend (auto, onnxruntime, gl); sync (live, onnxruntime:
         latest | delay_video)
Notes:   the frame is stretched (no letterbox) and normalised on the GPU; only the small
         tensor is read back, and the result returns as a small mask texture. Sessions use one
         intra-op thread without spinning by default, so inference does not fight the rest of
         the frame; execution providers are taken in order when present (CUDA, ROCm, CoreML,
         DirectML, then CPU). Offline runs are synchronous and exact. Backend gl: the network
         itself runs as fused shader passes (nodes/lib/nn), nothing read back; auto takes
         onnxruntime on software GL (faster there) or when the model does not compile to passes,
         and `fusegraph plan` says which and why. Live, onnxruntime's inference runs on a thread
         of its own on the newest frame (runtime/beside_frame.py): with `sync: latest` the picture
         goes on with the newest mask (its age in frames shows on the node), with `delay_video`
         the picture is held back to the frame the mask was made from (for recording).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from fusegraph.nodes.lib import onnx_session
from fusegraph.nodes.lib.model_registry import resolve
from fusegraph.nodes.contract import Body, CpuStage, GpuStage, NodeError, NodeSpec, Params, Port, Uniform
from fusegraph.nodes.lib.nn.ir import NetError
from fusegraph.nodes.resize import resize_stage

Positive = Annotated[float, Field(gt=0.0)]
RANGES = {"0..1": (1.0, 0.0), "-1..1": (2.0, -1.0), "0..255": (255.0, 0.0)}


class NeuralNetParams(Params):
    model: str = Field("selfie", description="a cached model name (fusegraph models list) or a path to .onnx")
    input_width: int = Field(0, ge=0, le=4096, description="0: the model's own input width")
    input_height: int = Field(0, ge=0, le=4096, description="0: the model's own input height")
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    channels: Literal["RGB", "BGR"] = "RGB"
    normalize: Literal["0..1", "-1..1", "0..255", "mean_std"] = "0..1"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # with normalize = mean_std, on 0..1 values
    # a std of 0 would divide by zero at run time: refused when the preset is validated
    std: tuple[Positive, Positive, Positive] = Field((0.229, 0.224, 0.225), description="with normalize = mean_std")
    output: int = Field(0, ge=0, le=64, description="which model output")
    channel: int = Field(0, ge=0, le=4096, description="which channel of that output")
    activation: Literal["none", "sigmoid", "softmax"] = "none"
    threads: int = Field(1, ge=1, le=64, description="intra-op threads")
    backend: Literal["auto", "onnxruntime", "gl"] = Field(
        "auto", description="gl: the network as GPU passes; auto: onnxruntime on software GL or when the model "
        "does not compile to passes (fusegraph plan says which and why)")
    sync: Literal["latest", "delay_video"] = Field(
        "latest", description="live, onnxruntime: use the newest mask (latest) or hold the video back to match it "
        "(delay_video)")


def scale_offset(p: NeuralNetParams) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel value = rgb * scale + offset, rgb in 0..1."""
    if p.normalize == "mean_std":
        if min(p.std) <= 0:
            raise NodeError(f"std must be positive, got {p.std}")
        return tuple(1.0 / s for s in p.std), tuple(-m / s for m, s in zip(p.mean, p.std))
    s, o = RANGES[p.normalize]
    return (s, s, s), (o, o, o)


def build(p: NeuralNetParams, ins):
    net = onnx_session.open_model(p.model, p.threads)
    size = net.input_size(p.layout, p.input_width, p.input_height)
    out_size = net.output_size(p.layout, p.output, p.channel, size)
    prep = [
        resize_stage("in", "video", ins["in"].size, size, "area", cost=2, label="resize"),  # a clean stretch
        GpuStage("thin", "fg_normalize", "neural_net.glsl", ("@0",), ("video",), "video", size,
                 (Uniform("scale", "vec3"), Uniform("offset", "vec3")),
                 lambda q: dict(zip(("scale", "offset"), scale_offset(q))),
                 consts=("true" if p.channels == "BGR" else "false",), label="normalize"),
    ]
    choice = _choose(p, size)
    if choice.backend == "gl":
        from fusegraph.nodes.lib.nn.stages import net_stages
        prep[1] = replace(prep[1], out_type="tensor1", label=f"normalize [gl: {choice.reason}]")
        try:
            stages = net_stages(choice.compiled, "@1", 2, p.output, p.channel, p.activation, p.model)
        except NetError as exc:
            raise NodeError(str(exc)) from None
        return Body(prep + stages, {"out": len(prep) + len(stages) - 1})
    infer = CpuStage(("@1",), ("video",), "mask", out_size, lambda q, xs: infer_mask(q, xs[0]),
                     label=f"infer [onnxruntime: {choice.reason}]", float_inputs=True, live=lambda q: q.sync)
    return Body(prep + [infer], {"out": 2})


def _choose(p: NeuralNetParams, size: tuple[int, int]):
    from fusegraph.nodes.lib.nn.backend import choose
    try:
        return choose(p.backend, p.model, str(resolve(p.model)), size)
    except NetError as exc:  # backend gl asked for, the model does not compile: the user's to mend
        raise NodeError(f"{exc}; use backend onnxruntime or auto") from None


def infer_mask(p: NeuralNetParams, tensor: np.ndarray) -> np.ndarray:
    """HxWx4 normalised float32 -> HxW float32 mask in [0,1]."""
    net = onnx_session.open_model(p.model, p.threads)
    x = tensor[None, :, :, :3]
    if p.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    y = net.run(np.ascontiguousarray(x, dtype=np.float32), p.output)
    y = y[0] if p.layout == "NCHW" else np.moveaxis(y[0], -1, 0)  # -> C x H x W
    if p.activation == "softmax":
        e = np.exp(y - y.max(axis=0, keepdims=True))
        y = e / e.sum(axis=0, keepdims=True)
    m = y[p.channel]
    if not np.isfinite(m).all():  # clip would turn NaN into a plausible-looking 0 mask
        bad = int((~np.isfinite(tensor[..., :3])).sum())
        given = (f"its input had {bad} non-finite values" if bad else
                 f"its input was finite, in [{float(tensor[..., :3].min()):.3g}, {float(tensor[..., :3].max()):.3g}]")
        raise NodeError(f"model '{p.model}' output NaN or infinite values ({given}; is the input normalisation "
                        "right?)")
    if p.activation == "sigmoid":
        m = 1.0 / (1.0 + np.exp(-m))
    return np.clip(m, 0.0, 1.0).astype(np.float32)


SPEC = NodeSpec(
    type="neural_net", category="ai", role="cpu", Params=NeuralNetParams, doc=__doc__,
    inputs=(Port("in", "video"),), outputs=(Port("out", "mask"),), build=build,
    structure=lambda p: (p.model, p.input_width, p.input_height, p.layout, p.output, p.channel, p.channels,
                         p.backend, p.activation if p.backend != "onnxruntime" else None),
)
