"""ONNX file -> compiled passes, cached per file, size and options."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from fusegraph.nodes.lib.nn.codegen import PassCode, generate
from fusegraph.nodes.lib.nn.fusion import Schedule, schedule
from fusegraph.nodes.lib.nn.ir import Net


@dataclass
class CompiledNet:
    net: Net
    schedule: Schedule
    code: list[PassCode]
    fused: bool
    mrt: int

    @property
    def passes(self):
        return self.schedule.passes


def compile_net(net: Net, fused: bool = True, mrt: int = 4, max_texture: int = 16384, prefix: str = "nn") -> CompiledNet:
    for t in net.tensors.values():
        t.layout(mrt, max_texture)
    sched = schedule(net, fused)
    code = [generate(sched, p, prefix) for p in sched.passes]
    return CompiledNet(net, sched, code, fused, mrt)


def compile_file(path: str, name: str, size: tuple[int, int] | None = None, fused: bool = True, mrt: int = 4,
                 max_texture: int = 16384) -> CompiledNet:
    return _cached(path, os.path.getmtime(path), name, size, fused, mrt, max_texture)


@lru_cache(maxsize=8)
def _cached(path, mtime, name, size, fused, mrt, max_texture) -> CompiledNet:
    from fusegraph.nodes.lib.nn.import_onnx import load
    return compile_net(load(path, name, size), fused, mrt, max_texture)
