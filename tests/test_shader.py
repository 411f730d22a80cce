"""The shader node: user GLSL against numpy models of the shipped presets' code (real and
random images), fusion, compile errors with the user's line, uniform edits, safety, runaways."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import graph_doc, to_float
from fusegraph.nodes.lib.reference import to_8bit
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.errors import GraphInvalid
from fusegraph.runtime.loader import load_graph, parse_graph
from fusegraph.runtime.resources import shipped_presets

TOL = 1.0 / 255 + 1e-6
LUMA = np.array([0.2126, 0.7152, 0.0722])
VIGNETTE = load_graph(shipped_presets()["shader_vignette"]).node("look").params
EDGES = load_graph(shipped_presets()["shader_edges"]).node("edges").params


def smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def uniforms(p, **override) -> dict:
    return {**{u.name: p.values.get(u.name, u.default) for u in p.uniforms}, **override}


def vignette_reference(img: np.ndarray, u: dict) -> np.ndarray:
    """presets/shader_vignette.json's code in float64."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    d = np.stack([((xs + 0.5) / w - 0.5) * (w / h), (ys + 0.5) / h - 0.5], -1)
    keep = 1.0 - smoothstep(u["radius"] - u["softness"], u["radius"], np.linalg.norm(d, axis=-1))
    c = img[..., :3] * (1.0 - u["strength"] + u["strength"] * keep)[..., None]
    y = (c @ LUMA)[..., None]
    c = (y + (c - y) * u["saturation"]) * np.array(u["tint"])
    return np.concatenate([np.clip(c, 0, 1), img[..., 3:]], -1)


def edges_reference(img: np.ndarray, u: dict) -> np.ndarray:
    """presets/shader_edges.json's code in float64 (Sobel of the luma, clamped at the edges)."""
    y = img[..., :3] @ LUMA
    pad = np.pad(y, 1, mode="edge")
    h, w = y.shape
    at = lambda dx, dy: pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]  # noqa: E731
    gx = sum(i * (2 if j == 0 else 1) * at(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1))
    gy = sum(j * (2 if i == 0 else 1) * at(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1))
    e = smoothstep(u["threshold"], u["threshold"] + 0.25, np.hypot(gx, gy))
    return np.concatenate([e[..., None] * np.array(u["glow"]), np.ones((h, w, 1))], -1)


def images(astronaut):
    rng = np.random.default_rng(21)
    yield "random", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    yield "photo", astronaut[::2, ::2].copy()


def shader_doc(path: str, params, before: list[dict] = ()) -> dict:
    """image [-> before...] -> shader -> preview"""
    nodes = [{"id": "src", "type": "image", "params": {"path": path}}, *before,
             {"id": "sh", "type": "shader", "params": params if isinstance(params, dict) else
              params.model_dump(mode="json")},
             {"id": "view", "type": "preview", "params": {"max_width": 3840}}]
    chain = [n["id"] for n in nodes]
    links = [(f"{a}.out", f"{b}.in0" if b == "sh" else f"{b}.in") for a, b in zip(chain, chain[1:])]
    return graph_doc(nodes, links)


def got(out) -> np.ndarray:
    """The preview's last frame in [0,1], from run_graph's result or an engine's sinks."""
    view = out["view"]
    return np.array(getattr(view, "last", view)).astype(np.float64) / 255.0


def assert_close(a: np.ndarray, want: np.ndarray):
    want = np.round(np.clip(want, 0, 1) * 255.0) / 255.0
    assert a.shape == want.shape
    err = np.abs(a - want).max()
    assert err <= TOL, f"max error {err * 255:.2f}/255"


def test_thin_shader_matches_numpy(run_graph, write_png, astronaut):
    for name, rgb in images(astronaut):
        out = got(run_graph(shader_doc(write_png(rgb), VIGNETTE)))
        assert_close(out, vignette_reference(to_float(rgb), uniforms(VIGNETTE)))


def test_neighbourhood_shader_matches_numpy(run_graph, write_png, astronaut):
    for name, rgb in images(astronaut):
        out = got(run_graph(shader_doc(write_png(rgb), EDGES)))
        assert_close(out, edges_reference(to_float(rgb), uniforms(EDGES)))


