"""The node contract: declarations checked against what the nodes build, every GPU kind against
its numpy reference (walking the registry), port types, shader sources, constant textures."""
from __future__ import annotations

import dataclasses
import itertools
import typing

import numpy as np
import pytest

from conftest import graph_doc, to_float
from fusegraph.nodes import REGISTRY, threshold
from fusegraph.nodes.contract import TYPES, Body, Constant, CpuStage, GpuStage, Incoming, ShaderSource, SourceInfo, Uniform
from fusegraph.nodes.lib.reference import to_8bit
from fusegraph.runtime import plan as plan_module
from fusegraph.runtime.codegen import locate_errors
from fusegraph.runtime.compiler import compile_graph
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.loader import parse_graph

TOL = 1.0 / 255 + 1e-6
GPU_KINDS = sorted(k for k, s in REGISTRY.items() if s.role in ("thin", "thick"))


def _choices(info) -> list:
    """A few values of one params field: its default, its bounds, its enum members."""
    ann, default = info.annotation, info.default
    if typing.get_origin(ann) is typing.Literal:
        return list(typing.get_args(ann))
    if ann is bool:
        return [False, True]
    lo = next((getattr(m, "ge", getattr(m, "gt", None)) for m in info.metadata
               if hasattr(m, "ge") or hasattr(m, "gt")), None)
    hi = next((getattr(m, "le", getattr(m, "lt", None)) for m in info.metadata
               if hasattr(m, "le") or hasattr(m, "lt")), None)
    if ann in (int, float) and lo is not None and hi is not None:  # inside the bounds (gt, lt too)
        vals = [lo + (hi - lo) * f for f in (0.001, 0.13, 0.5, 0.999)]
        return [default] + [round(v) if ann is int else float(v) for v in vals]
    return [default]


def _shape(body: Body):
    """A body without what may change between frames (uniform values, costs, CPU callables)."""
    return ([dataclasses.replace(s, values=None, cost=0) if isinstance(s, GpuStage) else dataclasses.replace(s, run=None)
             for s in body.stages], body.outputs)


@pytest.mark.parametrize("kind", sorted(k for k, s in REGISTRY.items() if s.structure is not None))
def test_structure_declaration_matches_what_the_node_builds(kind):
    """NodeSpec.structure says when an edit is only a uniform update; the engine trusts it, so
    two params with the same structure must build the same body but for uniform values."""
    spec = REGISTRY[kind]
    ins = {p.name: Incoming((97, 61), p.type) for p in spec.inputs}
    fields = spec.Params.model_fields
    rng = np.random.default_rng(1)
    options = {name: _choices(info) for name, info in fields.items()}
    samples = [spec.Params()] + [spec.Params.model_validate({n: c[rng.integers(len(c))] for n, c in options.items()})
                                 for _ in range(40)]
    by_key: dict = {}
    for p in samples:
        try:
            by_key.setdefault(spec.structure(p), []).append(_shape(spec.build(p, ins)))
        except Exception as exc:  # a combination the node refuses is no evidence either way
            if type(exc).__name__ != "NodeError":
                raise
    # a kind whose params are all uniforms or read by its CPU stages as they run declares ()
    assert len(by_key) > 1 or len(fields) <= 1 or set(by_key) == {()}
    for key, shapes in by_key.items():
        for a, b in itertools.combinations(shapes, 2):
            assert a == b, f"{kind}: equal structure {key!r} but different bodies"


