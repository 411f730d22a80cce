"""GLSL for one fused pass: readable, one line per stage, uniforms namespaced by node."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fusegraph.nodes.contract import TYPES, ShaderSource, convert
from fusegraph.runtime.plan import Pass, StageRef, Value
from fusegraph.runtime.resources import shader_source

VERTEX = """#version 330 core
// one triangle that covers the viewport; fragments address texels with gl_FragCoord
void main() {
    vec2 v = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    gl_Position = vec4(v, 0.0, 1.0);
}
"""
TILE_VERTEX = """#version 330 core
// Quads over the tile mask t{unit}, six vertices a tile in one draw: a tile starting a run of
// tiles of its class along its row draws the run's quad, if this draw covers that class
// ({which}); every other tile collapses to a point (nothing drawn). A few long quads, not one
// per tile: software GL pays per triangle. Not instanced: llvmpipe shades each instance's six
// vertices as a batch of their own (twice the vertex time at 1080p). The class reaches the
// fragment shader as fg_tile.
uniform sampler2D t{unit};
uniform vec2 fg_size;
flat out float fg_tile;
void main() {{
    ivec2 grid = textureSize(t{unit}, 0);
    int id = gl_VertexID / 6;  // the tile
    ivec2 tile = ivec2(id % grid.x, id / grid.x);
    float c = texelFetch(t{unit}, tile, 0).r;
    bool covered = {covered};
    bool starts = tile.x == 0 || texelFetch(t{unit}, tile - ivec2(1, 0), 0).r != c;
    int end = tile.x + 1;
    if (covered && starts)
        while (end < grid.x && texelFetch(t{unit}, ivec2(end, tile.y), 0).r == c)
            end++;
    fg_tile = c;
    int v = gl_VertexID % 6;
    vec2 corner = vec2(v == 1 || v == 2 || v == 4 ? float(end - tile.x) : 0.0, v == 2 || v == 4 || v == 5 ? 1.0 : 0.0);
    vec2 px = min((vec2(tile) + corner) * {tile}.0, fg_size);
    gl_Position = covered && starts ? vec4(px / fg_size * 2.0 - 1.0, 0.0, 1.0) : vec4(0.0, 0.0, 0.0, 1.0);
}}
"""


def ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def var(v: Value) -> str:
    return f"v_{ident(v.node)}_{v.stage}"


def uniform_name(ref: StageRef, name: str) -> str:
    return f"u_{ident(ref.node)}_{ref.index}_{name}"


def constant_name(ref: StageRef, name: str) -> str:
    return f"c_{ident(ref.node)}_{ref.index}_{name}"


@dataclass(frozen=True)
class Span:
    """Where one shader source sits in a generated program: its text's line 1 is line `start`."""

    start: int
    count: int
    source: ShaderSource
    node: str  # the node whose stage brought the source in

    def user_line(self, line: int) -> int:
        """A generated line as the author of the source counts it."""
        return line - self.start + 1 - (self.source.first_line - 1)


def _declare_uniform(ref: StageRef, name: str, glsl_type: str) -> str:
    m = re.fullmatch(r"(\w+)\[(\d+)\]", glsl_type)
    if m:
        return f"uniform {m.group(1)} {uniform_name(ref, name)}[{m.group(2)}];"
    return f"uniform {glsl_type} {uniform_name(ref, name)};"


def first_units(values: list[Value]) -> dict[Value, int]:
    """Each value's first texture unit (or render target location): a value of several
    textures takes that many in a row."""
    out, n = {}, 0
    for v in values:
        out[v] = n
        n += v.textures
    return out