def test_thin_shader_fuses_and_fused_equals_unfused(run_graph, write_png, astronaut):
    blur = [{"id": "b", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}}]
    doc = shader_doc(write_png(astronaut[::4, ::4].copy()), VIGNETTE, blur)
    engines: list = []
    fused = got(run_graph(doc, engine_out=engines))
    assert [[m.node for m in p.members] for p in engines[0].plan.passes] == [["b"], ["b", "sh"]]
    unfused = got(run_graph(doc, fuse=False, engine_out=engines))
    assert len(engines[1].plan.passes) == 3
    assert np.abs(fused - unfused).max() <= TOL
    neighbourhood = shader_doc(write_png(astronaut[::4, ::4].copy()), EDGES, blur)
    run_graph(neighbourhood, engine_out=engines)
    assert [[m.node for m in p.members] for p in engines[2].plan.passes] == [["b"], ["b"], ["sh"]]  # heads its pass


def test_two_shader_nodes_share_a_pass(run_graph, write_png):
    """Each node's names are its own (renamed per code), so two shaders fuse into one program."""
    rgb = np.random.default_rng(2).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    half = {"code": "float k(float v) { return v * 0.5; }\nvec4 effect(vec4 in0) { return vec4(k(in0.r), in0.gba); }",
            "uniforms": []}
    inv = {"code": "float k(float v) { return 1.0 - v; }\nvec4 effect(vec4 in0) { return vec4(k(in0.r), in0.gba); }",
           "uniforms": []}
    doc = shader_doc(write_png(rgb), inv, [{"id": "a", "type": "shader", "params": half}])
    doc["links"][0]["to"] = "a.in0"
    engines: list = []
    out = got(run_graph(doc, engine_out=engines))
    assert len(engines[0].plan.passes) == 1
    assert_close(out[..., 0], 1.0 - rgb[..., 0] / 255.0 * 0.5)