def _images(astronaut):
    rng = np.random.default_rng(11)
    yield "random", [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    photo = astronaut[::4, ::4].copy()
    yield "photo", [photo, np.ascontiguousarray(photo[::-1]), np.ascontiguousarray(photo[:, ::-1]), photo[::-1, ::-1].copy()]


SOFT = threshold.ThresholdParams(level=0.5, softness=0.3)


@pytest.mark.parametrize("kind", GPU_KINDS)
def test_every_gpu_kind_matches_its_reference(kind, run_graph, write_png, astronaut):
    """One test for every GPU kind of the registry (a new kind is checked without editing it):
    default params, an image per video input, a soft threshold of an image per mask input."""
    spec = REGISTRY[kind]
    assert spec.reference is not None, f"{kind}: a GPU kind declares its numpy reference"
    for name, rgbs in _images(astronaut):
        nodes, links, want_in = [], [], {}
        for port, rgb in zip(spec.inputs, rgbs):
            nodes.append({"id": f"src_{port.name}", "type": "image", "params": {"path": write_png(rgb)}})
            if port.type == "mask":  # a mask made on the GPU by a threshold of the image
                nodes.append({"id": f"m_{port.name}", "type": "threshold", "params": SOFT.model_dump()})
                links += [(f"src_{port.name}.out", f"m_{port.name}.in"), (f"m_{port.name}.out", f"n.{port.name}")]
                mask = threshold.reference(to_float(rgb), SOFT)
                want_in[port.name] = to_8bit(mask) if spec.role == "thick" else mask  # 8-bit between passes
            else:
                links.append((f"src_{port.name}.out", f"n.{port.name}"))
                want_in[port.name] = to_float(rgb)
        nodes += [{"id": "n", "type": kind, "params": {}}, {"id": "view", "type": "preview", "params": {"max_width": 3840}}]
        links.append((f"n.{spec.outputs[0].name}", "view.in"))
        got = run_graph(graph_doc(nodes, links))["view"].astype(np.float64) / 255.0
        want = np.round(np.clip(spec.reference(spec.Params(), want_in), 0, 1) * 255.0) / 255.0
        if got.ndim == 3 and want.ndim == 2:  # a mask shows as grey RGBA
            got = got[..., 0]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        err = np.abs(got - want).max()
        assert err <= TOL, f"{kind} on the {name} image: max error {err * 255:.2f}/255"


def test_port_types_are_one_table():
    assert TYPES["video"].glsl == "vec4" and TYPES["mask"].glsl == "float" and not TYPES["audio"].gpu
    assert TYPES["mask"].numpy_shape((5, 3)) == (3, 5) and TYPES["video"].numpy_shape((5, 3)) == (3, 5, 4)
    assert {t for t in typing.get_args(plan_module.Value.__annotations__["type"] and TYPES)} <= set(TYPES)


def test_every_step_kind_has_a_row():
    kinds = {c for c in vars(plan_module).values()
             if isinstance(c, type) and issubclass(c, plan_module.Step) and c is not plan_module.Step}
    assert kinds == set(plan_module.STEP_KINDS)
    for row in plan_module.STEP_KINDS.values():
        assert callable(getattr(Engine, row.execute))


# ---- a node made in the test: inline GLSL with an include, and a constant texture ------------

LUT_GLSL = '''#include "color.glsl"
// a 256-entry table per channel, then the colour grade of color.glsl
vec4 test_lut(vec4 c, sampler2D lut, float gain) {
    ivec3 i = ivec3(clamp(c.rgb, 0.0, 1.0) * 255.0 + 0.5);
    vec3 m = vec3(texelFetch(lut, ivec2(i.r, 0), 0).r, texelFetch(lut, ivec2(i.g, 0), 0).r,
                  texelFetch(lut, ivec2(i.b, 0), 0).r);
    return fg_color(vec4(m * gain, c.a), false, 0.0, 1.0, 1.0, 1.0);
}
'''


def lut_table(p) -> np.ndarray:
    return (np.linspace(0.0, 1.0, 256) ** (1.0 + 3.0 * p.contrast / 4.0))[None, :].astype(np.float32)


@pytest.fixture
def lut_node(monkeypatch):
    """`color` rebuilt as a LUT node: contrast picks the table (a constant), brightness is a uniform."""
    spec = REGISTRY["color"]

    def build(p, ins):
        return Body([GpuStage("thin", "test_lut", ShaderSource.inline(LUT_GLSL, "test_lut"), ("in",), ("video",),
                              "video", ins["in"].size, (Uniform("gain", "float"),), lambda q: {"gain": 1.0 - q.brightness},
                              constants=(Constant("lut", lut_table(p)),))], {"out": 0})

    monkeypatch.setitem(REGISTRY, "color", dataclasses.replace(spec, build=build, structure=lambda p: p.contrast))


def test_inline_source_includes_and_constant_texture(lut_node, gpu, write_png):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                     {"id": "col", "type": "color", "params": {"contrast": 2.0, "brightness": 0.2}},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("src.out", "col.in"), ("col.out", "view.in")])
    engine = Engine(parse_graph(doc), gpu=gpu)
    engine.open()
    try:
        engine.process(0)
        src = engine.plan.passes[0].source
        assert src.count("vec4 fg_color(") == 1 and "#include" not in src  # the snippet, pasted once
        p = engine.plan.nodes and REGISTRY["color"].Params(contrast=2.0, brightness=0.2)
        table = lut_table(p)[0].astype(np.float64)
        want = np.clip(table[rgb] * 0.8, 0, 1)
        got = engine.sinks["view"].last[..., :3] / 255.0
        assert np.abs(got - want).max() <= TOL
        tex, plan = next(iter(engine.constants.values())), engine.plan
        engine.set_param("col", "brightness", 0.0)  # a uniform: same plan, same constant texture
        engine.process(1)
        assert engine.plan is plan and next(iter(engine.constants.values())) is tex
        assert np.abs(engine.sinks["view"].last[..., :3] / 255.0 - table[rgb]).max() <= TOL
        engine.set_param("col", "contrast", 0.0)  # another table: recompiled, uploaded anew
        engine.process(2)
        assert engine.plan is not plan and len(engine.constants) == 1
        assert np.abs(engine.sinks["view"].last[..., :3] / 255.0 - np.linspace(0, 1, 256)[rgb]).max() <= TOL
    finally:
        engine.close()
    assert not engine.constants


