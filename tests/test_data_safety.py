"""Nothing lost: outputs are whole or untouched under concurrent writers, failing sinks, signals
and crashes (runtime/atomic.py), and editor saves keep what they cannot load.

The command-line cases run the real `fusegraph` console script in subprocesses; the full disk is
a real tmpfs of a few kilobytes (mounted when we are root, else the test is skipped).
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fusegraph.editor.document import Document
from fusegraph.nodes import REGISTRY
from fusegraph.nodes.spec import OpenContext
from fusegraph.runtime.atomic import PublishError, Staging, publish, sweep, write_partial
from fusegraph.runtime.graph import load_graph
from fusegraph.runtime.errors import GraphInvalid
from test_cli import fusegraph_exe, write_graph


def run_cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([fusegraph_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def endless_graph(folder: Path, size=(160, 120)) -> None:
    write_graph(folder, "g.json", [
        {"id": "src", "type": "pattern", "params": {"width": size[0], "height": size[1], "frames": 0}},
        {"id": "out", "type": "video_out", "params": {"path": "x.mp4", "preset": "ultrafast"}},
    ], [("src.out", "out.in")])


def wait_until(cond, p: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---- the mechanism ----------------------------------------------------------------------------


def test_partials_are_unique_and_published_all_or_nothing(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("old a")
    b.mkdir()  # nothing can be renamed over a folder: the third rename fails
    s = Staging()
    pc, pa, pb = s.new(c), s.new(a), s.new(b)
    other = Staging()
    assert len({pc.path, pa.path, pb.path, other.new(a).path}) == 4
    other.discard()
    for p in (pc, pa, pb):
        write_partial(p, b"new")
    with pytest.raises(PublishError) as e:
        publish([pc, pa, pb])
    assert e.value.partial is pb
    assert a.read_text() == "old a" and not c.exists()  # put back; a new file taken away again
    s.discard()
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]


def test_sweep_removes_only_dead_writers_partials(tmp_path):
    live = Staging()
    mine = live.new(tmp_path / "x.mp4")
    extra = live.new(tmp_path / "x_2.png")  # not locked itself: its staging's lock covers it
    dead = tmp_path / ".y.partial-4242-0badf00d-3.mp4"  # a crashed writer's: nobody holds its lock
    dead.write_bytes(b"half a video")
    unrelated = tmp_path / ".y.partial.mp4"
    unrelated.write_bytes(b"not ours")
    assert sweep(str(tmp_path)) == [str(dead)]
    assert os.path.exists(mine.path) and os.path.exists(extra.path) and unrelated.exists()
    live.discard()
    assert sorted(os.listdir(tmp_path)) == [".y.partial.mp4"]


def test_image_sequence_is_published_whole_or_not_at_all(tmp_path):
    spec = REGISTRY["image_out"]
    for i in range(3):
        (tmp_path / f"f_{i}.png").write_bytes(b"the previous sequence")
    frame = np.zeros((24, 32, 4), np.uint8)
    frame[..., 1:] = 200
    sink = spec.open(spec.Params(path=str(tmp_path / "f_{frame}.png"), mode="sequence"), OpenContext("seq"))
    sink.write({"in": frame}, 0)
    sink.write({"in": frame}, 1)
    sink.discard()  # the run failed at frame 2: the old sequence is not half replaced
    assert all((tmp_path / f"f_{i}.png").read_bytes() == b"the previous sequence" for i in range(3))
    assert partials(tmp_path) == []
    sink = spec.open(spec.Params(path=str(tmp_path / "f_{frame}.png"), mode="sequence"), OpenContext("seq"))
    for i in range(3):
        sink.write({"in": frame}, i)
    sink.close()
    assert all(cv2.imread(str(tmp_path / f"f_{i}.png")) is not None for i in range(3))
    assert partials(tmp_path) == []
    # live (the editor) a run has no end: each image is published as it comes, still whole
    sink = spec.open(spec.Params(path=str(tmp_path / "live_{frame}.png"), mode="sequence"),
                     OpenContext("seq", live=True))
    sink.write({"in": frame}, 0)
    assert cv2.imread(str(tmp_path / "live_0.png")) is not None and partials(tmp_path) == []
    sink.discard()


# ---- class 1: several runs writing one output ----------------------------------------------------


def test_concurrent_writers_publish_one_complete_file(tmp_path):
    """Three runs to one output, started together: each writes its own partial, all succeed,
    and the published file is one of theirs, whole (it used to have no streams)."""
    endless_graph(tmp_path)
    counts = (60, 90, 120)  # long enough that their writing overlaps, not only their start-up
    with ThreadPoolExecutor(len(counts)) as pool:
        results = list(pool.map(lambda n: run_cli(tmp_path, "run", "g.json", "--quiet", "--frames", str(n)),
                                counts))
    for r in results:
        assert r.returncode == 0, r.stderr
    assert frame_count(tmp_path / "x.mp4") in counts
    assert sorted(os.listdir(tmp_path)) == ["g.json", "x.mp4"]


# ---- class 2: a run with two file sinks where the second fails ------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real file system with 32 KiB of room."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_at_the_second_sink_replaces_no_output(tmp_path, small_disk):
    (tmp_path / "a.mp4").write_bytes(b"the previous video")
    (small_disk / "b.png").write_bytes(b"the previous still")
    write_graph(tmp_path, "g.json", [
        {"id": "src", "type": "pattern", "params": {"width": 320, "height": 240, "frames": 5}},
        {"id": "a", "type": "video_out", "params": {"path": "a.mp4", "preset": "ultrafast"}},
        {"id": "b", "type": "image_out", "params": {"path": "small/b.png"}},  # written at the end: no room
    ], [("src.out", "a.in"), ("src.out", "b.in")])
    r = run_cli(tmp_path, "run", "g.json", "--quiet")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "b.png" in r.stderr and "No space left" in r.stderr
    assert (tmp_path / "a.mp4").read_bytes() == b"the previous video"  # published before: not any more
    assert (small_disk / "b.png").read_bytes() == b"the previous still"
    assert sorted(os.listdir(tmp_path)) == ["a.mp4", "g.json", "small"]
    assert os.listdir(small_disk) == ["b.png"]


# ---- class 4: signals and crashes ------------------------------------------------------------------


def test_sigkill_partial_is_swept_sigterm_finalises(tmp_path):
    """A killed run leaves its partial; the next run to the folder removes it but not the partial
    of a run still writing there; SIGTERM then finalises that one (exit 143, playable)."""
    endless_graph(tmp_path)

    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen([fusegraph_exe(), "run", "g.json", "--quiet", "--frames", "100000", "--set",
                                 f"out.path={name}.mp4"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    live, killed = start("live"), start("killed")
    try:
        wait_until(lambda: any(n.startswith(".killed.") for n in partials(tmp_path)), killed)
        wait_until(lambda: any(n.startswith(".live.") for n in partials(tmp_path)), live)
        time.sleep(0.5)  # a few frames in
        killed.kill()
        killed.communicate(timeout=30)
        assert [n for n in partials(tmp_path) if n.startswith(".killed.")]  # SIGKILL cannot be caught
        r = run_cli(tmp_path, "run", "g.json", "--quiet", "--frames", "3", "--set", "out.path=next.mp4")
        assert r.returncode == 0, r.stderr
        left = partials(tmp_path)
        assert [n for n in left if n.startswith(".live.")] and not [n for n in left if n.startswith(".killed.")]
        live.send_signal(signal.SIGTERM)
        out, err = live.communicate(timeout=60)
    finally:
        for p in (live, killed):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert live.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err and "finalised" in err
    assert sorted(os.listdir(tmp_path)) == ["g.json", "live.mp4", "next.mp4"]
    assert frame_count(tmp_path / "live.mp4") >= 1


# ---- class 5: editor saves -----------------------------------------------------------------------

FILE = """{"format": 2, "comment": "my notes",
 "nodes": [
  {"id": "src", "type": "pattern", "params": {"width": 64, "height": 48}, "pos": [NaN, 2]},
  {"id": "glow", "type": "blur", "params": {"sigma": 1000}, "pos": [1, 2]},
  {"id": "fancy", "type": "future_node", "params": {"x": [1, 2]}, "pos": [3, 4]},
  {"id": "out", "type": "preview", "pos": [5, 6]}],
 "links": [{"from": "src.out", "to": "glow.in"}, {"from": "glow.out", "to": "fancy.in"},
           {"from": "src.out", "to": "out.in"}]}
