"""The network compiler's representation: tensors of one image (N = 1, NCHW) and ops on them.

A tensor of C channels is ceil(C/4) slices of RGBA texels (channel 4s + k in slice s, lane k).
Its slices are spread over T textures (T = min(slices, mrt)) so one pass can write T slices at
once through multiple render targets; slice s lives in texture s % T, as tile s // T of that
texture, tiles laid out in rows of `cols` (an atlas: one texture holds many slices).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class NetError(Exception):
    """A model the compiler cannot take (unsupported op or attribute, dynamic shape, too large)."""


@dataclass
class Tensor:
    name: str
    channels: int
    height: int
    width: int
    textures: int = 1  # T: set by layout()
    cols: int = 1  # tiles per row of each texture
    rows: int = 1

    @property
    def slices(self) -> int:
        return -(-self.channels // 4)

    @property
    def groups(self) -> int:
        """Tiles per texture: slice groups of T slices each."""
        return -(-self.slices // self.textures)

    @property
    def padded(self) -> int:
        """Channels including the unused lanes and slices of the last group (weights are zero there)."""
        return self.groups * self.textures * 4

    @property
    def atlas(self) -> tuple[int, int]:
        return self.cols * self.width, self.rows * self.height

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def layout(self, mrt: int, max_texture: int) -> None:
        self.textures = max(1, min(self.slices, mrt))
        g = self.groups
        self.cols = max(1, min(g, max_texture // max(self.width, 1)))
        self.rows = -(-g // self.cols)
        w, h = self.atlas
        if w > max_texture or h > max_texture:
            raise NetError(f"tensor '{self.name}' ({self.channels}x{self.height}x{self.width}) needs a "
                           f"{w}x{h} texture; the GPU allows {max_texture}")


@dataclass
class Op:
    """kind: conv, conv_transpose, unary, binary, global_pool, pool, resize, concat, softmax, pad.

    inputs are tensor names or names of constants (Net.consts: a scalar or one value per channel)."""

    kind: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    onnx_nodes: list[str] = field(default_factory=list)  # the ONNX nodes folded into this op
    onnx_op: str = ""

    @property
    def thin(self) -> bool:
        return self.kind in ("unary", "binary")

    @property
    def label(self) -> str:
        return f"{self.onnx_op} '{self.onnx_nodes[0]}'" if self.onnx_nodes else self.kind


@dataclass
class Net:
    name: str
    input: str  # the tensor the image feeds (after any absorbed boundary transpose)
    input_layout: str  # "NHWC" or "NCHW": how the model's own input is laid out
    outputs: list[str]  # tensors of the model's outputs (before any absorbed transpose)
    output_layouts: list[str]
    tensors: dict[str, Tensor]
    ops: list[Op]
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # for binary ops: scalar or (C,)

    def consumers(self) -> dict[str, list[Op]]:
        use: dict[str, list[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i in self.tensors:
                    use.setdefault(i, []).append(op)
        return use

    def producer(self) -> dict[str, Op]:
        return {op.output: op for op in self.ops}
