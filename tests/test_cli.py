"""The real `fusegraph` console script, run as a user runs it (subprocess, cwd = a temp folder).

Exit codes: 0 ok, 2 invalid graph / arguments / input files, 1 failure while running,
130 Ctrl+C with the outputs finalised. A user's mistake never prints a traceback.

Each CLI call costs about a second of imports, so the independent calls are declared up
front (JOBS) and run concurrently once per module; each test then checks its own result.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "presets").glob("*.json"))
STYLISE = str(ROOT / "presets" / "stylise.json")
DEFAULT = str(ROOT / "presets" / "default.json")
SMALL = ["--set", "pattern.width=64", "--set", "pattern.height=48"]


def fusegraph_exe() -> str:
    exe = Path(sys.executable).parent / "fusegraph"
    if exe.exists():
        return str(exe)
    found = shutil.which("fusegraph")
    if not found:
        pytest.skip("the fusegraph console script is not installed (pip install -e .)")
    return found


@dataclass
class Result:
    rc: int
    out: str
    err: str
    cwd: Path

    def assert_clean(self) -> None:
        assert "Traceback" not in self.err, self.err
        assert "Traceback" not in self.out, self.out


def write_graph(folder: Path, name: str, nodes: list[dict], links: list[tuple[str, str]]) -> None:
    doc = {"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}
    (folder / name).write_text(json.dumps(doc))


def write_mp4(path: Path, frames: int = 12, size=(64, 48)) -> None:
    """A small real H.264 MP4 (moving gradient)."""
    w, h = size
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:  # the index first
        st = c.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (np.arange(w)[None, :] * 4 + i * 9) % 256
            img[..., 1] = (np.arange(h)[:, None] * 5) % 256
            c.mux(st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(st.encode(None))


JOBS: dict[str, tuple[list[str], Callable[[Path], None] | None]] = {}


def job(name: str, args: list[str], setup: Callable[[Path], None] | None = None) -> None:
    JOBS[name] = (args, setup)


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, Result]:
    exe = fusegraph_exe()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def run(name: str) -> Result:
        args, setup = JOBS[name]
        cwd = tmp_path_factory.mktemp(name)
        if setup:
            setup(cwd)
        p = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        return Result(p.returncode, p.stdout, p.stderr, cwd)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(JOBS, pool.map(run, JOBS)))


# ---- validate ------------------------------------------------------------------------------------

job("validate_good", ["validate", *map(str, PRESETS)])


def test_validate_shipped_presets(cli):
    r = cli["validate_good"]
    assert r.rc == 0, r.err
    r.assert_clean()
    for p in PRESETS:
        assert f"{p}: ok" in r.out


def _bad_presets(d: Path) -> None:
    write_graph(d, "bad.json", [
        {"id": "src", "type": "pattern", "params": {"width": 5}},
        {"id": "bl", "type": "blurr"},
        {"id": "c", "type": "color", "params": {"shine": 1}},
        {"id": "th", "type": "threshold"},
        {"id": "m", "type": "composite"},
        {"id": "o", "type": "preview"},
    ], [("th.out", "m.fg"), ("ghost.out", "o.in"), ("m.out", "o.in"), ("m.out", "th.nope")])
    write_graph(d, "good.json", [
        {"id": "src", "type": "pattern", "params": {"width": 64, "height": 48}},
        {"id": "o", "type": "preview"}], [("src.out", "o.in")])
    (d / "broken.json").write_text('{"format": 2,\n "nodes": [}\n')
    (d / "future.json").write_text('{"format": 7, "nodes": []}')


job("validate_bad", ["validate", "bad.json", "good.json", "broken.json", "missing.json", "future.json"],
    _bad_presets)


def test_validate_bad_presets_prints_every_problem(cli):
    r = cli["validate_bad"]
    assert r.rc == 2
    r.assert_clean()
    assert "good.json: ok" in r.out
    err = r.err
    expect = [
        "src param 'width'", "[param_range]", "(received 5)",
        "bl: unknown node type; did you mean 'blur'?",
        "c param 'shine': unknown parameter",
        "m.fg: mask output th.out cannot feed video input [type_mismatch]",
        "ghost: link from a node that does not exist",
        "th.nope: no input port 'nope' on threshold (it has: in)",
        "m.bg: required video input is not connected",
        "th.in: required video input is not connected",
        "broken.json", "line 2, column 12",
        "missing.json", "not found",
        "future.json", "newer than this fusegraph reads",
    ]
    for text in expect:
        assert text in err, f"{text!r} not in:\n{err}"
    assert "bad.json: 8 problem(s)" in err


job("run_bad_preset", ["run", "bad.json", "--frames", "1"], _bad_presets)


def test_run_refuses_an_invalid_preset(cli):
    r = cli["run_bad_preset"]
    assert r.rc == 2 and "bad.json: 8 problem(s)" in r.err
    r.assert_clean()
    assert sorted(os.listdir(r.cwd)) == ["bad.json", "broken.json", "future.json", "good.json"]


# ---- run: an MP4 and a trace ---------------------------------------------------------------------

job("run_stylise", ["run", STYLISE, "--frames", "5", "--set", "out.path=styl.mp4", *SMALL,
                    "--profile", "trace.json"])


def test_run_stylise_writes_an_mp4(cli):
    r = cli["run_stylise"]
    assert r.rc == 0, r.err
    r.assert_clean()
    with av.open(str(r.cwd / "styl.mp4")) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 5
    assert {(f.width, f.height) for f in frames} == {(64, 48)}
    assert sorted(os.listdir(r.cwd)) == ["styl.mp4", "trace.json"]  # no temp files left
    assert "5/5" in r.err  # the progress bar got to the end


def test_run_profile_writes_a_chrome_trace(cli):
    r = cli["run_stylise"]
    trace = json.loads((r.cwd / "trace.json").read_text())
    events = trace["traceEvents"]
    rows = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert len(set(rows.values())) == len(rows)  # one row per name
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all(e["dur"] > 0 and e["ts"] >= 0 for e in spans)
    assert all(rows[e["tid"]] == e["name"] for e in spans)  # every span sits on its named row
    names = set(rows.values())
    # every node of the graph is on some row (a fused pass names all its members)
    for node in ("pattern", "glow", "tint", "mix", "out"):
        assert any(node in n for n in names), (node, names)
    passes = [n for n in names if n.startswith("pass")]
    assert passes and any("+" in n for n in passes)  # fused: one row for several nodes
    for n in passes + ["sink:out"]:
        assert sum(e["name"] == n for e in spans) == 5  # once per frame
    assert trace["otherData"]["frames"] == 5


# ---- user mistakes: exit 2, a clear message, no traceback -------------------------------------

job("set_unknown_node", ["run", STYLISE, "--frames", "1", "--set", "nobody.sigma=3"])
job("set_out_of_range", ["run", STYLISE, "--frames", "1", "--set", "out.crf=99"])
job("set_malformed", ["run", STYLISE, "--frames", "1", "--set", "glow-sigma"])


@pytest.mark.parametrize("name, words", [
    ("set_unknown_node", ["nobody", "not in the graph"]),
    ("set_out_of_range", ["out param 'crf'", "51", "(received 99)"]),
    ("set_malformed", ["--set 'glow-sigma'", "expected node.param=value"]),
])
def test_bad_set(cli, name, words):
    r = cli[name]
    assert r.rc == 2
    r.assert_clean()
    for w in words:
        assert w in r.err, r.err
    assert not os.listdir(r.cwd)  # nothing was written


def _missing_image(d: Path) -> None:
    write_graph(d, "g.json", [{"id": "src", "type": "image", "params": {"path": "holiday.png"}},
                              {"id": "out", "type": "image_out", "params": {"path": "o.png"}}],
                [("src.out", "out.in")])


job("missing_image", ["run", "g.json"], _missing_image)


def test_missing_input_image(cli):
    r = cli["missing_image"]
    assert r.rc == 2
    r.assert_clean()
    assert "holiday.png" in r.err and "not found" in r.err and "src" in r.err
    assert os.listdir(r.cwd) == ["g.json"]


job("endless", ["run", DEFAULT, *SMALL])


def test_endless_graph_needs_frames(cli):
    r = cli["endless"]
    assert r.rc == 2
    r.assert_clean()
    assert "--frames" in r.err and "endless" in r.err


def _video_graph(d: Path, data: bytes | None = None) -> None:
    write_graph(d, "g.json", [{"id": "src", "type": "video", "params": {"path": "x.mp4"}},
                              {"id": "out", "type": "video_out", "params": {"path": "out.mp4"}}],
                [("src.out", "out.in")])
    (d / "out.mp4").write_bytes(b"the previous render")
    if data is not None:
        (d / "x.mp4").write_bytes(data)


def _garbage_video(d: Path) -> None:
    _video_graph(d, np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())


def _damaged_video(d: Path) -> None:
    _video_graph(d)
    write_mp4(d / "x.mp4", frames=12)
    data = (d / "x.mp4").read_bytes()
    (d / "x.mp4").write_bytes(data[: len(data) // 2])  # the index is there, half the frames are not


job("garbage_video", ["run", "g.json"], _garbage_video)
job("damaged_video", ["run", "g.json"], _damaged_video)


@pytest.mark.parametrize("name, code", [("garbage_video", 2), ("damaged_video", 1)])
def test_corrupt_video_input(cli, name, code):
    """Not a video: refused at open (2). Damaged mid-way: fails while running (1). Either way the
    message names the file, the existing output is untouched and no partial file is left."""
    r = cli[name]
    assert r.rc == code, r.err
    r.assert_clean()
    assert "x.mp4" in r.err and "src" in r.err
    assert (r.cwd / "out.mp4").read_bytes() == b"the previous render"
    assert sorted(os.listdir(r.cwd)) == ["g.json", "out.mp4", "x.mp4"]


# ---- plan and schema --------------------------------------------------------------------------

job("plan", ["plan", STYLISE])
job("plan_no_fuse", ["plan", STYLISE, "--no-fuse"])
job("schema", ["schema"])


def _passes(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line.strip().startswith("pass")]


def test_plan_prints_passes_members_and_transfers(cli):
    r, unfused = cli["plan"], cli["plan_no_fuse"]
    for x in (r, unfused):
        assert x.rc == 0, x.err
        x.assert_clean()
        assert "members:" in x.out and "uploaded" in x.out and "read back" in x.out
        assert "upload  pattern" in x.out and "sink    out" in x.out
    fused = _passes(r.out)
    assert fused and len(_passes(unfused.out)) > len(fused)
    assert any("+" in p for p in fused) and not any("+" in p for p in _passes(unfused.out))
    assert f"{len(fused)} GPU pass(es)" in r.out and "unfused" in unfused.out
    assert not os.listdir(r.cwd)  # planning opens no sinks: no output files


def test_schema_prints_json(cli):
    r = cli["schema"]
    assert r.rc == 0
    schema = json.loads(r.out)
    assert schema["type"] == "object" and set(schema["properties"]) == {"format", "nodes", "links", "comments"}
    from fusegraph.nodes import REGISTRY

    assert set(schema["properties"]["nodes"]["items"]["discriminator"]["mapping"]) == set(REGISTRY)


# ---- Ctrl+C ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_ctrl_c_finalises_a_playable_video(tmp_path, sig, code):
    """Ctrl+C, SIGHUP (and SIGTERM: test_data_safety) finish the frame in hand and finalise."""
    write_graph(tmp_path, "long.json", [
        {"id": "src", "type": "pattern", "params": {"width": 320, "height": 240, "frames": 100000}},
        {"id": "out", "type": "video_out", "params": {"path": "long.mp4", "preset": "ultrafast"}},
    ], [("src.out", "out.in")])
    p = subprocess.Popen([fusegraph_exe(), "run", "long.json", "--quiet"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob(".long.partial-*.mp4")) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()
        assert list(tmp_path.glob(".long.partial-*.mp4")), "the run never opened its output"
        time.sleep(0.5)  # a few frames in
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert "stopped" in err and "finalised" in err
    assert sorted(os.listdir(tmp_path)) == ["long.json", "long.mp4"]
    with av.open(str(tmp_path / "long.mp4")) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) >= 1 and (frames[0].width, frames[0].height) == (320, 240)
    assert f"after {len(frames)} frame(s)" in err  # every frame it ran is in the file


@pytest.mark.parametrize("args", [["plan", DEFAULT], ["presets", "--paths"]])
def test_a_closed_pipe_stops_quietly(tmp_path, args):
    """`fusegraph plan | head -1`: the reader leaves early; no traceback, exit 141 like SIGPIPE."""
    p = subprocess.Popen([fusegraph_exe(), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before the command prints: its first write fails
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141, err
    assert "Traceback" not in err and not os.listdir(tmp_path)