def generate_tiled(p: Pass) -> None:
    """A pass whose head is tiled is two draws of per-tile quads: the sure tiles with the head's
    cheap path, the border tiles with its full path (FG_BORDER_TILES). No pixel is drawn twice and
    each fragment has its tile's class as `flat in float fg_tile` (FG_TILED), so the cheap path
    needs no fetch of its own: sure pixels cost what the thin stages fused after the head cost."""
    head = p.members[0]
    if head.stage.tiled_by is None:
        return
    p.tiles = head.inputs[head.stage.tiled_by]
    unit = first_units(p.samplers)[p.tiles]
    version = "#version 330 core\n"
    tiled = version + "#define FG_TILED\nflat in float fg_tile;  // this fragment's tile class (the tile mask's)\n"
    p.source = p.source.replace(version, tiled, 1)
    p.border_source = p.source.replace(version, version + "#define FG_BORDER_TILES\n", 1)
    vertex = lambda which: TILE_VERTEX.format(unit=unit, tile=head.stage.tile_size,  # noqa: E731
                                              which=which, covered=COVERS[which])
    p.sure_vertex, p.border_vertex = vertex("sure"), vertex("border")
    p.class_vertices = (vertex("class 0"), vertex("class 1"))


# Which tiles a draw of a tiled pass covers, by the tile mask's value c (0, 0.5 or 1).
COVERS = {"sure": "!(c > 0.25 && c < 0.75)", "border": "c > 0.25 && c < 0.75",
          "class 0": "c < 0.25", "class 1": "c > 0.75"}
VECTORS = {"vec2": 2, "vec3": 3, "vec4": 4}


def _literal(glsl_type: str, value) -> str | None:
    """A uniform's value as a GLSL literal of its type; None for a type not baked (arrays)."""
    if glsl_type == "bool":
        return "true" if value else "false"
    if glsl_type == "int":
        return str(int(value))
    if glsl_type == "float":
        return repr(float(value))  # repr: the shortest text that reads back as the same double
    n = VECTORS.get(glsl_type)
    if n is None or len(value) != n:
        return None
    return f"{glsl_type}({', '.join(repr(float(x)) for x in value)})"


def specialise_class(p: Pass, cls: int, values) -> str:
    """The fragment shader of a tiled pass's sure tiles of one class (0 or 1), for the stages'
    uniform values now: the head's value there is the constant `cls`, and the uniforms of the
    stages fused after it are constants too, so the GLSL compiler folds what they do with a
    constant (a composite over a sure mask is its foreground or its background) and drops the
    fetches whose results no longer matter. values(node, stage) gives a stage's uniform values.
    The result changes with those values: a uniform edit makes another program."""
    src = p.source.replace("flat in float fg_tile;", f"const float fg_tile = {float(cls)!r};", 1)
    for m in p.members[1:]:
        given = values(m.node, m.stage)
        for u in m.stage.uniforms:
            lit = _literal(u.glsl_type, np.asarray(given[u.name]).tolist())
            if lit is not None:
                decl = _declare_uniform(m, u.name, u.glsl_type)
                src = src.replace(decl, f"const {u.glsl_type} {uniform_name(m, u.name)} = {lit};", 1)
    return src


