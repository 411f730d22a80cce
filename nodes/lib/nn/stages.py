"""A compiled network as the neural_net node's GPU stages: one thick stage per pass (its packed
tensors are values of type tensorN: N textures, float32), then the mask picked from the chosen
output (thin, fused into the last pass, when that output is one texel; else a small thick stage)."""
from __future__ import annotations

from fusegraph.nodes.contract import Constant, GpuStage, ShaderSource
from fusegraph.nodes.lib.nn.compile import CompiledNet
from fusegraph.nodes.lib.nn.ir import NetError

ACTIVATIONS = {"none": 0, "sigmoid": 1, "softmax": 2}


def tensor_type(textures: int) -> str:
    return f"tensor{textures}"


def net_stages(c: CompiledNet, input_ref: str, first: int, output: int, channel: int, activation: str,
               model: str) -> list[GpuStage]:
    """Stages numbered from `first`; the network's input tensor is the node's stage `input_ref`."""
    net = c.net
    if output >= len(net.outputs):
        raise NetError(f"model '{model}' has {len(net.outputs)} output(s); output {output} does not exist")
    ref = {net.input: input_ref}
    stages: list[GpuStage] = []
    for p, code in zip(c.passes, c.code):
        out = net.tensors[code.out]
        stages.append(GpuStage(
            "thick", code.fn, ShaderSource.inline(code.glsl, f"{model}.{p.name}"), tuple(ref[n] for n in code.inputs),
            tuple(tensor_type(net.tensors[n].textures) for n in code.inputs), tensor_type(out.textures), out.atlas,
            constants=tuple(Constant(f"k{i}", data) for i, (_, data) in enumerate(code.constants)),
            cost=max(code.reads, 0.1), label=p.name))
        ref[code.out] = f"@{first + len(stages) - 1}"
    t = net.tensors[net.outputs[output]]
    if channel >= t.channels:
        raise NetError(f"model '{model}' output {output} has {t.channels} channel(s); channel {channel} does not exist")
    consts = (str(channel), str(t.channels), str(ACTIVATIONS[activation]))
    if t.slices == 1:
        stages.append(GpuStage("thin", "fg_nn_pick", "neural_net.glsl", (ref[t.name],), (tensor_type(1),), "mask",
                               (t.width, t.height), consts=consts, label="pick"))
        return stages
    stages.append(GpuStage("thick", "fg_nn_pick_slices", ShaderSource.inline(_pick_slices(t), f"{model}.pick"),
                           (ref[t.name],), (tensor_type(t.textures),), "mask", (t.width, t.height), consts=consts,
                           label="pick"))
    return stages


def _pick_slices(t) -> str:
    """Channel `ch` of a tensor of several slices (softmax reads them all)."""
    params = ", ".join(f"sampler2D s{k}" for k in range(t.textures))
    lines = ['#include "nn_ops.glsl"',
             f"vec4 fg_nn_slice(int s, ivec2 q, {params}) {{",
             f"    int g = s / {t.textures}; int r = s - g * {t.textures}; vec4 v = vec4(0.0);"]
    lines += [f"    if (r == {k}) v = nn_at(s{k}, g, q, {t.width}, {t.height}, {t.cols});" for k in range(t.textures)]
    args = ", ".join(f"s{k}" for k in range(t.textures))
    lines += ["    return v;", "}",
              f"vec4 fg_nn_pick_slices({params}, ivec2 p, int ch, int count, int act) {{",
              f"    float v = fg_nn_slice(ch / 4, p, {args})[ch % 4];",
              "    if (act == 1) v = 1.0 / (1.0 + exp(-v));",
              "    if (act == 2) {",
              "        float m = -3.4e38;",
              f"        for (int c = 0; c < count; c++) m = max(m, fg_nn_slice(c / 4, p, {args})[c % 4]);",
              "        float sum = 0.0;",
              f"        for (int c = 0; c < count; c++) sum += exp(fg_nn_slice(c / 4, p, {args})[c % 4] - m);",
              "        v = exp(v - m) / sum;",
              "    }",
              "    return vec4(clamp(v, 0.0, 1.0), 0.0, 0.0, 1.0);", "}"]
    return "\n".join(lines)