def test_mask_output_and_two_inputs(run_graph, write_png):
    rng = np.random.default_rng(4)
    a, b = (rng.integers(0, 256, (12, 20, 3), dtype=np.uint8) for _ in range(2))
    params = {"code": "return abs(in0 - in1.r);", "inputs": ["mask", "video"], "output": "mask", "uniforms": []}
    doc = graph_doc([{"id": "a", "type": "image", "params": {"path": write_png(a)}},
                     {"id": "b", "type": "image", "params": {"path": write_png(b)}},
                     {"id": "sh", "type": "shader", "params": params},
                     {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                    [("a.out", "sh.in0"), ("b.out", "sh.in1"), ("sh.out", "view.in")])
    out = got(run_graph(doc))
    assert out.ndim == 2  # a mask reaches the sink as one channel
    assert_close(out, np.abs(to_float(a)[..., :3] @ LUMA - b[..., 0] / 255.0))  # video read as a mask: luma


def test_neighbourhood_shader_with_a_mask_output(run_graph, write_png):
    """A thick function gives a vec4 whose .r is the mask: the node's float result is wrapped."""
    rgb = np.random.default_rng(6).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    params = {"code": "return texelFetch(in0, min(p + ivec2(1, 0), textureSize(in0, 0) - 1), 0).g;",
              "neighbourhood": True, "output": "mask", "uniforms": []}
    out = got(run_graph(shader_doc(write_png(rgb), params)))
    shifted = np.concatenate([rgb[:, 1:, 1], rgb[:, -1:, 1]], axis=1) / 255.0  # the next pixel's green
    assert out.ndim == 2 and np.abs(out - shifted).max() <= TOL


def test_uniform_edits_change_the_output_without_a_recompile(gpu, write_png, astronaut):
    rgb = astronaut[::4, ::4].copy()
    engine = Engine(parse_graph(shader_doc(write_png(rgb), VIGNETTE)), gpu=gpu)
    engine.open()
    try:
        engine.process(0)
        plan, programs = engine.plan, len(gpu.programs)
        values = {"strength": 1.0, "tint": [0.5, 1.0, 0.25], "saturation": 0.0}
        engine.set_param("sh", "values", values)  # what the inspector's widgets send
        engine.process(1)
        assert engine.plan is plan and len(gpu.programs) == programs
        assert_close(got(engine.sinks), vignette_reference(to_float(rgb), uniforms(VIGNETTE, **values)))
    finally:
        engine.close()


def test_inspector_widgets_come_from_the_declarations():
    from fusegraph.editor.inspector import uniform_widgets, widgets_for
    from fusegraph.nodes.shader import ShaderParams

    kinds = {w.name: w.kind for w in widgets_for(ShaderParams)}
    assert kinds["code"] == "code" and kinds["values"] == "uniforms" and kinds["uniforms"] == "json"
    subs = uniform_widgets("values", VIGNETTE.uniforms)
    assert [(w.name, w.kind) for w in subs] == [("strength", "slider_float"), ("radius", "slider_float"),
                                                ("softness", "slider_float"), ("saturation", "slider_float"),
                                                ("tint", "color")]
    assert (subs[1].min, subs[1].max) == (0.1, 1.5)


BAD = "vec2 d = fg_uv() - 0.5;\nfloat v = 1.0 - dot(d, d);\nreturn vec4(in0.rgb * vv, in0.a);"


def fusegraph(*args, cwd) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "fusegraph"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_validate_compiles_shaders_and_names_the_users_line(tmp_path, write_png):
    doc = shader_doc(write_png(np.zeros((8, 8, 3), np.uint8)), {"code": BAD, "uniforms": []})
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    for cmd in (["validate", "bad.json"], ["run", "bad.json", "--quiet"]):
        r = fusegraph(*cmd, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert "sh: GLSL error: line 3: error: `vv' undeclared" in r.stderr and "Traceback" not in r.stderr
    doc["nodes"][1]["params"]["code"] = "return in0;"
    (tmp_path / "good.json").write_text(json.dumps(doc))
    assert fusegraph("validate", "good.json", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("code,says", [
    ("#version 450\nreturn in0;", "code line 1: #version"),
    ("return in0;\n  #extension GL_ARB_foo : enable", "code line 2: #version, #extension"),
    ("#define X 2.0\nreturn in0 * X;", "#define"),
    ("float t0 = 1.0;\nreturn in0 * t0;", "code line 1: 't0' is a name the generated code uses"),
    ("// fine: main in a comment\nvoid main() {}", "code line 2: 'main'"),
    ("return in0 * u_gain;", "'u_gain' is a name the generated code uses"),
    ("uniform float k;\nreturn in0 * k;", "code line 1: declare uniforms in the node's `uniforms`"),
])
def test_presets_stay_data(code, says):
    with pytest.raises(GraphInvalid) as e:
        parse_graph(shader_doc("x.png", {"code": code, "uniforms": []}))
    assert says in str(e.value)


def test_bad_uniform_declarations_and_values_are_refused():
    for params, says in [
        ({"uniforms": [{"name": "a", "default": 5.0}]}, "outside 0..1"),
        ({"uniforms": [{"name": "a"}, {"name": "a"}]}, "used twice"),
        ({"uniforms": [{"name": "in0"}]}, "reserved"),
        ({"uniforms": [{"name": "vec3"}]}, "a word of GLSL"),
        ({"uniforms": [{"name": "a", "min": 2.0, "max": 1.0, "default": 1.5}]}, "min 2 is above max 1"),
        ({"uniforms": [{"name": "a"}], "values": {"b": 1.0}}, "undeclared"),
        ({"uniforms": [{"name": "a", "type": "vec3", "default": [0, 0, 0]}], "values": {"a": [1.0]}}, "3 number(s)"),
    ]:
        with pytest.raises(GraphInvalid) as e:
            parse_graph(shader_doc("x.png", {"code": "return in0;", **params}))
        assert says in str(e.value)


def test_live_compile_error_keeps_the_last_good_program(gpu, write_png):
    rgb = np.random.default_rng(9).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    engine = Engine(parse_graph(shader_doc(write_png(rgb), {"code": "return 1.0 - in0;", "uniforms": []})),
                    gpu=gpu, live=True)
    engine.open()
    try:
        engine.process(0)
        inverted = got(engine.sinks).copy()
        engine.set_param("sh", "code", BAD)
        engine.process(1)
        assert engine.node_errors["sh"].startswith("GLSL error: line 3: error: `vv' undeclared")
        assert np.array_equal(got(engine.sinks), inverted)  # the last good program runs on
        engine.set_param("sh", "code", "return in0;")
        engine.process(2)
        assert "sh" not in engine.node_errors and np.abs(got(engine.sinks)[..., :3] - rgb / 255.0).max() <= TOL
    finally:
        engine.close()
    engine = Engine(parse_graph(shader_doc(write_png(rgb), {"code": BAD, "uniforms": []})), gpu=gpu, live=True)
    engine.open()  # never compiled: bypassed, its input passes through
    try:
        engine.process(0)
        assert "line 3" in engine.node_errors["sh"] and engine.bypass == {"sh"}
        assert np.abs(got(engine.sinks)[..., :3] - rgb / 255.0).max() <= TOL
    finally:
        engine.close()


# an endless loop (the per-pixel loop budget ends it after a long while: tens of seconds here)
RUNAWAY = "float x = 0.0;\nwhile (x >= 0.0) { x += sin(x) * cos(x) + 1.0; }\nreturn in0 * x;"


def runaway_doc(sink: dict) -> dict:
    return graph_doc([{"id": "pat", "type": "pattern", "params": {"width": 320, "height": 180}},
                      {"id": "sh", "type": "shader", "params": {"code": RUNAWAY, "uniforms": []}},
                      {"id": "b", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}}, sink],
                     [("pat.out", "sh.in0"), ("sh.out", "b.in"), ("b.out", f"{sink['id']}.in")])


def test_runaway_shader_offline_is_an_error_after_the_limit(tmp_path):
    doc = runaway_doc({"id": "out", "type": "image_out", "params": {"path": "out.png"}})
    (tmp_path / "loop.json").write_text(json.dumps(doc))
    r = fusegraph("run", "loop.json", "--frames", "3", "--quiet", "--frame-limit", "0.5", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "frame 0: sh: the GPU did not finish a frame in 0.5 s (a shader that never ends?) in sh" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.json"]  # no output, no partial


LIVE = '''
import json, os, sys, time
from fusegraph.runtime.loader import parse_graph
from fusegraph.runtime.live import LiveRunner
runner = LiveRunner(parse_graph(json.loads(sys.argv[1])), frame_limit=0.5)
runner.start()
start = last = time.monotonic()
longest = 0.0
while time.monotonic() - start < 120:
    time.sleep(0.02)
    now = time.monotonic()
    longest, last = max(longest, now - last), now
    s = runner.stats()
    if s.restarts and s.frame >= 3:
        break
s = runner.stats()
print(json.dumps({"restarts": s.restarts, "errors": s.errors, "frame": s.frame, "longest": longest,
                  "reason": s.restart_reason, "failure": s.failure}))
sys.stdout.flush()
os._exit(0)  # the abandoned context is still draining the runaway draw: do not wait for it
'''


def test_runaway_shader_live_restarts_the_engine_with_the_node_bypassed(tmp_path):
    """In its own process: the abandoned GL context keeps the cores busy until the loop budget
    ends the draw, which the rest of the test suite should not have to share."""
    doc = runaway_doc({"id": "view", "type": "preview", "params": {}})
    r = subprocess.run([sys.executable, "-c", LIVE, json.dumps(doc)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["restarts"] == 1 and out["failure"] == "" and out["frame"] >= 3  # frames flow again
    assert out["errors"]["sh"].startswith("a frame took longer than 0.5 s (a shader that never ends?); bypassed")
    assert out["reason"].startswith("sh: ")
    # the process was never frozen: moderngl holds the GIL while it waits, fusegraph waits on a
    # fence without it (the runaway draw itself takes tens of seconds)
    assert out["longest"] < 5.0, out