def test_compile_errors_are_located_in_the_authors_lines(lut_node):
    plan = compile_graph(parse_graph(graph_doc(
        [{"id": "src", "type": "image", "params": {"path": "x.png"}}, {"id": "col", "type": "color"},
         {"id": "view", "type": "preview"}], [("src.out", "col.in"), ("col.out", "view.in")])),
        {"src": SourceInfo((8, 8), 30.0, 1)})
    p = plan.passes[0]
    lines = p.source.splitlines()
    at = next(i for i, l in enumerate(lines, 1) if "ivec3 i = ivec3(" in l)  # LUT_GLSL's line 4
    spans = locate_errors(f"0:{at}(5): error: something wrong\n0:3(1): error: in the header", p.spans)
    assert [(s.node, s.source.name, line, msg) for s, line, msg in spans] == [
        ("col", "test_lut", 4, "error: something wrong")]


def test_bypass_passes_the_input_through_converted():
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": "x.png"}}, {"id": "th", "type": "threshold"},
                     {"id": "view", "type": "preview"}], [("src.out", "th.in"), ("th.out", "view.in")])
    plan = compile_graph(parse_graph(doc), {"src": SourceInfo((8, 8), 30.0, 1)}, bypass=frozenset({"th"}))
    (p,) = plan.passes
    assert [m.stage.fn for m in p.members] == ["fg_bypass_mask"]
    assert "dot((texelFetch(t0, p, 0)).rgb" in p.source  # video read as a mask: its luma


# ---- a value over several textures: a port type of two RGBA textures, made in the test ------

TENSOR_GLSL = '''// an 8-channel value: the picture and its square, as two RGBA textures
void test_split(sampler2D img, ivec2 p, out vec4 a, out vec4 b) {
    vec4 c = texelFetch(img, p, 0);
    a = c;
    b = c * c;
}
// reads the value's two textures as two samplers
vec4 test_merge(sampler2D a, sampler2D b, ivec2 p) {
    return vec4(0.25 * texelFetch(a, p, 0).rgb + 0.5 * texelFetch(b, p, 0).gbr, 1.0);
}
'''


@pytest.fixture
def tensor_node(monkeypatch):
    """A new port type is one row: `tensor8` (two RGBA textures a value). `color` rebuilt to
    make one on the GPU (thick, two render targets), optionally pass it through the CPU (eight
    channels read back, swapped, uploaded as two textures) and read it in another thick pass."""
    from fusegraph.nodes.contract import PortType

    monkeypatch.setitem(TYPES, "tensor8", PortType("tensor8", gpu=True, components=4, glsl="vec4", textures=2))
    src = ShaderSource.inline(TENSOR_GLSL, "test_tensor")

    def swap(p, xs):
        assert xs[0].shape[2] == 8
        return np.concatenate([xs[0][..., 4:], xs[0][..., :4]], axis=-1)

    def build(p, ins):
        size = ins["in"].size
        stages = [GpuStage("thick", "test_split", src, ("in",), ("video",), "tensor8", size)]
        if p.gamma != 1.0:
            stages.append(CpuStage(("@0",), ("tensor8",), "tensor8", size, swap, label="swap"))
        stages.append(GpuStage("thick", "test_merge", src, (f"@{len(stages) - 1}",), ("tensor8",), "video", size))
        return Body(stages, {"out": len(stages) - 1})

    monkeypatch.setitem(REGISTRY, "color", dataclasses.replace(REGISTRY["color"], build=build,
                                                               structure=lambda p: p.gamma != 1.0))


@pytest.mark.parametrize("cpu", [False, True])
def test_a_value_over_several_textures(tensor_node, run_graph, write_png, cpu):
    from fusegraph.runtime.compiler import describe

    rgb = np.random.default_rng(8).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    doc = graph_doc([{"id": "src", "type": "image", "params": {"path": write_png(rgb)}},
                     {"id": "col", "type": "color", "params": {"gamma": 2.0 if cpu else 1.0}},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("src.out", "col.in"), ("col.out", "view.in")])
    engines: list = []
    got = run_graph(doc, engine_out=engines)["view"].astype(np.float64) / 255.0
    plan = engines[0].plan
    split = plan.passes[0]
    assert split.outputs[0].textures == 2 and len(split.outputs[0].slots) == 2
    assert "layout(location = 1) out vec4 o1;  // col@0[1]" in split.source
    assert "uniform sampler2D t1;  // col@" in plan.passes[1].source  # the second texture, its own unit
    assert "col@0 28x20 tensor8/f1 x2 textures" in describe(plan)
    c = to_float(rgb)[..., :3]
    a, b = to_8bit(c), to_8bit(c * c)  # stored as 8-bit between the passes
    if cpu:
        a, b = b, a
        assert plan.transfer_bytes()[1] >= 20 * 28 * 8  # the CPU read eight channels back
    want = np.round(np.clip(0.25 * a + 0.5 * b[..., [1, 2, 0]], 0, 1) * 255) / 255
    assert np.abs(got[..., :3] - want).max() <= TOL
