"""shader: your own GLSL, fused with the built-in nodes like one of them.

Inputs:  in0 (video or mask), in1..in3 (optional): `inputs` gives the type each is read as;
         a connected one beyond it is read as the type that arrives
Outputs: out (video or mask: `output`)
Params:  code (GLSL: the body of `effect`, or whole functions including `effect`), inputs (the
         type each input is read as), output, neighbourhood (off: `effect` gets its inputs' values
         at this pixel and fuses into the pass that makes them, like `color`; on: it gets them as
         sampler2D, may read anywhere with texelFetch, and heads a pass of its own),
         uniforms (declared as data: name, type float/int/bool/vec2/vec3/color, default, min,
         max; the inspector shows a widget for each) and values (their current values: edits
         are uniform updates, no recompile)
Notes:   effect's signature: per-pixel `vec4|float effect(vec4|float in0, ...)`; neighbourhood
         `vec4|float effect(sampler2D in0, ..., ivec2 p)`. Also available: fg_pixel() (ivec2, the
         output pixel), fg_uv() (vec2 in 0..1), fg_size (vec2, output size), fg_time (seconds),
         fg_frame (int). A preset stays data: #version, #extension and the generated code's
         own names (main, fg_*, u_*, v_*, c_*, t0.., o0..) are refused. Loops share a budget
         of 16384 iterations per pixel, so a loop that never ends still ends; a frame that
         takes too long stops the run (headless) or bypasses the node (live).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fusegraph.nodes.contract import Body, GpuStage, NodeError, NodeSpec, Params, Port, ShaderSource, Uniform

MAX_INPUTS = 4
LOOP_BUDGET = 16384  # loop iterations per pixel, all loops together (a 128x128 neighbourhood)
IDENT = r"^[A-Za-z][A-Za-z0-9_]*$"
GLSL_TYPES = {"float": "float", "int": "int", "bool": "bool", "vec2": "vec2", "vec3": "vec3", "color": "vec3"}
HELPERS = {"fg_pixel", "fg_uv", "fg_size", "fg_time", "fg_frame"}
# names the generated program uses itself (codegen: samplers t0.., targets o0.., uniforms u_*,
# constants c_*, values v_*; fg_* for its own helpers)
RESERVED = re.compile(r"\b(main|fg_\w+|[uvc]_\w+|t\d+|o\d+)\b")
FORBIDDEN = re.compile(r"^\s*#\s*(version|extension|define|undef|line|include)\b", re.M)
COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
EFFECT_DEF = re.compile(r"\b(?:vec4|float)\s+effect\s*\([^)]*\)\s*\{")
TOP_DECL = re.compile(r"^\s*(?:const\s+)?(?:void|bool|int|uint|float|[iu]?vec[234]|mat[234])\s+(\w+)\s*[(=;\[]", re.M)

# GLSL's own words: a uniform may not be named like one (the code reads uniforms by name)
GLSL_WORDS = set("""attribute const uniform varying layout centroid flat smooth noperspective break continue do for
while switch case default if else in out inout float int uint void bool true false invariant discard return
struct precision lowp mediump highp sampler2D sampler3D samplerCube""".split()) | {
    f"{p}{k}{n}" for p in ("", "i", "u", "b") for k in ("vec",) for n in (2, 3, 4)} | {f"mat{n}" for n in (2, 3, 4)}

DEFAULT_CODE = """// per pixel: in0 is this pixel's colour
vec3 c = in0.rgb * gain;
return vec4(c, in0.a);"""


class UniformDecl(BaseModel):
    """One user uniform: the code reads it by `name`; the inspector shows a widget for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=IDENT)
    type: Literal["float", "int", "bool", "vec2", "vec3", "color"] = "float"
    default: bool | float | list[float] = 0.0
    min: float = 0.0
    max: float = 1.0

    @property
    def size(self) -> int:
        return {"vec2": 2, "vec3": 3, "color": 3}.get(self.type, 1)

    def check(self, value: Any) -> Any:
        """`value` as this uniform holds it, or ValueError naming it."""
        if self.type == "bool":
            if isinstance(value, (bool, int, float)):
                return bool(value)
            raise ValueError(f"uniform '{self.name}': expected true or false, got {value!r}")
        items = value if isinstance(value, (list, tuple)) else [value]
        if len(items) != self.size or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise ValueError(f"uniform '{self.name}' ({self.type}): expected {self.size} number(s), got {value!r}")
        if any(not np.isfinite(v) or v < self.min or v > self.max for v in items):
            raise ValueError(f"uniform '{self.name}': {value!r} is outside {self.min:g}..{self.max:g}")
        if self.type == "int":
            return int(round(items[0]))
        return float(items[0]) if self.size == 1 else [float(v) for v in items]


