"""Ops -> passes. A pass is one thick op (convolution, pool, resize, ...) with thin ops fused
before it (its inputs computed as it reads them: a squeeze-excite channel scale, a residual
add, an upscale) and after it (bias is in the op; activation, residual add, channel scale).

Fused: a thin op joins the pass whose result it takes when that result has no other reader and
the shapes match (epilogue); otherwise, when its own result has exactly one reader, it is
computed inside that reader (prologue; never stored); a Resize with one reader likewise (the
upscaled tensor is never stored). Unfused: one pass per op, every tensor stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fusegraph.nodes.lib.nn.ir import Net, NetError, Op

NO_PROLOGUE = ("concat", "softmax")  # they pick channels one by one: their inputs are stored


@dataclass
class Pass:
    index: int
    head: Op  # the thick op, or the thin op of an elementwise pass
    out: str  # the tensor the pass stores
    epilogue: list[Op] = field(default_factory=list)
    prologue: list[Op] = field(default_factory=list)  # ops computed inside (for --layers)
    order: int = 0  # position of its last op in the net: passes run in this order
    # passes of a 1x1 result read only here, computed whole at the start of this one (the
    # squeeze-excite's mean and two 1x1 convolutions in one pass)
    inner: list["Pass"] = field(default_factory=list)

    @property
    def ops(self) -> list[Op]:
        return [*(o for p in self.inner for o in p.ops), *self.prologue, self.head, *self.epilogue]

    @property
    def name(self) -> str:
        return f"nn{self.index}:{self.head.onnx_nodes[0] if self.head.onnx_nodes else self.head.kind}"


@dataclass
class Schedule:
    net: Net
    passes: list[Pass]
    stored: set[str]  # tensors kept in textures
    fused: bool


def _grouped(op: Op) -> bool:
    """A convolution that is neither dense nor depthwise: it reads its input channel by channel."""
    if op.kind != "conv" or op.attrs["group"] == 1:
        return False
    w = op.attrs["weight"]
    return not (w.shape[1] == 1 and w.shape[0] == op.attrs["group"])


def schedule(net: Net, fused: bool = True) -> Schedule:
    users = net.consumers()
    outputs = set(net.outputs)
    t = net.tensors
    passes: list[Pass] = []
    tail: dict[str, Pass] = {}  # tensor -> the pass whose result it currently is
    inline: dict[str, Op] = {}
    position = {id(op): i for i, op in enumerate(net.ops)}

    def single_reader(name: str) -> Op | None:
        r = users.get(name, [])
        return r[0] if len(r) == 1 and name not in outputs and len({id(o) for o in r}) == 1 else None

    def may_inline(op: Op) -> bool:
        reader = single_reader(op.output)
        if reader is None or reader.kind in NO_PROLOGUE or _grouped(reader):
            return False
        return reader.inputs.count(op.output) == 1

    for op in net.ops:
        if fused and op.thin:
            joined = False
            for x in op.inputs:
                p = tail.get(x)
                if p is not None and single_reader(x) is op and t[x].shape == t[op.output].shape:
                    p.epilogue.append(op)
                    p.out = op.output
                    del tail[x]
                    tail[op.output] = p
                    p.order = position[id(op)]
                    joined = True
                    break
            if joined:
                continue
            if may_inline(op):
                inline[op.output] = op
                continue
        elif fused and op.kind == "resize" and may_inline(op):
            inline[op.output] = op
            continue
        p = Pass(len(passes), op, op.output, order=position[id(op)])
        passes.append(p)
        tail[op.output] = p
    passes.sort(key=lambda p: p.order)
    # record where each inlined op landed (its reader's pass), for `plan --layers`
    owner = {id(o): p for p in passes for o in p.ops}
    for name, op in sorted(inline.items(), key=lambda kv: -position[id(kv[1])]):
        reader = users[name][0]
        p = owner.get(id(reader))
        if p is None:
            raise NetError(f"model '{net.name}': internal: {op.label} has no pass")
        p.prologue.insert(0, op)
        owner[id(op)] = p
    if fused:
        passes = _merge_small(passes, users, outputs, owner, t)
    for i, p in enumerate(passes):
        p.index = i
    stored = {p.out for p in passes} | {net.input}
    return Schedule(net, passes, stored, fused)


def _merge_small(passes: list[Pass], users, outputs, owner, tensors) -> list[Pass]:
    """A pass whose result is 1x1 and read by one op of another 1x1 pass moves inside that pass:
    each of its few invocations computes it whole (a handful of texels) instead of a pass of its own."""
    kept = []
    for p in passes:  # in order: a pass's readers come after it
        readers = users.get(p.out, [])
        q = owner.get(id(readers[0])) if len(readers) == 1 else None
        small = tensors[p.out].shape[1:] == (1, 1) and q is not None and tensors[q.out].shape[1:] == (1, 1)
        if small and q is not p and p.out not in outputs:
            q.inner += p.inner + [p]
            p.inner = []
            continue
        kept.append(p)
    return kept

