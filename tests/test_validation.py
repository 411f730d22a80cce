"""Graph documents: every problem reported at once as records, migration, atomic save, pure-data
loading, the JSON Schema, and every shipped preset validating and running headless.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from fusegraph.nodes import REGISTRY
from fusegraph.runtime import graph as graph_mod
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.graph import Graph, json_schema, make_node, save_graph
from fusegraph.runtime.loader import load_graph, parse_graph, read_document
from fusegraph.runtime.migrate import FORMAT_VERSION, migrate
from fusegraph.runtime.validate import link_error

PRESETS = sorted(Path(__file__).resolve().parent.parent.joinpath("presets").glob("*.json"))
SRC = {"id": "src", "type": "pattern", "params": {"width": 64, "height": 48, "frames": 3}}


def doc(nodes, links=(), **top):
    return {"format": FORMAT_VERSION, "nodes": list(nodes),
            "links": [{"from": a, "to": b} if isinstance(a, str) else a for a, b in links], **top}


def problems(document, source: str = "") -> GraphInvalid:
    with pytest.raises(GraphInvalid) as info:
        parse_graph(document, source)
    exc = info.value
    assert exc.errors and all(isinstance(e, GraphError) for e in exc.errors)
    return exc


def where(exc: GraphInvalid) -> list[tuple]:
    return sorted((e.code, e.node, e.port, e.param) for e in exc.errors)


def only(exc: GraphInvalid) -> GraphError:
    assert len(exc.errors) == 1, exc
    return exc.errors[0]


# ---- one document, many problems: all of them, one record each -----------------------------

MANY = doc(
    [
        SRC,
        {"id": "bl", "type": "blurr"},
        {"id": "c1", "type": "color", "params": {"bogus": 1}},
        {"id": "c2", "type": "color", "params": {"gamma": 99}},
        {"id": "c3", "type": "color", "params": {"contrast": "lots"}},
        {"id": "c1", "type": "color"},
        {"id": "th", "type": "threshold"},
        {"id": "mix", "type": "composite"},
        {"id": "out", "type": "preview"},
        {"id": "lonely", "type": "color"},
        {"id": "a", "type": "color"},
        {"id": "b", "type": "color"},
        {"id": "t2", "type": "color"},
        {"id": "t3", "type": "color"},
    ],
    [
        ("src.out", "th.in"),
        ("ghost.out", "out.in"),  # no such node
        ("src.nope", "mix.bg"),  # no such output port
        ("src.out", "mix.nada"),  # no such input port
        ("th.out", "mix.fg"),  # mask into a video-only input
        ("src.out", "mix.bg"),
        ("src.out", "mix.bg"),  # the same link twice
        ("th.out", "mix.mask"),
        ("mix.out", "out.in"),
        ("src.out", "t2.in"),
        ("mix.out", "t2.in"),  # a second link into one input
        ("a.out", "b.in"),
        ("b.out", "a.in"),  # closes a cycle
        ("srcout", "out.in"),  # malformed endpoint
        ({"from": "src.out"}, None),  # no "to"
        ("c2.out", "t3.in"),  # from a node that failed to parse: not reported again
        ("src.out", "c3.in"),  # into a node that failed to parse: not reported again
    ],
    extra_top=1,
)


def test_many_problems_are_reported_together_one_record_each():
    exc = problems(MANY, "many.json")
    assert where(exc) == sorted([
        ("unknown_key", None, None, None),
        ("unknown_type", "bl", None, None),
        ("unknown_param", "c1", None, "bogus"),
        ("param_range", "c2", None, "gamma"),
        ("param_invalid", "c3", None, "contrast"),
        ("duplicate_id", "c1", None, None),
        ("missing_node", "ghost", None, None),
        ("missing_port", "src", "nope", None),
        ("missing_port", "mix", "nada", None),
        ("type_mismatch", "mix", "fg", None),
        ("duplicate_link", "mix", "bg", None),
        ("input_taken", "t2", "in", None),
        ("cycle", "a", "in", None),
        ("invalid_link", None, None, None),
        ("invalid_link", None, None, None),
        ("missing_input", "lonely", "in", None),
    ])
    by = {(e.code, e.node, e.port, e.param): e for e in exc.errors}
    assert "did you mean 'blur'" in by["unknown_type", "bl", None, None].message
    assert by["unknown_type", "bl", None, None].received == "blurr"
    assert by["unknown_param", "c1", None, "bogus"].received == 1
    assert by["param_range", "c2", None, "gamma"].received == 99
    assert "10" in by["param_range", "c2", None, "gamma"].message
    assert by["param_invalid", "c3", None, "contrast"].received == "lots"
    assert "extra_top" in by["unknown_key", None, None, None].message
    assert "it has: out" in by["missing_port", "src", "nope", None].message
    assert "it has: fg, bg, mask" in by["missing_port", "mix", "nada", None].message
    assert "mask" in by["type_mismatch", "mix", "fg", None].message
    assert by["input_taken", "t2", "in", None].received == "mix.out"
    assert "cycle" in by["cycle", "a", "in", None].message
    malformed = sorted(str(e.received) for e in exc.errors if e.code == "invalid_link")
    assert malformed == ["srcout", "{'from': 'src.out'}"]
    # The exception's text lists every record, with where and what, and the file.
    text = str(exc)
    assert text.startswith("many.json: 16 problem(s)")
    for e in exc.errors:
        assert str(e) in text


def test_partial_holds_the_loadable_part():
    partial = problems(MANY).partial
    assert isinstance(partial, Graph)
    # valid nodes only; a duplicate id keeps its first node only; failed nodes are left out
    assert [n.id for n in partial.nodes] == ["src", "th", "mix", "out", "lonely", "a", "b", "t2", "t3"]
    assert [(l.src, l.dst) for l in partial.links] == [
        ("src.out", "th.in"), ("src.out", "mix.bg"), ("th.out", "mix.mask"), ("mix.out", "out.in"),
        ("src.out", "t2.in"), ("a.out", "b.in")]
    assert partial.node("src").params.width == 64
    # what the editor gets is itself valid except for the graph-level problems it then shows
    assert {e.code for e in problems(partial.model_dump(mode="json", by_alias=True)).errors} == {"missing_input"}


@pytest.mark.parametrize("case, code, node, port, param", [
    ({"id": "x", "type": "blurr"}, "unknown_type", "x", None, None),
    ({"id": "x", "type": "color", "params": {"shine": 2}}, "unknown_param", "x", None, "shine"),
    ({"id": "x", "type": "color", "params": {"gamma": 0.0}}, "param_range", "x", None, "gamma"),
    ({"id": "x", "type": "blur", "params": {"scale": "double"}}, "param_invalid", "x", None, "scale"),
    ({"id": "x", "type": "threshold", "params": {"invert": [1]}}, "param_invalid", "x", None, "invert"),
    ({"id": "x", "type": "color", "colour": 1}, "unknown_key", "x", None, None),
    ({"id": "bad id", "type": "color"}, "invalid", "bad id", None, None),
    ({"type": "color"}, "invalid", "nodes[2]", None, None),
])
def test_each_node_problem_alone(case, code, node, port, param):
    # a valid sink graph plus the one bad node (not linked, so no other complaint)
    exc = problems(doc([SRC, {"id": "out", "type": "preview"}, case], [("src.out", "out.in")]))
    err = only(exc)
    assert (err.code, err.node, err.port, err.param) == (code, node, port, param)


def test_out_of_range_and_wrong_type_carry_the_received_value():
    exc = problems(doc([SRC | {"params": {"width": 5, "fps": "fast"}}, {"id": "o", "type": "preview"}],
                       [("src.out", "o.in")]))
    got = {e.param: e for e in exc.errors}
    assert set(got) == {"width", "fps"}
    assert (got["width"].code, got["width"].received) == ("param_range", 5)
    assert "16" in got["width"].message  # the bound
    assert (got["fps"].code, got["fps"].received) == ("param_invalid", "fast")


def test_unknown_type_without_a_close_match_has_no_hint():
    err = only(problems(doc([SRC, {"id": "o", "type": "preview"}, {"id": "q", "type": "zzzzqqq"}],
                            [("src.out", "o.in")])))
    assert err.code == "unknown_type" and "did you mean" not in err.message


def test_cycle_of_two_colors():
    exc = problems(doc([SRC, {"id": "color", "type": "color"}, {"id": "color2", "type": "color"},
                        {"id": "o", "type": "preview"}],
                       [("color.out", "color2.in"), ("color2.out", "color.in"), ("color2.out", "o.in")]))
    err = only(exc)
    assert err.code == "cycle" and (err.node, err.port) == ("color", "in")
    assert "color2.out" in err.message and "color.in" in err.message
    assert link_error(exc.partial, exc.partial.links[0]) is not None  # the editor asks the same


def test_self_loop_is_a_cycle():
    exc = problems(doc([SRC, {"id": "c", "type": "color"}, {"id": "o", "type": "preview"}],
                       [("src.out", "o.in"), ("c.out", "c.in")]))
    assert [e.code for e in exc.errors] == ["cycle"]


def test_missing_required_input_names_node_and_port():
    exc = problems(doc([SRC, {"id": "m", "type": "composite"}, {"id": "o", "type": "preview"}],
                       [("m.out", "o.in")]))
    assert where(exc) == [("missing_input", "m", "bg", None), ("missing_input", "m", "fg", None)]
    assert "video" in exc.errors[0].message
    # the optional mask input is never required
    assert not any(e.port == "mask" for e in exc.errors)


def test_no_sink():
    err = only(problems(doc([SRC, {"id": "c", "type": "color"}], [("src.out", "c.in")])))
    assert err.code == "no_sink" and err.node is None


def test_graph_problems_come_with_the_other_problems():
    exc = problems(doc([SRC, {"id": "c", "type": "color", "params": {"bogus": 1}},
                        {"id": "m", "type": "composite"}], [("src.out", "m.fg")]))
    assert where(exc) == [("missing_input", "m", "bg", None), ("no_sink", None, None, None),
                          ("unknown_param", "c", None, "bogus")]


def test_consequences_are_not_reported_twice():
    # the sink failed to parse: no "no sink" on top; its input is not "missing" either
    exc = problems(doc([SRC, {"id": "o", "type": "video_out", "params": {"crf": 99}}], [("src.out", "o.in")]))
    assert where(exc) == [("param_range", "o", None, "crf")]
    # an input whose link was refused is not also "missing"
    exc = problems(doc([SRC, {"id": "th", "type": "threshold"}, {"id": "c", "type": "color"},
                        {"id": "o", "type": "preview"}],
                       [("src.out", "th.in"), ("th.out", "c.in"), ("c.out", "o.in")]))
    assert where(exc) == [("type_mismatch", "c", "in", None)]
    # a misspelt type may be the sink: no "no sink" guess on top
    exc = problems(doc([SRC, {"id": "o", "type": "previwe"}], [("src.out", "o.in")]))
    assert where(exc) == [("unknown_type", "o", None, None)]
    assert "did you mean 'preview'" in exc.errors[0].message


def _graph_with(kind: str) -> Graph:
    """A video source, a mask (threshold of it) and an unlinked node `n` of `kind`."""
    nodes = [make_node("pattern", "src", {"width": 64, "height": 48}), make_node("threshold", "th"),
             make_node(kind, "n")]
    return Graph(nodes=nodes, links=[graph_mod.Link(**{"from": "src.out", "to": "th.in"})])


@pytest.mark.parametrize("kind, port", [(k, p.name) for k, s in REGISTRY.items() for p in s.inputs])
@pytest.mark.parametrize("out_type", ["video", "mask"])
def test_port_types_follow_the_declarations(kind, port, out_type):
    """Every declared input takes its type and what it says it accepts, and refuses the rest."""
    g = _graph_with(kind)
    src = "src.out" if out_type == "video" else "th.out"
    err = link_error(g, graph_mod.Link(**{"from": src, "to": f"n.{port}"}))
    if REGISTRY[kind].input(port).accepts_type(out_type):
        assert err is None
    else:
        assert err is not None and err.code == "type_mismatch" and (err.node, err.port) == ("n", port)


def test_mask_and_video_ports_concretely():
    g = _graph_with("composite")
    ok = lambda a, b: link_error(g, graph_mod.Link(**{"from": a, "to": b}))  # noqa: E731
    assert ok("src.out", "n.mask") is None  # video into the mask input: composite accepts it
    assert ok("th.out", "n.mask") is None
    assert ok("th.out", "n.fg").code == "type_mismatch"  # mask into composite.fg: refused
    # a blur of a mask is a mask (the output follows its input): still refused by color.in
    exc = problems(doc([SRC, {"id": "th", "type": "threshold"}, {"id": "bl", "type": "blur"},
                        {"id": "c", "type": "color"}, {"id": "o", "type": "preview"}],
                       [("src.out", "th.in"), ("th.out", "bl.in"), ("bl.out", "c.in"), ("c.out", "o.in")]))
    err = only(exc)
    assert (err.code, err.node, err.port) == ("type_mismatch", "c", "in")
    assert "mask output bl.out" in err.message


# ---- documents that are not graphs at all ------------------------------------------------------


@pytest.mark.parametrize("value", [[1, 2], "graph", 3, None])
def test_not_a_json_object(value):
    err = only(problems(value))
    assert err.code == "invalid" and "JSON object" in err.message


def test_nodes_and_links_must_be_lists():
    exc = problems({"format": 2, "nodes": {"id": "x"}, "links": "a->b"})
    assert [e.code for e in exc.errors].count("invalid") == 2
    assert any("'nodes'" in e.message for e in exc.errors) and any("'links'" in e.message for e in exc.errors)


def test_invalid_json_gives_line_and_column(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "format": 2,\n  "nodes": [,]\n}\n')
    with pytest.raises(GraphInvalid) as info:
        load_graph(p)
    err = only(info.value)
    assert err.code == "json" and "line 3, column 13" in err.message
    assert str(p) in str(info.value)


def test_missing_file_and_unreadable_file(tmp_path):
    with pytest.raises(GraphInvalid) as info:
        load_graph(tmp_path / "nope.json")
    err = only(info.value)
    assert err.code == "file" and "nope.json" in err.message and "not found" in err.message
    with pytest.raises(GraphInvalid) as info:
        read_document(tmp_path)  # a folder
    assert only(info.value).code == "file"
    (tmp_path / "latin1.json").write_bytes(b'{"x": "\xe9"}')
    with pytest.raises(GraphInvalid) as info:
        read_document(tmp_path / "latin1.json")
    assert only(info.value).code == "file"


@pytest.mark.parametrize("version, words", [(FORMAT_VERSION + 1, "newer"), (99, "newer"), (0, "unknown"), ("2", "unknown"),
                                             (True, "unknown")])
def test_future_or_unknown_format_version(version, words):
    err = only(problems({"format": version, "nodes": [SRC]}))
    assert err.code == "format" and words in err.message and err.received == version


# ---- migration -----------------------------------------------------------------------------------

V2 = doc([
    {"id": "src", "type": "pattern", "params": {"width": 64, "height": 48, "frames": 3}, "pos": [10.0, 20.0]},
    {"id": "glow", "type": "blur", "params": {"sigma": 3.0}, "pos": [200.0, 20.5]},
    {"id": "mix", "type": "composite", "params": {"mode": "screen"}, "pos": [400.0, -5.0]},
    {"id": "out", "type": "preview", "pos": [600.0, 0.0]},
], [("src.out", "glow.in"), ("glow.out", "mix.fg"), ("src.out", "mix.bg"), ("mix.out", "out.in")])


def v1_of(v2: dict, marker: dict) -> dict:
    nodes = []
    for n in copy.deepcopy(v2["nodes"]):
        x, y = n.pop("pos")
        nodes.append(n | {"position": {"x": x, "y": y}})
    edges = [l["from"].split(".") + l["to"].split(".") for l in v2["links"]]
    return {**marker, "nodes": nodes, "edges": edges}


@pytest.mark.parametrize("marker", [{}, {"version": 1}, {"format": 1}])
def test_version_1_migrates_to_the_same_graph(marker):
    old = v1_of(V2, marker)
    before = copy.deepcopy(old)
    assert parse_graph(old) == parse_graph(V2)
    assert old == before  # migration does not touch the caller's document
    assert migrate(old)["format"] == FORMAT_VERSION and "edges" not in migrate(old)


def test_version_1_problems_are_reported_like_version_2():
    old = v1_of(V2, {"version": 1})
    old["edges"].append(["src", "out", "ghost", "in"])
    old["edges"].append(["src", "out"])  # not 4 items: passed on, reported as a malformed link
    exc = problems(old)
    assert sorted(e.code for e in exc.errors) == ["invalid_link", "missing_node"]


def test_save_load_round_trip(tmp_path):
    g = parse_graph(V2)
    p = tmp_path / "g.json"
    save_graph(g, p)
    assert load_graph(p) == g
    text = p.read_text()
    assert json.loads(text)["format"] == FORMAT_VERSION
    save_graph(load_graph(p), p)
    assert p.read_text() == text  # stable: saving what was loaded writes the same bytes
    # a migrated v1 file saves as v2 and loads to the same graph
    p1 = tmp_path / "old.json"
    p1.write_text(json.dumps(v1_of(V2, {"version": 1})))
    save_graph(load_graph(p1), p1)
    assert p1.read_text() == text


# ---- atomic save ---------------------------------------------------------------------------------


def _boom(*a, **k):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where_", ["replace", "fsync", "write", "dump"])
def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, where_):
    p = tmp_path / "preset.json"
    p.write_bytes(b'{"format": 2, "nodes": [], "links": []}  \n')  # not what save would write
    old = p.read_bytes()
    g = parse_graph(V2)
    if where_ == "replace":
        monkeypatch.setattr(os, "replace", _boom)
    elif where_ == "fsync":
        monkeypatch.setattr(os, "fsync", _boom)
    elif where_ == "write":
        real = open

        class Failing:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

            def write(self, text):
                self.f.write(text[: len(text) // 2])
                raise OSError(28, "No space left on device")

        monkeypatch.setattr("fusegraph.runtime.atomic.open", lambda *a, **k: Failing(real(*a, **k)), raising=False)
    else:
        monkeypatch.setattr("fusegraph.runtime.graph.to_json", _boom)
    with pytest.raises(OSError):
        save_graph(g, p)
    monkeypatch.undo()
    assert p.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["preset.json"]


def test_interrupted_save_leaves_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "preset.json"
    p.write_text("old")

    def interrupt(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_graph(parse_graph(V2), p)
    monkeypatch.undo()
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["preset.json"]


def test_normal_save_replaces_the_file(tmp_path, monkeypatch):
    p = tmp_path / "preset.json"
    p.write_text("old contents")
    save_graph(parse_graph(V2), p)
    assert load_graph(p) == parse_graph(V2)
    assert os.listdir(tmp_path) == ["preset.json"]
    # and a relative path in the current folder works too
    monkeypatch.chdir(tmp_path)
    save_graph(parse_graph(V2), "rel.json")
    assert load_graph(tmp_path / "rel.json") == parse_graph(V2)


# ---- loading is pure data ------------------------------------------------------------------------

CODE = "__import__('os').system('touch {marker}')"


def test_code_in_strings_stays_data(tmp_path):
    marker = tmp_path / "pwned"
    code = CODE.format(marker=marker)
    document = doc([
        {"id": "src", "type": "pattern", "params": {"width": code, "height": 48}},
        {"id": "__import__", "type": "image_out", "params": {"path": code, "mode": "last"}},
        {"id": "evil", "type": code},
        {"id": "c", "type": "color", "params": {code: 1, "gamma": "eval('1')"}},
    ], [("src.out", "__import__.in"), (f"{code}.out", "c.in")], **{code: code})
    p = tmp_path / "evil.json"
    p.write_text(json.dumps(document))
    with pytest.raises(GraphInvalid) as info:
        load_graph(p)
    exc = info.value
    codes = {(e.code, e.node, e.param) for e in exc.errors}
    assert ("param_invalid", "src", "width") in codes
    assert ("param_invalid", "c", "gamma") in codes
    assert ("unknown_param", "c", code) in codes  # the code string is only a (wrong) param name
    assert ("unknown_type", "evil", None) in codes
    assert ("unknown_key", None, None) in codes
    assert any(e.code == "invalid_link" and e.received == f"{code}.out" for e in exc.errors)
    # the path string is kept verbatim as data in the loadable part
    assert exc.partial.node("__import__").params.path == code
    assert not marker.exists()


def test_objects_and_pickles_are_not_loaded(tmp_path):
    # JSON has no way to name a class; a pickle or a Python literal is just invalid JSON
    import pickle

    p = tmp_path / "g.json"
    p.write_bytes(pickle.dumps({"format": 2}))
    with pytest.raises(GraphInvalid) as info:
        load_graph(p)
    assert only(info.value).code in ("json", "file")
    p.write_text("{'format': 2, 'nodes': [], 'links': []}")  # a Python dict, not JSON
    with pytest.raises(GraphInvalid) as info:
        load_graph(p)
    assert only(info.value).code == "json"


# ---- the JSON Schema -----------------------------------------------------------------------------


def test_schema_validates_the_presets_and_lists_every_node_type():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert PRESETS
    for p in PRESETS:
        errs = list(validator.iter_errors(json.loads(p.read_text())))
        assert not errs, f"{p.name}: {errs[0].message}"
    mapping = schema["properties"]["nodes"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(REGISTRY)
    for kind in REGISTRY:
        node = schema["$defs"][mapping[kind].rsplit("/", 1)[-1]]
        assert node["properties"]["type"]["const"] == kind
    # ranges and unknown keys are in the schema too
    bad = json.loads(PRESETS[0].read_text())
    bad["nodes"][0]["params"]["width"] = 1
    assert list(validator.iter_errors(bad))
    bad = json.loads(PRESETS[0].read_text())
    bad["nodes"][0]["type"] = "blurr"
    assert list(validator.iter_errors(bad))
    assert list(validator.iter_errors({"format": 2, "nodes": [], "links": [], "extra": 1}))


# ---- every shipped preset validates and runs a few frames headless -------------------------------


DEVICES = ("microphone", "speaker")  # presets with sound devices run in test_audio.py, on test devices
HEADLESS = [p for p in PRESETS if not any(n.type in DEVICES for n in load_graph(p).nodes)]


@pytest.mark.parametrize("preset", HEADLESS, ids=lambda p: p.name)
def test_shipped_preset_validates_and_runs(preset, tmp_path, monkeypatch, gpu):
    from fusegraph.runtime.loader import load
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.runner import OK, run_offline

    g = load_graph(preset)
    assert g.format == FORMAT_VERSION
    # small frames; sinks write (relative paths) into tmp_path
    sets = [f"{n.id}.{k}={v}" for n in g.nodes for k, v in (("width", 64), ("height", 48))
            if k in type(n.params).model_fields]
    monkeypatch.chdir(tmp_path)
    small = load(str(preset), sets)
    outputs = [n.params.path for n in small.nodes
               if REGISTRY[n.type].role == "sink" and "path" in type(n.params).model_fields]
    assert all(not os.path.isabs(o) for o in outputs)
    engine = Engine(small, gpu=gpu, search_dirs=(str(preset.parent),))
    assert run_offline(engine, frames=3, quiet=True) == OK
    assert engine.frames_done == 3
    for out in outputs:
        assert (tmp_path / out).is_file() and (tmp_path / out).stat().st_size > 0
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".")]
    assert not leftovers


def test_a_link_retyped_by_a_later_link_is_reported_whatever_the_order():
    """blur of a mask is a mask: a mask must not reach composite.fg through it, link order aside."""
    nodes = [{"id": "src", "type": "pattern", "params": {"width": 32, "height": 24}},
             {"id": "thr", "type": "threshold"}, {"id": "b", "type": "blur"},
             {"id": "mix", "type": "composite"}, {"id": "out", "type": "preview"}]
    links = [{"from": "b.out", "to": "mix.fg"}, {"from": "thr.out", "to": "b.in"}, {"from": "src.out", "to": "thr.in"},
             {"from": "src.out", "to": "mix.bg"}, {"from": "mix.out", "to": "out.in"}]
    for order in (links, links[::-1]):
        with pytest.raises(GraphInvalid) as e:
            parse_graph({"format": 2, "nodes": nodes, "links": order})
        assert any(err.code == "type_mismatch" and err.node == "mix" and err.port == "fg" for err in e.value.errors)


def test_comments_and_reroutes_load_save_and_migrate(tmp_path):
    """Format 3: the editor's comments and a link's reroute dots; a format 2 file reads as it is,
    and what has neither is saved without them."""
    from fusegraph.runtime.graph import save_graph
    from fusegraph.runtime.loader import load_graph

    old = {"format": 2, "nodes": [SRC, {"id": "out", "type": "preview"}],
           "links": [{"from": "src.out", "to": "out.in"}]}
    g = parse_graph(old)
    assert g.format == FORMAT_VERSION == 3 and g.comments == [] and g.links[0].via == ()
    save_graph(g, tmp_path / "plain.json")
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert "comments" not in plain and "via" not in plain["links"][0] and plain["format"] == 3
    doc = {**old, "comments": [{"id": "note", "text": "the source", "rect": [0, 0, 200, 120]}],
           "links": [{"from": "src.out", "to": "out.in", "via": [[150, 40], [170, 90]]}]}
    g = parse_graph(doc)
    save_graph(g, tmp_path / "noted.json")
    again = load_graph(tmp_path / "noted.json")
    assert again.comments[0].text == "the source" and again.links[0].via == ((150.0, 40.0), (170.0, 90.0))
    bad = {**doc, "comments": [{"id": "note", "rect": "wide"}]}
    assert only(problems(bad)).code == "invalid"