class ShaderParams(Params):
    code: str = Field(DEFAULT_CODE, max_length=65536, json_schema_extra={"widget": "code"},
                      description="GLSL: the body of effect(), or functions including effect()")
    values: dict[str, float | bool | list[float]] = Field(
        default_factory=dict, json_schema_extra={"widget": "uniforms", "declared_by": "uniforms"},
        description="the uniforms' values (missing: their default)")
    inputs: list[Literal["video", "mask"]] = Field(["video"], min_length=1, max_length=MAX_INPUTS,
                                                   json_schema_extra={"widget": "json"},
                                                   description="the type each input is read as, in0 first")
    output: Literal["video", "mask"] = "video"
    neighbourhood: bool = Field(False, description="read inputs anywhere (texelFetch): a pass of its own")
    uniforms: list[UniformDecl] = Field(default_factory=lambda: [UniformDecl(name="gain", default=1.0, max=2.0)],
                                        max_length=16, json_schema_extra={"widget": "json"},
                                        description="uniforms the code reads: name, type, default, min, max")

    @model_validator(mode="after")
    def _check(self) -> "ShaderParams":
        check_code(self.code)
        names = [u.name for u in self.uniforms]
        for u in self.uniforms:
            if RESERVED.fullmatch(u.name) or u.name in ("effect", "p") or re.fullmatch(r"in\d+", u.name):
                raise ValueError(f"uniform name '{u.name}' is reserved")
            if u.name in GLSL_WORDS:
                raise ValueError(f"uniform name '{u.name}' is a word of GLSL")
            if not u.min <= u.max:
                raise ValueError(f"uniform '{u.name}': min {u.min:g} is above max {u.max:g}")
            u.check(u.default)
        if len(set(names)) != len(names):
            raise ValueError(f"uniform names used twice: {sorted({n for n in names if names.count(n) > 1})}")
        unknown = sorted(set(self.values) - set(names))
        if unknown:
            raise ValueError(f"values for undeclared uniform(s): {', '.join(unknown)}")
        for u in self.uniforms:
            if u.name in self.values:
                u.check(self.values[u.name])
        return self


def check_code(code: str) -> None:
    """A preset stays data: no #version or #extension, none of the generated code's own names."""
    for i, line in enumerate(code.splitlines(), 1):
        if FORBIDDEN.match(line):
            raise ValueError(f"code line {i}: #version, #extension, #define, #undef, #line and #include are not "
                             f"allowed (fusegraph writes the program around your code; use const for constants)")
    for i, line in enumerate(blank_comments(code).splitlines(), 1):
        if re.match(r"\s*(uniform|layout)\b", line):
            raise ValueError(f"code line {i}: declare uniforms in the node's `uniforms` (fusegraph declares and sets "
                             f"them), not in the code")
        for m in RESERVED.finditer(line):
            if m.group(1) not in HELPERS:
                raise ValueError(f"code line {i}: '{m.group(1)}' is a name the generated code uses (reserved: "
                                 f"main, fg_*, u_*, v_*, c_*, t0.., o0..; available: {', '.join(sorted(HELPERS))})")


def values(p: ShaderParams) -> dict[str, Any]:
    return {u.name: u.check(p.values.get(u.name, u.default)) for u in p.uniforms}


def budget_loops(code: str, guard: str) -> str:
    """Every `for` and `while` condition also asks guard(): one budget of iterations per pixel,
    so a loop that never ends ends (a do-while's `while` is covered the same way). Comments are
    kept; keywords inside them are not touched."""
    scan = blank_comments(code)  # the same length: positions agree with `code`
    out, i = [], 0
    for m in re.finditer(r"\b(for|while)\s*\(", scan):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(scan) and depth:
            depth += {"(": 1, ")": -1}.get(scan[j], 0)
            j += 1
        if m.group(1) == "while":
            new = f"{guard}() && ({code[m.end():j - 1]})"
        else:
            cuts = [k for k in range(m.end(), j - 1) if scan[k] == ";" and _depth(scan, m.end(), k) == 0]
            if len(cuts) != 2:
                continue  # not a for header GLSL accepts: the compiler will say so
            cond = code[cuts[0] + 1:cuts[1]].strip() or "true"
            new = f"{code[m.end():cuts[0]]}; {guard}() && ({cond});{code[cuts[1] + 1:j - 1]}"
        out.append(code[i:m.end()] + new + ")")
        i = j
    return "".join(out) + code[i:]


def _depth(text: str, start: int, end: int) -> int:
    return sum({"(": 1, ")": -1}.get(ch, 0) for ch in text[start:end])


def blank_comments(code: str) -> str:
    """The code with its comments turned to spaces (newlines kept: lines and columns stay)."""
    return COMMENTS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)