"""


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_editor_save_keeps_what_it_cannot_load_the_mode_and_the_link(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEGRAPH_CONFIG", str(tmp_path / "config"))
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "p.json"
    real.write_text(FILE)
    real.chmod(0o640)
    link = tmp_path / "p.json"
    link.symlink_to(real)
    doc = Document()
    errors = doc.open(link)
    assert {(e.code, e.node) for e in errors} >= {("param_range", "glow"), ("unknown_type", "fancy")}
    assert [n.id for n in doc.graph.nodes] == ["src", "out"] and doc.graph.node("src").pos == (0.0, 2.0)
    doc.move_nodes({"out": (float("nan"), 1.0)})  # ignored: a position must be a number
    doc.move_nodes({"out": (50.0, 60.0)})
    assert doc.autosave()
    recovered = strict_json((tmp_path / "config" / "recovery.json").read_text())
    assert {n["id"] for n in recovered["nodes"]} == {"src", "glow", "fancy", "out"}
    doc.save()
    assert link.is_symlink() and os.readlink(link) == str(real)  # written through the link
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    saved = strict_json(real.read_text())
    original = json.loads(FILE)
    assert original["nodes"][1] in saved["nodes"] and original["nodes"][2] in saved["nodes"]  # as they were
    assert all(l in saved["links"] for l in original["links"]) and saved["comment"] == "my notes"
    assert next(n for n in saved["nodes"] if n["id"] == "out")["pos"] == [50.0, 60.0]
    assert next(n for n in saved["nodes"] if n["id"] == "src")["pos"] == [0.0, 2.0]
    assert sorted(os.listdir(tmp_path / "real")) == ["p.json"]
    with pytest.raises(GraphInvalid) as again:
        load_graph(real)
    assert again.value.errors == doc.errors  # the same problems, still shown
    # a removed node takes its kept links with it; the kept node itself stays
    doc.remove_nodes(["src"])
    doc.save()
    saved = strict_json(real.read_text())
    assert {n["id"] for n in saved["nodes"]} == {"glow", "fancy", "out"}
    assert saved["links"] == [{"from": "glow.out", "to": "fancy.in"}]