def generate(p: Pass) -> tuple[str, list[Span]]:
    """The pass's fragment shader, and where each shader source sits in it (for errors)."""
    units = first_units(p.samplers)
    locations = first_units(p.outputs)
    regs: set[Value] = set()
    lines = ["#version 330 core", f"// {p.name}  [{p.size[0]}x{p.size[1]}]"]
    for v, i in units.items():
        for k in range(v.textures):
            part = f"[{k}]" if v.textures > 1 else ""
            lines.append(f"uniform sampler2D t{i + k};  // {v.key}{part} {v.size[0]}x{v.size[1]} {v.type}")
    for m, c in p.constants:
        lines.append(f"uniform sampler2D {constant_name(m, c.name)};  // constant of {m.name}: "
                     f"{c.size[0]}x{c.size[1]}x{c.components}")
    lines.append("uniform vec2 fg_size;  // this pass's output size")
    lines.append("uniform float fg_time;  // the frame's time in seconds")
    lines.append("uniform int fg_frame;  // the frame's index")
    for m in p.members:
        lines += [_declare_uniform(m, u.name, u.glsl_type) for u in m.stage.uniforms]
    for v, i in locations.items():
        for k in range(v.textures):
            part = f"[{k}]" if v.textures > 1 else ""
            lines.append(f"layout(location = {i + k}) out vec4 o{i + k};  // {v.key}{part}")
    spans: list[Span] = []
    emitted: set = set()

    def emit(src: ShaderSource, node: str) -> None:
        text = shader_source(src.name) if src.is_file else src.text
        key = src.name if src.is_file else (src.name, text)
        if key in emitted:
            return
        emitted.add(key)
        for name in ShaderSource.includes(text):
            emit(ShaderSource.file(name), node)
        lines.extend(["", f"// ---- {'shaders/' if src.is_file else ''}{src.name}"])
        body = ShaderSource.strip_includes(text).rstrip().splitlines()
        spans.append(Span(len(lines) + 1, len(body), src, node))
        lines.extend(body)

    for m in p.members:
        emit(m.stage.source, m.node)
    lines += ["", "void main() {", "    ivec2 p = ivec2(gl_FragCoord.xy);",
              "    vec2 uv = gl_FragCoord.xy / fg_size;"]
    for m in p.members:
        thick = m.stage.role == "thick"
        args = []
        for v, t in zip(m.inputs, m.stage.input_types):
            if thick:
                args += [f"t{units[v] + k}" for k in range(v.textures)]
            elif v in regs:
                args.append(convert(var(v), v.type, t))
            else:
                args.append(convert(_read(v, units[v], p), v.type, t))
        args += [constant_name(m, c.name) for c in m.stage.constants]
        if thick:
            args.append("p")
        args += list(m.stage.consts)
        args += [uniform_name(m, u.name) for u in m.stage.uniforms]
        out_t = TYPES[m.stage.out_type]
        if out_t.textures > 1:  # written through `out vec4` parameters, one per texture
            parts = [f"{var(m.out)}_{k}" for k in range(out_t.textures)]
            lines.append(f"    vec4 {', '.join(parts)};")
            lines.append(f"    {m.stage.fn}({', '.join(args + parts)});  // {m.name} ({m.node_type})")
            regs.add(m.out)
            continue
        call = f"{m.stage.fn}({', '.join(args)})"
        if thick:
            call = out_t.from_vec4.format(call)
        lines.append(f"    {out_t.glsl} {var(m.out)} = {call};  // {m.name} ({m.node_type})")
        regs.add(m.out)
    for v, i in locations.items():
        if v.textures > 1:
            lines += [f"    o{i + k} = {var(v)}_{k};" for k in range(v.textures)]
        else:
            lines.append(f"    o{i} = {TYPES[v.type].to_vec4.format(var(v))};")
    lines.append("}")
    return "\n".join(lines) + "\n", spans


MESA_LINE = re.compile(r"^\s*\d+:(\d+)\((\d+)\):\s*(.*)$")  # Mesa: "0:12(5): error: ..."


def own_glsl_error(log: str, spans: list[Span]) -> tuple[str, str] | None:
    """(node, message) when a driver's log points into GLSL a node carries or makes itself
    (not a file of shaders/): the author's line numbers and names, the driver's words."""
    located = [(span, line, msg) for span, line, msg in locate_errors(log, spans) if not span.source.is_file]
    if not located:
        return None
    located = [e for e in located if e[2].startswith("error")] or located  # warnings only with no error
    node = located[0][0].node
    parts = []
    for span, line, msg in located:
        if span.node != node:
            continue
        if span.source.prefix:
            msg = msg.replace(span.source.prefix, "")
        lines = span.count - (span.source.first_line - 1)
        where = f"line {line}" if 1 <= line <= lines else "in the code around it (check effect's signature)"
        parts.append(f"{where}: {msg}")
    return node, "GLSL error: " + "; ".join(dict.fromkeys(parts))


def locate_errors(log: str, spans: list[Span]) -> list[tuple[Span, int, str]]:
    """A driver's compile log as (span, the author's line, message) for each line it names."""
    out = []
    for raw in log.splitlines():
        m = MESA_LINE.match(raw)
        if not m:
            continue
        line, message = int(m.group(1)), m.group(3).strip()
        span = next((s for s in spans if s.start <= line < s.start + max(1, s.count)), None)
        if span is not None:
            out.append((span, span.user_line(line), message))
    return out


def _read(v: Value, unit: int, p: Pass) -> str:
    """A texture input of a thin stage: exact texel at the same size, bilinear at another."""
    fetch = f"texelFetch(t{unit}, p, 0)" if v.size == p.size else f"texture(t{unit}, uv)"
    return TYPES[v.type].from_vec4.format(fetch)