def source(p: ShaderParams, types: list[str] | None = None) -> tuple[ShaderSource, str]:
    """The node's GLSL (a ShaderSource of text, lines counted from the user's first) and the
    name of the function the pass calls. Everything the code declares at the top level is
    renamed per code (#define), so two shader nodes fused into one pass never clash."""
    types = list(p.inputs) if types is None else types  # each input's type, in0 first
    h = hashlib.sha1(repr((p.code, types, p.output, p.neighbourhood, [u.name for u in p.uniforms]))
                     .encode()).hexdigest()[:8]
    out_t = "vec4" if p.output == "video" else "float"
    ins = [f"sampler2D in{i}" if p.neighbourhood else f"{'vec4' if t == 'video' else 'float'} in{i}"
           for i, t in enumerate(types)] + (["ivec2 p"] if p.neighbourhood else [])
    scan = blank_comments(p.code)
    whole = EFFECT_DEF.search(scan) is not None
    names = {"effect"} | set(TOP_DECL.findall(scan) if whole else ())
    names |= {u.name for u in p.uniforms}
    guard = f"fg_{h}_loop"
    head = ['#include "fg_helpers.glsl"', f"int fg_{h}_budget = {LOOP_BUDGET};",
            f"bool {guard}() {{ fg_{h}_budget--; return fg_{h}_budget >= 0; }}"]
    head += [f"{GLSL_TYPES[u.type]} fg_{h}_{u.name};" for u in p.uniforms]
    head += [f"#define {n} fg_{h}_{n}" for n in sorted(names)]
    code = budget_loops(p.code, guard)
    if whole:
        body = code.splitlines()
        first = len(head) + 1
    else:
        head.append(f"{out_t} effect({', '.join(ins)}) {{")
        body = code.splitlines() + ["}"]
        first = len(head) + 1
    tail = [f"#undef {n}" for n in sorted(names)]
    fn = f"fg_shader_{h}"
    args = [f"{'sampler2D' if p.neighbourhood else ('vec4' if t == 'video' else 'float')} a{i}"
            for i, t in enumerate(types)] + (["ivec2 pos"] if p.neighbourhood else [])
    args += [f"{GLSL_TYPES[u.type]} arg_{u.name}" for u in p.uniforms]
    call = ", ".join([f"a{i}" for i in range(len(types))] + (["pos"] if p.neighbourhood else []))
    # a thick function returns vec4 (a mask is its .r); per pixel, the output type itself
    fn_t = "vec4" if p.neighbourhood else out_t
    wrapper = [f"{fn_t} {fn}({', '.join(args)}) {{", f"    fg_{h}_budget = {LOOP_BUDGET};"]
    wrapper += [f"    fg_{h}_{u.name} = arg_{u.name};" for u in p.uniforms]
    wrapper += [f"    return {fn_t}(fg_{h}_effect({call}));", "}"]
    text = "\n".join(head + body + tail + wrapper) + "\n"
    return ShaderSource.inline(text, "shader code", first_line=first, prefix=f"fg_{h}_"), fn


def build(p: ShaderParams, ins):
    # the declared inputs, then any further connected one, read as the type that arrives
    count = max([len(p.inputs)] + [int(k[2:]) + 1 for k in ins])
    ports = [f"in{i}" for i in range(count)]
    missing = [port for port in ports if port not in ins]
    if missing:
        raise NodeError(f"{missing[0]} is not connected (the code reads in0..in{count - 1})", port=missing[0])
    types = [p.inputs[i] if i < len(p.inputs) else ins[port].type for i, port in enumerate(ports)]
    src, fn = source(p, types)
    size = ins["in0"].size
    stage = GpuStage("thick" if p.neighbourhood else "thin", fn, src, tuple(ports), tuple(types), p.output, size,
                     tuple(Uniform(u.name, GLSL_TYPES[u.type]) for u in p.uniforms), values,
                     cost=4.0 if p.neighbourhood else 1.0)
    return Body([stage], {"out": 0})


def reference(p: ShaderParams, ins: dict[str, np.ndarray]) -> np.ndarray:
    """The default code's maths (what a new shader node does): other code has no numpy twin here;
    tests/test_shader.py models the shipped presets' code."""
    if p.code != DEFAULT_CODE or p.neighbourhood or p.inputs != ["video"]:
        raise NotImplementedError("only the default code has a numpy reference")
    img = ins["in0"]
    gain = values(p)["gain"]
    return np.concatenate([img[..., :3] * gain, img[..., 3:]], axis=-1)


SPEC = NodeSpec(
    type="shader", category="filter", role="thin", Params=ShaderParams, doc=__doc__,
    inputs=(Port("in0", "video", accepts=("mask",)),) + tuple(
        Port(f"in{i}", "video", required=False, accepts=("mask",)) for i in range(1, MAX_INPUTS)),
    outputs=(Port("out", "video", type_param="output"),),
    build=build,
    # what decides the program: a uniform's value does not
    structure=lambda p: (p.code, tuple(p.inputs), p.output, p.neighbourhood, tuple(p.uniforms)),
    reference=reference,
)
