"""`fusegraph plan --layers`: each ONNX node, the pass it landed in, tensor shapes, and texture
reads per output value: one channel per texel and one target, packed four per texel, packed
with several render targets (what the passes do)."""
from __future__ import annotations

from fusegraph.nodes.lib.nn.compile import CompiledNet


def shape(c: CompiledNet, name: str) -> str:
    if name in c.net.consts:
        v = c.net.consts[name]
        return "scalar" if v.size == 1 else f"const[{v.size}]"
    t = c.net.tensors[name]
    return f"{t.channels}x{t.height}x{t.width}"


def layers(c: CompiledNet, one_target: CompiledNet, unfused: CompiledNet) -> str:
    net = c.net
    lines = [f"  {len(c.passes)} passes fused ({len(unfused.passes)} with one pass per op), {c.mrt} render targets "
             f"at most; reads per output value: unpacked / packed / packed + MRT"]
    for p, code, one in zip(c.passes, c.code, one_target.code):
        t = net.tensors[p.out]
        aw, ah = t.atlas
        lines.append(f"  {p.name.split(':')[0]:<5} -> {p.out} {shape(c, p.out)} as {t.textures} texture(s) of {aw}x{ah}; "
                     f"reads {code.reads_unpacked:.2f} / {one.reads:.2f} / {code.reads:.2f}")
        for op in p.ops:
            where = "in" if op in p.prologue else "after" if op in p.epilogue else "head"
            ins = ", ".join(shape(c, i) for i in op.inputs)
            names = "+".join(f"{op.onnx_op} '{n}'" for n in op.onnx_nodes)
            lines.append(f"        {where:<5} {names}: {ins} -> {shape(c, op.output)}")
    lines.append(f"  per inference: {texel_reads(c) / 1e6:.2f} M texel reads, {texel_writes(c) / 1e6:.3f} M writes fused; "
                 f"{texel_reads(unfused) / 1e6:.2f} M reads, {texel_writes(unfused) / 1e6:.3f} M writes one pass per op")
    return "\n".join(lines)


def texel_writes(c: CompiledNet) -> int:
    """Texels the passes of one inference write (every stored tensor's textures)."""
    return sum(c.net.tensors[code.out].atlas[0] * c.net.tensors[code.out].atlas[1] * c.net.tensors[code.out].textures
               for code in c.code)


def texel_reads(c: CompiledNet) -> float:
    """Texel fetches of one inference: reads per output value x values computed (padded lanes too)."""
    total = 0.0
    for code in c.code:
        t = c.net.tensors[code.out]
        w, h = t.atlas
        total += code.reads * 4 * t.textures * w * h
    return total
