"""A compiled network run on its own GL context: its input uploaded, its passes drawn, its outputs
read back. Tests compare it with onnxruntime layer by layer and benchmarks time it; in a graph
the engine draws the same GLSL functions as the neural_net node's stages."""
from __future__ import annotations

import moderngl
import numpy as np

from fusegraph.nodes.lib.nn.codegen import PassCode
from fusegraph.nodes.lib.nn.compile import CompiledNet
from fusegraph.nodes.lib.nn.ir import Net, Tensor
from fusegraph.runtime.codegen import VERTEX
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.resources import shader_source


def pack(x: np.ndarray, t: Tensor) -> list[np.ndarray]:
    """CxHxW -> one RGBA atlas (HxWx4 per texture) per texture of `t`."""
    c, h, w = x.shape
    full = np.zeros((t.padded, h, w), np.float32)
    full[:c] = x
    slices = full.reshape(-1, 4, h, w).transpose(0, 2, 3, 1)  # S x H x W x 4
    aw, ah = t.atlas
    out = []
    for k in range(t.textures):
        atlas = np.zeros((ah, aw, 4), np.float32)
        for gi in range(t.groups):
            y, x0 = divmod(gi, t.cols)
            atlas[y * h:(y + 1) * h, x0 * w:(x0 + 1) * w] = slices[gi * t.textures + k]
        out.append(atlas)
    return out


def unpack(atlases: list[np.ndarray], t: Tensor) -> np.ndarray:
    """The inverse of pack: CxHxW float32."""
    h, w = t.height, t.width
    slices = np.zeros((t.groups * t.textures, h, w, 4), np.float32)
    for k, atlas in enumerate(atlases):
        for gi in range(t.groups):
            y, x0 = divmod(gi, t.cols)
            slices[gi * t.textures + k] = atlas[y * h:(y + 1) * h, x0 * w:(x0 + 1) * w]
    return slices.transpose(0, 3, 1, 2).reshape(-1, h, w)[:t.channels]


def program_text(code: PassCode, net: Net) -> str:
    """A fragment shader around one pass's function: its samplers, targets and main()."""
    t_out = net.tensors[code.out].textures
    lines = ["#version 330 core", shader_source("nn_ops.glsl")]
    lines.append(code.glsl.replace('#include "nn_ops.glsl"', ""))
    args = [f"x{i}_{k}" for i, n in enumerate(code.inputs) for k in range(net.tensors[n].textures)]
    args += [f"k{i}" for i in range(len(code.constants))]
    lines += [f"uniform sampler2D {a};" for a in args]
    lines += [f"layout(location = {k}) out vec4 o{k}_;" for k in range(t_out)]
    call = ", ".join(args + ["ivec2(gl_FragCoord.xy)"])
    if t_out == 1:
        lines.append(f"void main() {{ o0_ = {code.fn}({call}); }}")
    else:
        outs = ", ".join(f"o{k}_" for k in range(t_out))
        lines.append(f"void main() {{ {code.fn}({call}, {outs}); }}")
    return "\n".join(lines)


class GlNet:
    """The compiled net's textures (f2: half float, f4: float32), constants and programs."""

    def __init__(self, compiled: CompiledNet, gpu: Gpu, dtype: str = "f2"):
        self.c, self.gpu, self.dtype = compiled, gpu, dtype
        net = compiled.net
        self.textures: dict[str, list] = {}
        for name in sorted(compiled.schedule.stored):
            t = net.tensors[name]
            self.textures[name] = [gpu.texture(t.atlas, 4, "f4" if name == net.input else dtype)
                                   for _ in range(t.textures)]
        self.steps = []
        for code in compiled.code:
            prog, vao = gpu.program(program_text(code, net), VERTEX)
            consts = []
            for i, (_, data) in enumerate(code.constants):
                tex = gpu.texture((data.shape[1], data.shape[0]), 4, "f4")
                gpu.write(tex, data)
                tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
                consts.append(tex)
            samplers = [tex for n in code.inputs for tex in self.textures[n]] + consts
            names = [f"x{i}_{k}" for i, n in enumerate(code.inputs) for k in range(len(self.textures[n]))]
            names += [f"k{i}" for i in range(len(consts))]
            for unit, nm in enumerate(names):
                if nm in prog:
                    prog[nm].value = unit
            fbo = gpu.framebuffer(self.textures[code.out])
            self.steps.append((prog, vao, fbo, samplers, consts))

    def run(self, x: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
        net = self.c.net
        t_in = net.tensors[net.input]
        for tex, data in zip(self.textures[net.input], pack(np.asarray(x, np.float32), t_in)):
            self.gpu.write(tex, data)
        self.draw()
        return [self.read(n) for n in (outputs or net.outputs)]

    def draw(self) -> None:
        for prog, vao, fbo, samplers, _ in self.steps:
            fbo.use()
            for unit, tex in enumerate(samplers):
                tex.use(unit)
            vao.render(vertices=3)

    def read(self, name: str) -> np.ndarray:
        t = self.c.net.tensors[name]
        return unpack([self.gpu.read(tex, self.dtype).astype(np.float32) for tex in self.textures[name]], t)

    def release(self) -> None:
        for prog, vao, fbo, samplers, consts in self.steps:
            self.gpu.release_framebuffer(fbo)
            for tex in consts:
                self.gpu.release_texture(tex)
        for texs in self.textures.values():
            for tex in texs:
                self.gpu.release_texture(tex)
        self.steps, self.textures = [], {}
