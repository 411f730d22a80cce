"""A pass -> one GLSL function (the node contract's thick stage: packed-tensor samplers, then
constant textures, then `ivec2 p`; it returns the vec4, or writes one `out vec4` per texture of
its result) plus its constant textures (weights, biases, per-channel constants: float32 RGBA).

The output texel p is tile g of the result's textures, pixel q of that tile; the function
computes slices g*T .. g*T+T-1 (T render targets: each input texel and weight is read once for
all of them). Thin ops around the head become expressions: an input is computed where it is
read (zero outside the tensor for padding), the result passes through the epilogue.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fusegraph.nodes.lib.nn.fusion import Pass, Schedule, _grouped
from fusegraph.nodes.lib.nn.ir import NetError, Op, Tensor

MAX_SAMPLERS = 16  # the engine's limit per pass (runtime/compiler.py)
INCLUDE = '#include "nn_ops.glsl"\n'


@dataclass
class PassCode:
    fn: str
    glsl: str
    inputs: list[str]  # stored tensors, in sampler order (each as its T textures)
    constants: list[tuple[str, np.ndarray]]  # (name, HxWx4 float32), after the inputs
    out: str
    reads: float  # texel fetches per output value, as generated (packed, T targets)
    reads_unpacked: float  # the same op with one channel per texel and one target


@dataclass
class _Gen:
    sched: Schedule
    p: Pass
    prefix: str
    lines: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    constants: list[tuple[str, np.ndarray]] = field(default_factory=list)
    tmp: int = 0
    made_by: dict = field(default_factory=dict)  # tensor -> the op that makes it
    subs: dict = field(default_factory=dict)  # tensor of an inner pass -> its local array
    fetches: float = 0.0  # per invocation
    mult: float = 1.0  # how many times the lines being written run per invocation

    @property
    def net(self):
        return self.sched.net

    def tensor(self, name: str) -> Tensor:
        return self.net.tensors[name]

    def var(self, stem: str = "v") -> str:
        self.tmp += 1
        return f"{stem}{self.tmp}"

    def sampler(self, name: str, t: int) -> str:
        if name not in self.inputs:
            self.inputs.append(name)
        return f"x{self.inputs.index(name)}_{t}"

    def constant(self, key: str, data: np.ndarray) -> str:
        for i, (k, _) in enumerate(self.constants):
            if k == key:
                return f"k{i}"
        self.constants.append((key, np.ascontiguousarray(data, dtype=np.float32)))
        return f"k{len(self.constants) - 1}"

    def fetch(self, samp: str, g: str, q: str, t: Tensor, indent: str) -> str:
        self.fetches += self.mult
        v = self.var()
        self.lines.append(f"{indent}vec4 {v} = nn_at({samp}, {g}, {q}, {t.width}, {t.height}, {t.cols});")
        return v

    def channel_vector(self, key: str, values: np.ndarray, like: Tensor) -> str:
        """Per-channel values as a (padded slices) x 1 RGBA constant: slice s at texel s."""
        v = np.zeros(like.padded, np.float32)
        v[:len(values)] = values
        return self.constant(key, v.reshape(1, -1, 4))

    # expressions: the value of tensor `name`, texture t of its group g, at pixel q
    def expr(self, name: str, t: int, g: str, q: str, env: dict[str, str], indent: str) -> str:
        if name in env:
            return env[name]
        if name in self.subs:  # an inner pass's result, computed at the top of this pass
            T = self.tensor(name).textures
            return f"{self.subs[name]}[({g}) * {T} + {t}]"
        if name in self.net.consts:
            c = self.net.consts[name]
            if c.size == 1:
                return f"vec4({float(c[0])!r})"
            like = self.tensor(self.p.out)
            k = self.channel_vector(name, c, like)
            T = like.textures
            self.fetches += self.mult
            v = self.var()
            self.lines.append(f"{indent}vec4 {v} = texelFetch({k}, ivec2(({g}) * {T} + {t}, 0), 0);")
            return v
        if name in self.sched.stored:
            return self.fetch(self.sampler(name, t), g, q, self.tensor(name), indent)
        op = self.made_by[name]
        if op.kind == "unary":
            x = self.expr(op.inputs[0], t, g, q, env, indent)
            return self.unary(op, x, indent)
        if op.kind == "binary":
            a = self.expr(op.inputs[0], t, g, q, env, indent)
            b = self.expr(op.inputs[1], t, g, q, env, indent)
            v = self.var()
            self.lines.append(f"{indent}vec4 {v} = {a} {op.attrs['fn']} {b};")
            return v
        if op.kind == "resize":
            return self.resize(op, t, g, q, env, indent)
        raise NetError(f"model '{self.net.name}': internal: {op.label} is neither stored nor inlined")

    def unary(self, op: Op, x: str, indent: str) -> str:
        a = op.attrs
        fn = a["fn"]
        body = {
            "relu": f"max({x}, 0.0)",
            "clip": f"clamp({x}, {a.get('lo', 0.0)!r}, {a.get('hi', 0.0)!r})",
            "leaky": f"mix({x}, {x} * {a.get('alpha', 0.0)!r}, lessThan({x}, vec4(0.0)))",
            "hardswish": f"nn_hardswish({x})",
            "hardsigmoid": f"clamp({x} * {a.get('alpha', 0.0)!r} + {a.get('beta', 0.0)!r}, 0.0, 1.0)",
            "sigmoid": f"nn_sigmoid({x})",
            "tanh": f"nn_tanh({x})",
        }[fn]
        v = self.var()
        self.lines.append(f"{indent}vec4 {v} = {body};")
        return v

    def resize(self, op: Op, t: int, g: str, q: str, env: dict[str, str], indent: str) -> str:
        src = self.tensor(op.inputs[0])
        out = self.tensor(op.output)
        sy, sx = op.attrs["scales"]
        ctm = op.attrs["ctm"]
        n = f"vec2({src.width}.0, {src.height}.0)"
        o = f"vec2({q})"
        if ctm == "half_pixel":
            coord = f"({o} + 0.5) / vec2({sx!r}, {sy!r}) - 0.5"
        elif ctm == "pytorch_half_pixel":
            coord = (f"vec2({out.width} > 1 ? ({o}.x + 0.5) / {sx!r} - 0.5 : 0.0, "
                     f"{out.height} > 1 ? ({o}.y + 0.5) / {sy!r} - 0.5 : 0.0)")
        elif ctm == "align_corners":
            fx = (src.width - 1) / (out.width - 1) if out.width > 1 else 0.0
            fy = (src.height - 1) / (out.height - 1) if out.height > 1 else 0.0
            coord = f"{o} * vec2({fx!r}, {fy!r})"
        else:
            coord = f"{o} / vec2({sx!r}, {sy!r})"
        c = self.var("c")
        if op.attrs["mode"] == "nearest":
            mode = op.attrs["nearest_mode"]
            pick = {"floor": f"floor({c})", "ceil": f"ceil({c})",
                    "round_prefer_floor": f"ceil({c} - 0.5)", "round_prefer_ceil": f"floor({c} + 0.5)"}[mode]
            self.lines.append(f"{indent}vec2 {c} = {coord};")
            i = self.var("i")
            self.lines.append(f"{indent}ivec2 {i} = clamp(ivec2({pick}), ivec2(0), ivec2({src.width - 1}, {src.height - 1}));")
            return self.expr(src.name, t, g, i, env, indent)
        self.lines.append(f"{indent}vec2 {c} = clamp({coord}, vec2(0.0), {n} - 1.0);")
        i0, i1, f = self.var("i"), self.var("i"), self.var("f")
        self.lines += [f"{indent}ivec2 {i0} = ivec2(floor({c}));",
                       f"{indent}ivec2 {i1} = min({i0} + 1, ivec2({src.width - 1}, {src.height - 1}));",
                       f"{indent}vec2 {f} = {c} - vec2({i0});"]
        a = self.expr(src.name, t, g, i0, env, indent)
        b = self.expr(src.name, t, g, f"ivec2({i1}.x, {i0}.y)", env, indent)
        cc = self.expr(src.name, t, g, f"ivec2({i0}.x, {i1}.y)", env, indent)
        d = self.expr(src.name, t, g, i1, env, indent)
        v = self.var()
        self.lines.append(f"{indent}vec4 {v} = mix(mix({a}, {b}, {f}.x), mix({cc}, {d}, {f}.x), {f}.y);")
        return v

    def pick_fn(self, name: str) -> str:
        """A helper reading slice s (dynamic) of stored tensor `name` at pixel q."""
        samps = [self.sampler(name, k) for k in range(self.tensor(name).textures)]
        return f"{self.prefix}{self.p.index}_pick{self.inputs.index(name)}", samps

    def pick_source(self, name: str, fn: str) -> str:
        t = self.tensor(name)
        params = ", ".join(f"sampler2D s{k}" for k in range(t.textures))
        body = [f"vec4 {fn}({params}, int s, ivec2 q) {{", f"    int g = s / {t.textures}; int r = s - g * {t.textures};",
                "    vec4 v = vec4(0.0);"]
        for k in range(t.textures):
            body.append(f"    if (r == {k}) v = nn_at(s{k}, g, q, {t.width}, {t.height}, {t.cols});")
        body += ["    return v;", "}"]
        return "\n".join(body)


def _weights_dense(w: np.ndarray, cin: Tensor, cout: Tensor, transpose: bool) -> np.ndarray:
    """Conv (Cout, Cin, kh, kw) or ConvTranspose (Cin, Cout, kh, kw) -> texel (ci, so*taps + tap) =
    the weights of output slice so's four channels from input channel ci."""
    if transpose:
        w = w.transpose(1, 0, 2, 3)
    co, ci, kh, kw = w.shape
    full = np.zeros((cout.padded, cin.padded, kh * kw), np.float32)
    full[:co, :ci] = w.reshape(co, ci, kh * kw)
    # (so, lane, ci, tap) -> rows so*taps + tap, columns ci, RGBA = lane
    full = full.reshape(cout.padded // 4, 4, cin.padded, kh * kw).transpose(0, 3, 2, 1)
    return full.reshape(cout.padded // 4 * kh * kw, cin.padded, 4)


def _weights_depthwise(w: np.ndarray, c: Tensor) -> np.ndarray:
    """(C, 1, kh, kw) -> texel (tap, s) = the weights of slice s's four channels at that tap."""
    n, _, kh, kw = w.shape
    full = np.zeros((c.padded, kh * kw), np.float32)
    full[:n] = w.reshape(n, kh * kw)
    return full.reshape(c.padded // 4, 4, kh * kw).transpose(0, 2, 1)


def _weights_grouped(w: np.ndarray, cout: Tensor) -> np.ndarray:
    """(Cout, Cin/g, kh, kw) -> texel (ci, so*taps + tap), lanes = output channels."""
    co, cig, kh, kw = w.shape
    full = np.zeros((cout.padded, cig, kh * kw), np.float32)
    full[:co] = w.reshape(co, cig, kh * kw)
    full = full.reshape(cout.padded // 4, 4, cig, kh * kw).transpose(0, 3, 2, 1)
    return full.reshape(cout.padded // 4 * kh * kw, cig, 4)


def generate(sched: Schedule, p: Pass, prefix: str) -> PassCode:
    g = _Gen(sched, p, prefix, made_by=sched.net.producer())
    out = g.tensor(p.out)
    T = out.textures
    I = "    "
    g.lines += [f"{I}ivec2 tile = p / ivec2({out.width}, {out.height});",
                f"{I}ivec2 q = p - tile * ivec2({out.width}, {out.height});",
                f"{I}int g = tile.y * {out.cols} + tile.x;"]
    helpers: list[str] = []
    unpacked = 0.0
    for k, inner in enumerate(p.inner):  # small passes (1x1 results) computed here, all their slices
        t_in = g.tensor(inner.out)
        name = f"sub{k}"
        g.subs[inner.out] = name
        g.lines += [f"{I}vec4 {name}[{t_in.groups * t_in.textures}];",
                    f"{I}for (int gs = 0; gs < {t_in.groups}; gs++) {{",
                    f"{I}int g = gs;",
                    f"{I}ivec2 q = ivec2(0);"]
        before = g.fetches
        rs = [f"{name}_{t}" for t in range(t_in.textures)]
        unpacked += _body(g, inner, rs, helpers)
        g.fetches = before + (g.fetches - before) * t_in.groups
        g.lines += [f"{I}{name}[gs * {t_in.textures} + {t}] = {v};" for t, v in enumerate(rs)] + [f"{I}}}"]
    g.p = p
    r = [f"r{t}" for t in range(T)]
    unpacked += _body(g, p, r, helpers)
    fn = f"{prefix}{p.index}"
    params = [f"sampler2D {g.sampler(n, t)}" for n in list(g.inputs) for t in range(g.tensor(n).textures)]
    params += [f"sampler2D k{i}" for i in range(len(g.constants))]
    samplers = len(params)
    if samplers > MAX_SAMPLERS:
        raise NetError(f"model '{sched.net.name}': pass {p.name} needs {samplers} textures; the engine binds at most "
                       f"{MAX_SAMPLERS} (try fewer render targets)")
    params.append("ivec2 p")
    if T == 1:
        sig = f"vec4 {fn}({', '.join(params)})"
        tail = [f"{I}return r0;"]
    else:
        sig = f"void {fn}({', '.join(params + [f'out vec4 o{t}' for t in range(T)])})"
        tail = [f"{I}o{t} = r{t};" for t in range(T)]
    ops = ", ".join(op.label for op in p.ops)
    text = "\n".join([INCLUDE.rstrip(), f"// {p.name}: {ops}", *helpers, sig + " {", *g.lines, *tail, "}", ""])
    return PassCode(fn, text, list(g.inputs), g.constants, p.out, g.fetches / (4 * T), unpacked)


def _body(g: _Gen, p: Pass, r: list[str], helpers: list[str]) -> float:
    """Lines computing the vec4s `r` (slices g*T + t of p's result at pixel q): the head, then the
    epilogue. Returns the reads per output value one channel per texel would take."""
    g.p = p
    head = p.head
    out = g.tensor(p.out)
    T = out.textures
    I = "    "
    unpacked = 0.0
    kind = head.kind
    hin = g.tensor(head.inputs[0]) if head.inputs and head.inputs[0] in g.net.tensors else None
    if head.thin:  # an elementwise pass: the op itself over its stored or inlined operands
        env: dict[str, str] = {}
        before = g.fetches
        for t in range(T):
            g.lines.append(f"{I}vec4 {r[t]};")
            g.lines.append(f"{I}{{")
            if head.kind == "unary":
                x = g.expr(head.inputs[0], t, "g", "q", env, I * 2)
                v = g.unary(head, x, I * 2)
            else:
                a = g.expr(head.inputs[0], t, "g", "q", env, I * 2)
                b = g.expr(head.inputs[1], t, "g", "q", env, I * 2)
                v = f"{a} {head.attrs['fn']} {b}"
            g.lines += [f"{I * 2}{r[t]} = {v};", f"{I}}}"]
        unpacked = (g.fetches - before) / T
    elif kind in ("conv", "conv_transpose"):
        unpacked = _conv(g, head, hin, out, r, helpers)
    elif kind in ("pool", "global_pool", "resize", "pad"):
        unpacked = _spatial(g, head, hin, out, r)
    elif kind in ("concat", "softmax"):
        unpacked = _channels(g, head, out, r, helpers)
    else:
        raise NetError(f"model '{g.net.name}': internal: no code for {head.label}")
    # epilogue: thin ops on the result, in order
    env_name = head.output
    for op in p.epilogue:
        before = g.fetches
        for t in range(T):
            env = {env_name: r[t]}
            g.lines.append(f"{I}{{")
            if op.kind == "unary":
                v = g.unary(op, r[t], I * 2)
            else:
                a = g.expr(op.inputs[0], t, "g", "q", env, I * 2)
                b = g.expr(op.inputs[1], t, "g", "q", env, I * 2)
                v = g.var()
                g.lines.append(f"{I * 2}vec4 {v} = {a} {op.attrs['fn']} {b};")
            g.lines += [f"{I * 2}{r[t]} = {v};", f"{I}}}"]
        unpacked += (g.fetches - before) / T
        env_name = op.output
    return unpacked


def _bias(g: _Gen, op: Op, out: Tensor, r: list[str]) -> None:
    k = g.channel_vector(f"{op.output}/bias", op.attrs["bias"], out)
    for t, v in enumerate(r):
        g.lines.append(f"    vec4 {v} = texelFetch({k}, ivec2(g * {out.textures} + {t}, 0), 0);")
    g.fetches += len(r)


def _conv(g: _Gen, op: Op, cin: Tensor, out: Tensor, r: list[str], helpers: list[str]) -> float:
    a = op.attrs
    w = a["weight"]
    kh, kw = a["kernel"]
    sy, sx = a["strides"]
    dy, dx = a["dilations"]
    pt, pl = a["pads"][0], a["pads"][1]
    taps = kh * kw
    I = "    "
    transpose = op.kind == "conv_transpose"
    depthwise = a["group"] != 1 and w.shape[1] == 1 and (transpose or w.shape[0] == a["group"])
    grouped = _grouped(op)
    _bias(g, op, out, r)
    if transpose and (dy, dx) == (1, 1):  # only taps with k = q + pad (mod stride) land on q
        g.lines += [f"{I}ivec2 kfirst = (q + ivec2({pl}, {pt})) % ivec2({sx}, {sy});",
                    f"{I}for (int ky = kfirst.y; ky < {kh}; ky += {sy}) for (int kx = kfirst.x; kx < {kw}; kx += {sx}) {{"]
        taps_run = -(-kh // sy) * -(-kw // sx)
    else:
        g.lines.append(f"{I}for (int ky = 0; ky < {kh}; ky++) for (int kx = 0; kx < {kw}; kx++) {{")
        taps_run = taps
    if transpose:
        g.lines += [f"{I * 2}ivec2 n = q + ivec2({pl}, {pt}) - ivec2(kx * {dx}, ky * {dy});",
                    f"{I * 2}ivec2 qq = n / ivec2({sx}, {sy});",
                    f"{I * 2}bool ok = all(greaterThanEqual(n, ivec2(0))) && qq * ivec2({sx}, {sy}) == n "
                    f"&& nn_inside(qq, {cin.width}, {cin.height});"]
        landing = -(-kh // sy) * -(-kw // sx)
    else:
        g.lines += [f"{I * 2}ivec2 qq = q * ivec2({sx}, {sy}) - ivec2({pl}, {pt}) + ivec2(kx * {dx}, ky * {dy});",
                    f"{I * 2}bool ok = nn_inside(qq, {cin.width}, {cin.height});"]
        landing = taps
    g.lines.append(f"{I * 2}int tap = ky * {kw} + kx;")
    if depthwise:
        k = g.constant(f"{op.output}/w", _weights_depthwise(w if not transpose else w, out))
        g.mult = taps_run
        before = g.fetches
        for t, v in enumerate(r):
            x = g.expr(cin.name, t, "g", "qq", {}, I * 2)
            g.lines.append(f"{I * 2}{v} += (ok ? {x} : vec4(0.0)) * texelFetch({k}, ivec2(tap, g * {out.textures} + {t}), 0);")
        cost = (g.fetches - before) / (taps_run * len(r))
        g.fetches += taps_run * len(r)
        g.lines.append(f"{I}}}")
        g.mult = 1.0
        return landing * (cost + 1) + 1
    if grouped:
        cig = w.shape[1]
        cog = w.shape[0] // a["group"]
        k = g.constant(f"{op.output}/w", _weights_grouped(w, out))
        fn, samps = g.pick_fn(cin.name)
        helpers.append(g.pick_source(cin.name, fn))
        g.mult = taps_run * cig
        for t, v in enumerate(r):
            for lane in range(4):
                g.lines += [f"{I * 2}{{ int co = (g * {out.textures} + {t}) * 4 + {lane};",
                            f"{I * 2}  int base = min(co / {cog}, {a['group'] - 1}) * {cig};",
                            f"{I * 2}  for (int ci = 0; ci < {cig}; ci++) {{",
                            f"{I * 2}    int c = base + ci;",
                            f"{I * 2}    float xv = ok ? {fn}({', '.join(samps)}, c / 4, qq)[c % 4] : 0.0;",
                            f"{I * 2}    {v}[{lane}] += xv * texelFetch({k}, ivec2(ci, (g * {out.textures} + {t}) * {taps} + tap), 0)[{lane}];",
                            f"{I * 2}  }} }}"]
        g.fetches += taps_run * cig * 2 * 4 * len(r)
        g.lines.append(f"{I}}}")
        g.mult = 1.0
        return landing * cig * 2 + 1
    # dense: every input slice times a 4x4 block of weights per output slice
    k = g.constant(f"{op.output}/w", _weights_dense(w, cin, out, transpose))
    Tin = cin.textures
    g.lines.append(f"{I * 2}for (int gi = 0; gi < {cin.groups}; gi++) {{")
    g.mult = taps_run * cin.groups
    before = g.fetches
    for ti in range(Tin):
        x = g.expr(cin.name, ti, "gi", "qq", {}, I * 3)
        xv = g.var("x")
        g.lines += [f"{I * 3}vec4 {xv} = ok ? {x} : vec4(0.0);",
                    f"{I * 3}int ci{ti} = (gi * {Tin} + {ti}) * 4;"]
        for t, v in enumerate(r):
            row = f"(g * {out.textures} + {t}) * {taps} + tap"
            g.lines.append(f"{I * 3}{v} += mat4(texelFetch({k}, ivec2(ci{ti}, {row}), 0), "
                           f"texelFetch({k}, ivec2(ci{ti} + 1, {row}), 0), texelFetch({k}, ivec2(ci{ti} + 2, {row}), 0), "
                           f"texelFetch({k}, ivec2(ci{ti} + 3, {row}), 0)) * {xv};")
    cost = (g.fetches - before) / (taps_run * cin.groups * Tin)
    g.fetches += taps_run * cin.groups * Tin * len(r) * 4
    g.lines += [f"{I * 2}}}", f"{I}}}"]
    g.mult = 1.0
    return landing * cin.channels * (cost + 1) + 1


def _spatial(g: _Gen, op: Op, cin: Tensor, out: Tensor, r: list[str]) -> float:
    a = op.attrs
    I = "    "
    T = out.textures
    before = g.fetches
    if op.kind == "resize":
        for t, v in enumerate(r):
            x = g.resize(op, t, "g", "q", {}, I)
            g.lines.append(f"{I}vec4 {v} = {x};")
        return (g.fetches - before) / T
    if op.kind == "pad":
        pt, pl, pb, pr = a["pads"]
        for t, v in enumerate(r):
            g.lines.append(f"{I}vec4 {v};")
            g.lines.append(f"{I}{{")
            g.lines.append(f"{I * 2}ivec2 qq = q - ivec2({pl}, {pt});")
            if a["mode"] == "edge":
                g.lines.append(f"{I * 2}qq = clamp(qq, ivec2(0), ivec2({cin.width - 1}, {cin.height - 1}));")
            elif a["mode"] == "reflect":
                g.lines.append(f"{I * 2}qq = ivec2({cin.width - 1}, {cin.height - 1}) - abs(ivec2({cin.width - 1}, "
                               f"{cin.height - 1}) - abs(qq));")
            x = g.expr(cin.name, t, "g", "qq", {}, I * 2)
            if a["mode"] == "constant":
                g.lines.append(f"{I * 2}{v} = nn_inside(qq, {cin.width}, {cin.height}) ? {x} : vec4({a['value']!r});")
            else:
                g.lines.append(f"{I * 2}{v} = {x};")
            g.lines.append(f"{I}}}")
        return (g.fetches - before) / T
    if op.kind == "global_pool":
        g.mult = cin.width * cin.height
        for t, v in enumerate(r):
            g.lines += [f"{I}vec4 {v} = vec4(0.0);",
                        f"{I}for (int y = 0; y < {cin.height}; y++) for (int x = 0; x < {cin.width}; x++) {{"]
            e = g.expr(cin.name, t, "g", "ivec2(x, y)", {}, I * 2)
            g.lines += [f"{I * 2}{v} += {e};", f"{I}}}", f"{I}{v} *= {1.0 / (cin.width * cin.height)!r};"]
        g.mult = 1.0
        return (g.fetches - before) / T
    kh, kw = a["kernel"]
    sy, sx = a["strides"]
    pt, pl = a["pads"][0], a["pads"][1]
    g.mult = kh * kw
    for t, v in enumerate(r):
        init = "vec4(-3.4e38)" if a["mode"] == "max" else "vec4(0.0)"
        g.lines += [f"{I}vec4 {v} = {init};", f"{I}float n{t} = 0.0;",
                    f"{I}for (int ky = 0; ky < {kh}; ky++) for (int kx = 0; kx < {kw}; kx++) {{",
                    f"{I * 2}ivec2 qq = q * ivec2({sx}, {sy}) - ivec2({pl}, {pt}) + ivec2(kx, ky);",
                    f"{I * 2}bool ok = nn_inside(qq, {cin.width}, {cin.height});"]
        e = g.expr(cin.name, t, "g", "qq", {}, I * 2)
        if a["mode"] == "max":
            g.lines.append(f"{I * 2}if (ok) {v} = max({v}, {e});")
        else:
            g.lines += [f"{I * 2}{v} += ok ? {e} : vec4(0.0);", f"{I * 2}n{t} += ok ? 1.0 : 0.0;"]
        g.lines.append(f"{I}}}")
        if a["mode"] == "avg":
            g.lines.append(f"{I}{v} /= {float(kh * kw)!r};" if a["count_pad"] else f"{I}{v} /= max(n{t}, 1.0);")
    g.mult = 1.0
    return (g.fetches - before) / T


def _channels(g: _Gen, op: Op, out: Tensor, r: list[str], helpers: list[str]) -> float:
    I = "    "
    T = out.textures
    if op.kind == "concat":
        picks = []
        offset = 0
        for name in op.inputs:
            fn, samps = g.pick_fn(name)
            if fn not in "".join(helpers):
                helpers.append(g.pick_source(name, fn))
            picks.append((offset, g.tensor(name).channels, fn, samps))
            offset += g.tensor(name).channels
        for t, v in enumerate(r):
            g.lines.append(f"{I}vec4 {v} = vec4(0.0);")
            for lane in range(4):
                g.lines.append(f"{I}{{ int c = (g * {T} + {t}) * 4 + {lane};")
                for off, n, fn, samps in picks:
                    g.lines.append(f"{I}  if (c >= {off} && c < {off + n}) {v}[{lane}] = "
                                   f"{fn}({', '.join(samps)}, (c - {off}) / 4, q)[(c - {off}) % 4];")
                g.lines.append(f"{I}}}")
        g.fetches += T * 4 * len(picks)
        return 1.0
    cin = g.tensor(op.inputs[0])
    fn, samps = g.pick_fn(cin.name)
    helpers.append(g.pick_source(cin.name, fn))
    args = ", ".join(samps)
    S, C = cin.slices, cin.channels
    g.lines += [f"{I}float m = -3.4e38;", f"{I}float sum = 0.0;",
                f"{I}for (int s = 0; s < {S}; s++) {{",
                f"{I * 2}vec4 v = {fn}({args}, s, q);",
                f"{I * 2}for (int l = 0; l < 4; l++) if (s * 4 + l < {C}) m = max(m, v[l]);", f"{I}}}",
                f"{I}for (int s = 0; s < {S}; s++) {{",
                f"{I * 2}vec4 v = {fn}({args}, s, q);",
                f"{I * 2}for (int l = 0; l < 4; l++) if (s * 4 + l < {C}) sum += exp(v[l] - m);", f"{I}}}"]
    for t, v in enumerate(r):
        g.lines.append(f"{I}vec4 {v} = exp({fn}({args}, g * {T} + {t}, q) - m) / sum;")
    g.fetches += 2 * S + T
    return 2 * C + 1.0
