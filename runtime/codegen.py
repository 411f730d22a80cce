"""GLSL for one fused pass: readable, one line per stage, uniforms namespaced by node."""
from __future__ import annotations

import re

from fusegraph.nodes.spec import SHADER_DIR
from fusegraph.runtime.plan import Pass, StageRef, Value

GLSL_TYPE = {"video": "vec4", "mask": "float"}
VERTEX = """#version 330 core
// one triangle that covers the viewport; fragments address texels with gl_FragCoord
void main() {
    vec2 v = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    gl_Position = vec4(v, 0.0, 1.0);
}
"""
TILE_VERTEX = """#version 330 core
// one quad per tile of the tile mask t{unit}; sure tiles collapse to a point (nothing drawn)
uniform sampler2D t{unit};
uniform vec2 fg_size;
void main() {{
    ivec2 grid = textureSize(t{unit}, 0);
    ivec2 tile = ivec2(gl_InstanceID % grid.x, gl_InstanceID / grid.x);
    float c = texelFetch(t{unit}, tile, 0).r;
    int v = gl_VertexID;
    vec2 corner = vec2(v == 1 || v == 2 || v == 4 ? 1.0 : 0.0, v == 2 || v == 4 || v == 5 ? 1.0 : 0.0);
    vec2 px = min((vec2(tile) + corner) * {tile}.0, fg_size);
    gl_Position = c > 0.25 && c < 0.75 ? vec4(px / fg_size * 2.0 - 1.0, 0.0, 1.0) : vec4(0.0, 0.0, 0.0, 1.0);
}}
"""
_shader_cache: dict[str, str] = {}


def shader_text(name: str) -> str:
    if name not in _shader_cache:
        _shader_cache[name] = (SHADER_DIR / name).read_text(encoding="utf-8")
    return _shader_cache[name]


def ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def var(v: Value) -> str:
    return f"v_{ident(v.node)}_{v.stage}"


def uniform_name(ref: StageRef, name: str) -> str:
    return f"u_{ident(ref.node)}_{ref.index}_{name}"


def _declare_uniform(ref: StageRef, name: str, glsl_type: str) -> str:
    m = re.fullmatch(r"(\w+)\[(\d+)\]", glsl_type)
    if m:
        return f"uniform {m.group(1)} {uniform_name(ref, name)}[{m.group(2)}];"
    return f"uniform {glsl_type} {uniform_name(ref, name)};"


def generate_tiled(p: Pass) -> None:
    """For a pass whose head is tiled: the border draw's shaders (the main one is generate(p))."""
    head = p.members[0]
    if head.stage.tiled_by is None:
        return
    p.tiles = head.inputs[head.stage.tiled_by]
    unit = p.samplers.index(p.tiles)
    p.border_source = p.source.replace("#version 330 core\n", "#version 330 core\n#define FG_BORDER_TILES\n", 1)
    p.tile_vertex = TILE_VERTEX.format(unit=unit, tile=head.stage.tile_size)


def generate(p: Pass) -> str:
    units = {v: i for i, v in enumerate(p.samplers)}
    regs: set[Value] = set()
    files = list(dict.fromkeys(m.stage.glsl for m in p.members))
    lines = ["#version 330 core", f"// {p.name}  [{p.size[0]}x{p.size[1]}]"]
    for v, i in units.items():
        lines.append(f"uniform sampler2D t{i};  // {v.key} {v.size[0]}x{v.size[1]} {v.type}")
    lines.append("uniform vec2 fg_size;  // this pass's output size")
    for m in p.members:
        lines += [_declare_uniform(m, u.name, u.glsl_type) for u in m.stage.uniforms]
    for i, v in enumerate(p.outputs):
        lines.append(f"layout(location = {i}) out vec4 o{i};  // {v.key}")
    for f in files:
        lines += ["", f"// ---- shaders/{f}", shader_text(f).rstrip()]
    lines += ["", "void main() {", "    ivec2 p = ivec2(gl_FragCoord.xy);",
              "    vec2 uv = gl_FragCoord.xy / fg_size;"]
    for m in p.members:
        args = []
        for v, t in zip(m.inputs, m.stage.input_types):
            if m.stage.role == "thick":
                args.append(f"t{units[v]}")
            elif v in regs:
                args.append(_convert(var(v), v.type, t))
            else:
                args.append(_convert(_read(v, units[v], p), v.type, t))
        if m.stage.role == "thick":
            args.append("p")
        args += list(m.stage.consts)
        args += [uniform_name(m, u.name) for u in m.stage.uniforms]
        out_t = GLSL_TYPE[m.stage.out_type]
        call = f"{m.stage.fn}({', '.join(args)})"
        if m.stage.role == "thick" and m.stage.out_type == "mask":
            call += ".r"
        lines.append(f"    {out_t} {var(m.out)} = {call};  // {m.name} ({m.node_type})")
        regs.add(m.out)
    for i, v in enumerate(p.outputs):
        value = var(v) if v.type != "mask" else f"vec4({var(v)}, 0.0, 0.0, 1.0)"
        lines.append(f"    o{i} = {value};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _convert(expr: str, have: str, want: str) -> str:
    """Ports that accept both kinds: a mask reads as grey video, video as a mask by its luma."""
    if have == want:
        return expr
    if have == "mask":
        return f"vec4(vec3({expr}), 1.0)"
    return f"dot(({expr}).rgb, vec3(0.2126, 0.7152, 0.0722))"


def _read(v: Value, unit: int, p: Pass) -> str:
    """A texture input of a thin stage: exact texel at the same size, bilinear at another."""
    fetch = f"texelFetch(t{unit}, p, 0)" if v.size == p.size else f"texture(t{unit}, uv)"
    return f"{fetch}.r" if v.type == "mask" else fetch
