"""The editor's document layer (no Dear PyGui, no GL): edits as commands on the one Graph model,
refused links and values with their reasons, undo/redo, clipboard, files, recent list, recovery.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fusegraph.editor import files
from fusegraph.editor.document import Document
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.graph import Graph, load_graph, save_graph


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("FUSEGRAPH_CONFIG", str(folder))
    return folder


@pytest.fixture
def doc() -> Document:
    return Document()


def kinds_of(d: Document) -> list[str]:
    seen: list[str] = []
    d.listeners.append(seen.append)
    return seen


def chain(d: Document) -> Document:
    """pattern -> threshold (mask) -> composite.mask; pattern -> composite fg/bg; composite -> preview."""
    d.add_node("pattern", (0, 0), {"width": 64, "height": 48}, node_id="src")
    d.add_node("threshold", (200, 0), node_id="thr")
    d.add_node("composite", (400, 0), node_id="mix")
    d.add_node("preview", (600, 0), node_id="out")
    for a, b in [("src.out", "thr.in"), ("src.out", "mix.fg"), ("src.out", "mix.bg"),
                 ("thr.out", "mix.mask"), ("mix.out", "out.in")]:
        assert d.link(a, b) is None
    return d


def state(d: Document) -> dict:
    return d.graph.model_dump(mode="json", by_alias=True)


# ---- building ---------------------------------------------------------------------------------


def test_add_node_fresh_ids_and_refusals(doc):
    seen = kinds_of(doc)
    assert doc.add_node("blur", (10, 20)) == "blur"
    assert doc.add_node("blur") == "blur2"
    assert doc.add_node("blur", params={"sigma": 2.5}) == "blur3"
    assert doc.graph.node("blur").pos == (10.0, 20.0)
    assert doc.graph.node("blur3").params.sigma == 2.5
    assert seen == ["structure"] * 3
    with pytest.raises(ValueError, match="unknown node type"):
        doc.add_node("blurr")
    with pytest.raises(ValueError):
        doc.add_node("blur", node_id="blur")  # taken
    with pytest.raises(ValueError):
        doc.add_node("blur", params={"sigma": -1})  # out of range
    with pytest.raises(ValueError):
        doc.add_node("blur", node_id="2bad")
    assert [n.id for n in doc.graph.nodes] == ["blur", "blur2", "blur3"]
    assert seen == ["structure"] * 3 and doc.dirty


def test_errors_follow_the_graph(doc):
    assert [e.code for e in doc.errors] == ["no_sink"]
    doc.add_node("preview", node_id="out")
    assert [(e.code, e.node, e.port) for e in doc.errors] == [("missing_input", "out", "in")]
    assert list(doc.node_errors) == ["out"] and "not connected" in doc.node_errors["out"][0]
    doc.add_node("pattern", node_id="src")
    doc.link("src.out", "out.in")
    assert doc.errors == [] and doc.node_errors == {}


def test_link_and_refused_links_with_reasons(doc):
    chain(doc)
    assert doc.errors == []
    links = list(doc.graph.links)
    steps = len(doc.history.undo_steps)
    seen = kinds_of(doc)

    doc.add_node("threshold", node_id="t2")
    doc.add_node("color", node_id="c1")
    doc.add_node("color", node_id="c2")
    base = list(doc.graph.links)
    refused = {
        ("thr.out", "c1.in"): "type_mismatch",  # a mask into a video-only input
        ("src.out", "mix.fg"): "duplicate_link",
        ("thr.out", "out.in"): "input_taken",  # a second link into an input (preview takes masks)
        ("src.out", "mix.nope"): "missing_port",
        ("ghost.out", "mix.fg"): "missing_node",
        ("srcout", "mix.fg"): "invalid_link",
    }
    for (a, b), code in refused.items():
        err = doc.link(a, b)
        assert isinstance(err, GraphError) and err.code == code, (a, b, err)
        assert str(err)  # readable for the status bar
    assert doc.link("c1.out", "c2.in") is None
    err = doc.link("c2.out", "c1.in")  # closes a cycle
    assert err.code == "cycle" and err.node == "c1" and err.port == "in"
    mism = doc.link("thr.out", "c1.in")
    assert (mism.node, mism.port) == ("c1", "in") and "mask" in mism.message
    assert doc.graph.links == base + [doc.graph.links[-1]]  # only c1 -> c2 was made
    assert seen == ["structure"] * 4
    assert len(doc.history.undo_steps) == steps + 4
    assert links == base


def test_link_that_would_retype_a_following_output_is_refused(doc):
    chain(doc)
    doc.unlink("mix.fg")
    doc.add_node("blur", node_id="b")
    assert doc.link("b.out", "mix.fg") is None  # blur of a video is a video
    err = doc.link("thr.out", "b.in")  # blur of a mask is a mask: mix.fg takes video only
    assert err is not None and err.code == "type_mismatch" and (err.node, err.port) == ("b", "in")
    assert "mix.fg" in err.message
    assert "b.in" not in {l.dst for l in doc.graph.links}


def test_unlink_can_leave_a_type_conflict_which_is_reported(doc):
    doc.add_node("pattern", node_id="src")
    doc.add_node("threshold", node_id="thr")
    doc.add_node("blur", node_id="b")
    doc.add_node("bilateral", node_id="bil")
    doc.add_node("preview", node_id="out")
    for a, b in [("src.out", "thr.in"), ("thr.out", "b.in"), ("b.out", "bil.mask"), ("bil.out", "out.in")]:
        assert doc.link(a, b) is None
    assert doc.errors == []
    assert doc.unlink("b.in") is True
    assert doc.unlink("b.in") is False
    codes = {(e.code, e.node, e.port) for e in doc.errors}
    assert ("missing_input", "b", "in") in codes and ("type_mismatch", "bil", "mask") in codes


# ---- params ------------------------------------------------------------------------------------


def test_set_param_validated_by_the_params_model(doc):
    chain(doc)
    before = doc.graph
    seen = kinds_of(doc)
    steps = len(doc.history.undo_steps)
    err = doc.set_param("thr", "level", 7.0)
    assert err.code == "param_range" and err.node == "thr" and err.param == "level" and err.received == 7.0
    assert "thr" in str(err) and "level" in str(err)
    err = doc.set_param("mix", "mode", "dissolve")
    assert err.code == "param_invalid" and (err.node, err.param) == ("mix", "mode")
    assert doc.set_param("mix", "bogus", 1).code == "unknown_param"
    assert doc.set_param("ghost", "level", 0.5).code == "missing_node"
    assert doc.graph is before and seen == [] and len(doc.history.undo_steps) == steps

    assert doc.set_param("thr", "level", 0.25) is None
    assert doc.graph.node("thr").params.level == 0.25
    assert seen == ["param"]
    # copy on write: the old graph is untouched, untouched nodes are shared
    assert before.node("thr").params.level != 0.25
    assert doc.graph.node("src") is before.node("src")
    assert doc.set_param("thr", "level", 0.25) is None  # same value: no step, no notice
    assert seen == ["param"] and len(doc.history.undo_steps) == steps + 1


def test_slider_drag_of_20_calls_is_one_undo_step(doc):
    chain(doc)
    doc.add_node("blur", node_id="b")
    start = state(doc)
    steps = len(doc.history.undo_steps)
    seen = kinds_of(doc)
    for i in range(20):
        assert doc.set_param("b", "sigma", 1.0 + i, merge_key="slider-b-sigma") is None
    assert doc.set_param("b", "sigma", 500.0, merge_key="slider-b-sigma").code == "param_range"  # refused, merge stays open
    assert doc.set_param("b", "sigma", 21.0, merge_key="slider-b-sigma") is None
    doc.end_merge()
    assert len(doc.history.undo_steps) == steps + 1 and seen == ["param"] * 21
    end = state(doc)
    assert doc.undo() is True
    assert state(doc) == start and doc.graph.node("b").params.sigma == 4.0
    assert doc.redo() is True and state(doc) == end
    # after end_merge the same key starts a new step; another command also closes the merge
    doc.set_param("b", "sigma", 2.0, merge_key="slider-b-sigma")
    doc.set_param("b", "sigma", 3.0, merge_key="slider-b-sigma")
    doc.move_nodes({"b": (5, 5)})
    doc.set_param("b", "sigma", 4.0, merge_key="slider-b-sigma")
    assert len(doc.history.undo_steps) == steps + 4
    doc.undo(), doc.undo(), doc.undo()
    assert state(doc) == end


def test_drag_back_to_the_start_leaves_no_step(doc):
    doc.add_node("blur", node_id="b")
    steps = len(doc.history.undo_steps)
    for s in (5.0, 6.0, 4.0):  # 4.0 is the default
        doc.set_param("b", "sigma", s, merge_key=1)
    assert len(doc.history.undo_steps) == steps


def test_move_nodes_drag_of_several_nodes_is_one_step(doc):
    chain(doc)
    start = state(doc)
    seen = kinds_of(doc)
    for i in range(10):
        doc.move_nodes({"thr": (200 + i, 10 + i), "mix": (400 + i, 10 + i)}, merge_key="drag")
    doc.end_merge()
    assert doc.graph.node("thr").pos == (209.0, 19.0) and doc.graph.node("mix").pos == (409.0, 19.0)
    assert seen == ["layout"] * 10
    assert doc.undo() and state(doc) == start
    assert seen[-1] == "layout"


# ---- undo / redo of every kind ------------------------------------------------------------------


def test_undo_redo_every_kind_of_edit(doc):
    seen = kinds_of(doc)
    assert not doc.can_undo and not doc.can_redo and doc.undo() is False and doc.redo() is False
    states = [state(doc)]

    def did(kind):
        states.append(state(doc))
        assert seen[-1] == kind

    chain(doc)
    states = [state(doc)]  # the chain itself was 9 steps; undo them below too
    chain_steps = len(doc.history.undo_steps)
    doc.add_node("blur", (50, 60), node_id="b"); did("structure")
    doc.link("src.out", "b.in"); did("structure")
    doc.set_param("b", "sigma", 9.0); did("param")
    doc.move_nodes({"b": (70, 80)}); did("layout")
    doc.unlink("mix.bg"); did("structure")
    doc.link("b.out", "mix.bg"); did("structure")
    new = doc.duplicate(["thr", "mix"]); did("structure")
    doc.paste(doc.copy(["b"])); did("structure")
    doc.remove_nodes(["thr", new[0]]); did("structure")
    kinds = ["structure", "structure", "param", "layout", "structure", "structure", "structure",
             "structure", "structure"]
    assert doc.can_undo and not doc.can_redo
    seen.clear()
    for i in range(len(states) - 1, 0, -1):
        assert doc.undo()
        assert state(doc) == states[i - 1]
    assert seen == kinds[::-1]
    assert doc.can_redo
    seen.clear()
    for i in range(1, len(states)):
        assert doc.redo()
        assert state(doc) == states[i]
    assert seen == kinds and not doc.can_redo
    # undo everything back to the empty document: clean again
    while doc.undo():
        pass
    assert len(doc.history.redo_steps) == len(states) - 1 + chain_steps
    assert doc.graph.nodes == [] and not doc.dirty
    # a new edit after undo drops the redo steps
    doc.add_node("color")
    assert not doc.can_redo


def test_remove_nodes_takes_their_links_and_undo_restores_them(doc):
    chain(doc)
    start = state(doc)
    doc.remove_nodes(["thr", "nonexistent"])
    assert doc.graph.node("thr") is None
    assert all("thr" not in (l.src_node, l.dst_node) for l in doc.graph.links)
    assert len(doc.graph.links) == 3
    steps = len(doc.history.undo_steps)
    doc.remove_nodes(["nonexistent"])  # nothing: no step
    assert len(doc.history.undo_steps) == steps
    doc.undo()
    assert state(doc) == start


# ---- clipboard --------------------------------------------------------------------------------


def test_copy_paste_duplicate_remap_links(doc):
    chain(doc)
    clip = doc.copy(["thr", "mix", "out"])
    assert json.loads(json.dumps(clip)) == clip  # plain JSON: goes on the system clipboard
    assert {n["id"] for n in clip["nodes"]} == {"thr", "mix", "out"}
    assert {(l["from"], l["to"]) for l in clip["links"]} == {("thr.out", "mix.mask"), ("mix.out", "out.in")}
    doc.set_param("mix", "opacity", 0.5)
    clip2 = doc.copy(["mix"])
    assert clip["nodes"][1]["params"]["opacity"] == 1.0  # the clip does not follow the graph

    new = doc.paste(clip, offset=(10, 20))
    assert new == ["thr2", "mix2", "out2"]
    assert doc.graph.node("mix2").pos == (410.0, 20.0)
    assert {(l.src, l.dst) for l in doc.graph.links if l.dst_node in new} == {
        ("thr2.out", "mix2.mask"), ("mix2.out", "out2.in")}
    steps = len(doc.history.undo_steps)
    dup = doc.duplicate(["thr2", "mix2"])
    assert dup == ["thr3", "mix3"] and len(doc.history.undo_steps) == steps + 1
    assert ("thr3.out", "mix3.mask") in {(l.src, l.dst) for l in doc.graph.links}
    assert doc.graph.node("mix3").pos == (440.0, 50.0)
    # links from outside the selection are not copied: the copies show their open inputs
    assert {(e.node, e.port) for e in doc.errors if e.code == "missing_input"} >= {("thr3", "in"), ("mix3", "fg")}
    # the original is untouched, pasting the same clip again works
    assert doc.paste(clip2)[0] == "mix4" and doc.graph.node("mix4").params.opacity == 0.5
    assert doc.copy([])["nodes"] == [] and doc.paste(doc.copy([])) == []

    other = Document()
    assert other.paste(clip, offset=(0, 0)) == ["thr", "mix", "out"]  # ids kept where free
    assert len(other.graph.links) == 2
    with pytest.raises(ValueError):
        other.paste({"nodes": [{"id": "x", "type": "nope"}]})
    with pytest.raises(ValueError):
        other.paste({"nodes": [{"id": "x", "type": "blur", "params": {"sigma": -3}}]})
    assert len(other.graph.nodes) == 3


# ---- files --------------------------------------------------------------------------------------


def test_save_and_reopen_same_graph_and_positions(doc, tmp_path):
    chain(doc)
    doc.move_nodes({"mix": (412.5, -30.25)})
    doc.set_param("thr", "invert", True)
    seen = kinds_of(doc)
    with pytest.raises(ValueError):
        doc.save()  # no path yet
    path = tmp_path / "g.json"
    assert doc.dirty
    doc.save(path)
    assert not doc.dirty and doc.path == path and seen == ["file"]
    assert load_graph(path) == doc.graph

    again = Document()
    assert again.open(path) == []
    assert state(again) == state(doc) and again.graph.node("mix").pos == (412.5, -30.25)
    assert again.path == path and not again.dirty and again.errors == [] and not again.can_undo
    # save() with no argument writes to the remembered path; undo back to the saved state is clean
    again.set_param("thr", "level", 0.1)
    assert again.dirty
    again.undo()
    assert not again.dirty
    again.redo()
    again.save()
    assert load_graph(path).node("thr").params.level == 0.1


def test_failed_save_leaves_the_old_file(doc, tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    chain(doc)
    doc.save(path)
    old = path.read_bytes()
    doc.set_param("thr", "level", 0.9)

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        doc.save()
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "config") == ["g.json"]  # no temp file left
    assert doc.dirty and doc.path == path
    with pytest.raises(OSError):
        doc.save(tmp_path / "missing-folder" / "x.json")
    assert doc.path == path and doc.dirty


BROKEN = {
    "format": 2,
    "nodes": [
        {"id": "src", "type": "pattern", "params": {"width": 64, "height": 48}, "pos": [1, 2]},
        {"id": "thr", "type": "threshold", "pos": [3, 4]},
        {"id": "bad", "type": "blurr"},
        {"id": "c", "type": "color", "params": {"gamma": 99}},
        {"id": "mix", "type": "composite", "pos": [5, 6]},
        {"id": "out", "type": "preview"},
    ],
    "links": [
        {"from": "src.out", "to": "thr.in"},
        {"from": "thr.out", "to": "mix.fg"},  # a mask into a video-only input
        {"from": "src.out", "to": "mix.bg"},
        {"from": "mix.out", "to": "out.in"},
        {"from": "src.out", "to": "c.in"},
    ],
}


def test_invalid_preset_opens_partially_with_all_errors(doc, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(BROKEN))
    with pytest.raises(GraphInvalid) as info:
        load_graph(path)
    seen = kinds_of(doc)
    errors = doc.open(path)
    assert errors == info.value.errors and doc.errors == errors
    codes = {(e.code, e.node) for e in errors}
    assert {("unknown_type", "bad"), ("param_range", "c"), ("type_mismatch", "mix")} <= codes
    assert [n.id for n in doc.graph.nodes] == ["src", "thr", "mix", "out"]
    assert doc.graph.node("mix").pos == (5.0, 6.0)
    assert doc.path == path and not doc.dirty and seen == ["file"]
    assert set(doc.node_errors) >= {"bad", "c", "mix"}
    # the file's problems stay listed while editing; a new node does not take a failed node's id
    assert doc.add_node("color") == "color" and doc.add_node("color") == "color2"
    assert {("unknown_type", "bad"), ("param_range", "c")} <= {(e.code, e.node) for e in doc.errors}
    assert doc._fresh_id("c") == "c2"
    # saving writes what loaded; the file then has only the current graph's problems
    doc.remove_nodes(["color", "color2"])
    doc.save()
    assert {e.code for e in doc.errors} == {"missing_input"}
    with pytest.raises(GraphInvalid) as info:
        load_graph(path)
    assert info.value.errors == doc.errors


def test_unreadable_file_leaves_the_document(doc, tmp_path):
    chain(doc)
    before, steps = state(doc), len(doc.history.undo_steps)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    errors = doc.open(bad)
    assert [e.code for e in errors] == ["json"] and errors[0] in doc.errors
    assert state(doc) == before and doc.path is None and doc.dirty and len(doc.history.undo_steps) == steps
    assert [e.code for e in doc.open(tmp_path / "nope.json")] == ["file"]
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"format": 99, "nodes": []}))
    assert [e.code for e in doc.open(future)] == ["format"]
    assert state(doc) == before
    doc.set_param("thr", "level", 0.3)  # the next change lists the document's own problems again
    assert doc.errors == []


def test_new_document(doc, tmp_path):
    chain(doc)
    doc.save(tmp_path / "a.json")
    seen = kinds_of(doc)
    doc.new()
    assert doc.graph == Graph() and doc.path is None and not doc.dirty and not doc.can_undo
    assert seen == ["file"] and [e.code for e in doc.errors] == ["no_sink"]


def test_recent_files(tmp_path, config):
    d = Document()
    assert d.recent == []
    paths = []
    for i in range(12):
        p = tmp_path / f"g{i}.json"
        save_graph(Graph(), p)
        paths.append(p)
    for p in paths[:11]:
        d.open(p)
    d.save(paths[11])
    assert d.recent == [str(p.absolute()) for p in reversed(paths)][:10]
    d.open(paths[5])  # to the front, not twice
    assert d.recent[0] == str(paths[5].absolute()) and len(d.recent) == 10 and len(set(d.recent)) == 10
    assert json.loads((config / "recent.json").read_text()) == d.recent
    paths[11].unlink()  # missing files are dropped when read
    assert str(paths[11].absolute()) not in Document().recent
    d.open(paths[11])
    assert str(paths[11].absolute()) not in d.recent
    (config / "recent.json").write_text("garbage")
    assert Document().recent == []


def test_config_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("FUSEGRAPH_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert files.config_dir() == tmp_path / "xdg" / "fusegraph"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert files.config_dir() == tmp_path / "home" / ".config" / "fusegraph"
    monkeypatch.setenv("FUSEGRAPH_CONFIG", str(tmp_path / "c"))
    assert files.recovery_path() == tmp_path / "c" / "recovery.json"


def test_autosave_and_recovery(tmp_path, config):
    d = Document()
    assert d.autosave() is False and d.recovery() is None  # nothing to save
    chain(d)
    assert d.autosave() is True
    rec = config / "recovery.json"
    assert rec.is_file() and load_graph(rec) == d.graph

    # next start: the recovery is offered and opens unsaved, without a path
    nxt = Document()
    assert nxt.recovery() == rec
    seen = kinds_of(nxt)
    assert nxt.open_recovery() == []
    assert state(nxt) == state(d) and nxt.dirty and nxt.path is None and seen == ["file"]
    nxt.save(tmp_path / "kept.json")  # saving makes its own recovery file stale: gone
    assert not rec.exists() and nxt.recovery() is None

    # declined: discard
    d.autosave()
    assert Document().recovery() == rec
    Document().discard_recovery()
    assert not rec.exists()

    # an edit undone back to the saved state removes the recovery file this document wrote
    e = Document()
    e.open(tmp_path / "kept.json")
    e.set_param("thr", "level", 0.2)
    assert e.autosave() and rec.exists()
    e.undo()
    assert e.autosave() is False and not rec.exists()

    # a recovery file older than the document's last save is not offered
    e.set_param("thr", "level", 0.3)
    e.autosave()
    e.save()
    save_graph(Graph(), rec)  # e.g. left by another session
    old = e.path.stat().st_mtime_ns - 10_000_000_000
    os.utime(rec, ns=(old, old))
    assert e.recovery() is None
    assert Document().recovery() == rec  # a fresh start has no save to compare with


def test_open_recovery_with_problems_and_unreadable(tmp_path, config):
    d = Document()
    d.add_node("blur")
    d.autosave()
    assert [e.code for e in d.open_recovery()] == ["missing_input", "no_sink"]
    assert d.dirty and [n.id for n in d.graph.nodes] == ["blur"]
    (config / "recovery.json").write_text("{")
    before = state(d)
    assert [e.code for e in d.open_recovery()] == ["json"]
    assert state(d) == before


def test_listeners_get_the_right_kinds(doc, tmp_path):
    seen = kinds_of(doc)
    broken = []

    def bad(kind):
        broken.append(kind)
        raise RuntimeError("view crashed")

    doc.listeners.insert(0, bad)  # a failing view does not stop the others
    doc.add_node("pattern", node_id="src")
    doc.add_node("preview", node_id="out")
    doc.link("src.out", "out.in")
    doc.set_param("src", "width", 32)
    doc.move_nodes({"out": (1, 1)})
    doc.unlink("out.in")
    doc.undo()
    doc.redo()
    doc.duplicate(["src"])
    doc.remove_nodes(["src2"])
    doc.save(tmp_path / "x.json")
    doc.open(tmp_path / "x.json")
    doc.new()
    doc.link("a.out", "b.in")  # refused: no notice
    assert doc.set_param("nope", "x", 1) is not None
    assert seen == ["structure", "structure", "structure", "param", "layout", "structure", "structure",
                    "structure", "structure", "structure", "file", "file", "file"]
    assert broken == seen


def test_camera_device_is_chosen_from_the_cameras_found(monkeypatch):
    import nodes.camera
    from fusegraph.editor.inspector import from_widget, widget_for
    from fusegraph.nodes.camera import CameraParams

    monkeypatch.setattr(nodes.camera, "available_cameras", lambda: [0, 2])
    w = widget_for("device", CameraParams.model_fields["device"])
    assert w.kind == "combo" and w.choices == (0, 2) and "found: 0, 2" in w.doc
    assert from_widget(w, "2") == 2
    monkeypatch.setattr(nodes.camera, "available_cameras", lambda: [])
    assert "no cameras found" in widget_for("device", CameraParams.model_fields["device"]).doc
