"""`fusegraph batch` on the local engine: real clips, real worker processes, the real console script.

The batch's outputs must equal `fusegraph run` of each clip alone; the manifest must say what
happened to each input; a rerun must redo only what is not done; a killed worker's job is retried.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from media import write_clip
from fusegraph.runtime.batch.jobs import PlanError, plan_jobs
from fusegraph.runtime.batch.manifest import Manifest
from fusegraph.runtime.loader import parse_graph
from test_cli import fusegraph_exe

GRAPH = {"format": 2, "nodes": [
    {"id": "src", "type": "video", "params": {"path": "in.mp4"}},
    {"id": "soft", "type": "blur", "params": {"sigma": 2.0}},
    {"id": "tone", "type": "color", "params": {"contrast": 1.2}},
    {"id": "out", "type": "video_out", "params": {"path": "out.mp4", "preset": "ultrafast"}}],
    "links": [{"from": "src.out", "to": "soft.in"}, {"from": "soft.out", "to": "tone.in"},
              {"from": "tone.out", "to": "out.in"}]}


def fg(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    p = subprocess.run([fusegraph_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def manifest(folder: Path) -> dict[str, dict]:
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == len({r["input"] for r in recs}), "one record per input"
    return {Path(r["input"]).name: r for r in recs}


def make_clips(folder: Path, sizes: dict[str, int], size=(96, 64)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frames in sizes.items():
        write_clip(folder / name, width=size[0], height=size[1], frames=frames)


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "g.json").write_text(json.dumps(GRAPH))
    return tmp_path


def test_batch_equals_single_runs_records_failures_skips_and_reruns(work):
    make_clips(work / "clips", {"a.mp4": 12, "b.mp4": 9, "c.mp4": 15, "done.mp4": 8})
    (work / "clips" / "bad.mp4").write_bytes(np.random.default_rng(3).integers(0, 256, 9000, np.uint8).tobytes())
    (work / "clips" / "notes.txt").write_text("not media: a folder input skips it")

    first = fg(work, "batch", "g.json", "clips/done.mp4", "--out-dir", "out")  # done before the batch
    assert first.returncode == 0, first.stderr
    done_mtime = (work / "out" / "done.mp4").stat().st_mtime_ns

    def single(name: str) -> subprocess.CompletedProcess:  # the same clips, one `run` each
        return fg(work, "run", "g.json", "--quiet", "--set", f"src.path=clips/{name}",
                  "--set", f"out.path=ref/{name}")

    (work / "ref").mkdir()
    with ThreadPoolExecutor(4) as pool:
        batch = pool.submit(fg, work, "batch", "g.json", "clips", "--out-dir", "out", "--workers", "2")
        singles = list(pool.map(single, ["a.mp4", "b.mp4", "c.mp4"]))
        r = batch.result()
    assert all(s.returncode == 0 for s in singles), [s.stderr for s in singles]
    assert r.returncode == 1, r.stderr  # bad.mp4 failed, the others still ran
    recs = manifest(work / "out")
    assert set(recs) == {"a.mp4", "b.mp4", "c.mp4", "done.mp4", "bad.mp4"}
    assert recs["bad.mp4"]["status"] == "failed" and "bad.mp4" in recs["bad.mp4"]["error"]
    assert "src" in recs["bad.mp4"]["error"] and recs["bad.mp4"]["attempts"] == 1  # not retried: not a death
    assert recs["done.mp4"]["status"] == "skipped"
    assert (work / "out" / "done.mp4").stat().st_mtime_ns == done_mtime
    for name, frames in {"a.mp4": 12, "b.mp4": 9, "c.mp4": 15}.items():
        rec = recs[name]
        assert rec["status"] == "ok" and rec["frames"] == frames and rec["error"] is None
        assert rec["output"] == str(work / "out" / name) and rec["seconds"] > 0 and rec["ms_per_frame"] > 0
        assert rec["host"] and rec["attempts"] == 1
        got, want = frames_of(work / "out" / name), frames_of(work / "ref" / name)
        assert len(got) == frames and all(np.array_equal(x, y) for x, y in zip(got, want))
    assert len({recs[n]["pid"] for n in ("a.mp4", "b.mp4", "c.mp4")}) == 2  # two workers shared the jobs
    assert sorted(os.listdir(work / "out")) == ["a.mp4", "b.mp4", "c.mp4", "done.mp4", "manifest.jsonl"]
    assert "failed  clips/bad.mp4" in r.stdout and "ok      clips/a.mp4 -> out/a.mp4" in r.stdout
    assert "3 ok, 1 failed, 1 skipped" in r.stderr

    write_clip(work / "clips" / "bad.mp4", width=96, height=64, frames=7)  # mended: only it runs again
    again = fg(work, "batch", "g.json", "clips", "--out-dir", "out", "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "1 to run, 4 already done" in again.stderr
    assert again.stdout.count("ok      ") == 1 and "clips/bad.mp4" in again.stdout
    recs = manifest(work / "out")
    assert recs["bad.mp4"]["status"] == "ok" and recs["bad.mp4"]["frames"] == 7
    assert all(recs[n]["status"] == "skipped" for n in ("a.mp4", "b.mp4", "c.mp4", "done.mp4"))


def worker_pids(parent: int) -> list[int]:
    """The batch's worker processes: its children started by multiprocessing's spawn."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def killed_mid_job(work: Path, *extra: str, sig: int = signal.SIGKILL) -> tuple[int, str, str]:
    """Run the batch with one worker and signal that worker once it is writing its video."""
    p = subprocess.Popen([fusegraph_exe(), "batch", "g.json", "clips", "--out-dir", "out", "--workers", "1",
                          "--quiet", *extra], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        staging = work / "out" / ".fusegraph-batch"
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline and not any(staging.glob("*/.*")):
            time.sleep(0.02)  # until the job's video file is open: the worker is mid-job
        assert p.poll() is None, p.communicate()
        (pid,) = worker_pids(p.pid)
        os.kill(pid, sig)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert "Traceback" not in err, err
    return p.returncode, out, err


def test_a_killed_worker_is_retried_and_the_output_stays_whole(work):
    make_clips(work / "clips", {"long.mp4": 240}, size=(320, 240))
    rc, out, err = killed_mid_job(work, "--retries", "1")
    assert rc == 0, err
    assert "retry   clips/long.mp4: the worker process died of SIGKILL" in out
    rec = manifest(work / "out")["long.mp4"]
    assert rec["status"] == "ok" and rec["attempts"] == 2 and rec["frames"] == 240
    assert len(frames_of(work / "out" / "long.mp4")) == 240
    assert sorted(os.listdir(work / "out")) == ["long.mp4", "manifest.jsonl"]  # no partial file left
    before = (work / "out" / "long.mp4").read_bytes()

    rc, out, err = killed_mid_job(work, "--retries", "1", "--force", sig=signal.SIGTERM)  # `kill PID`
    assert rc == 0, err
    assert "retry   clips/long.mp4: the worker process was stopped by SIGTERM" in out
    rec = manifest(work / "out")["long.mp4"]
    assert rec["status"] == "ok" and rec["attempts"] == 2 and rec["frames"] == 240
    assert frames_of(work / "out" / "long.mp4") and sorted(os.listdir(work / "out")) == ["long.mp4", "manifest.jsonl"]
    before = (work / "out" / "long.mp4").read_bytes()

    rc, out, err = killed_mid_job(work, "--retries", "0", "--force")  # no retries left: failed
    assert rc == 1, err
    rec = manifest(work / "out")["long.mp4"]
    assert rec["status"] == "failed" and rec["attempts"] == 1
    assert "died of SIGKILL" in rec["error"] and "tried 1 time(s)" in rec["error"]
    assert (work / "out" / "long.mp4").read_bytes() == before  # the earlier output is untouched
    assert sorted(os.listdir(work / "out")) == ["long.mp4", "manifest.jsonl"]


def test_mistakes_are_refused_before_anything_starts(work):
    make_clips(work / "a", {"x.mp4": 2})
    make_clips(work / "b", {"x.mp4": 2})
    r = fg(work, "batch", "g.json", "a", "b", "--out-dir", "out")
    assert r.returncode == 2 and "would both write" in r.stderr and "{parent}" in r.stderr
    assert not (work / "out").exists()  # nothing started, nothing written
    held = Manifest(str(work))  # a batch writing into the folder holds its lock
    try:
        r = fg(work, "batch", "g.json", "a", "--out-dir", ".")
        assert r.returncode == 2 and "another batch is writing" in r.stderr
    finally:
        held.close()
    graph = parse_graph(GRAPH)

    def plan(items, **kw):
        args = {"input_at": [], "output_at": None, "name": "{stem}{ext}", "search_dirs": (), **kw}
        return plan_jobs(graph, [str(work / i) for i in items], str(work / "out"), **args)

    jobs = plan(["a", "b"], name="{parent}_{stem}_clean{ext}")
    assert [Path(j.output).name for j in jobs] == ["a_x_clean.mp4", "b_x_clean.mp4"]
    for items, kw, words in [
        (["nowhere"], {}, "no such file"),
        (["a/*.mov"], {}, "matches no file"),
        (["a"], {"name": "{stem}.{nope}"}, "unknown field {nope}"),
        (["a"], {"name": "sub/{stem}{ext}"}, "plain file name"),
        (["a"], {"name": "{stem}_clean"}, "no extension"),
        (["a"], {"input_at": ["out.path"]}, "not a file input param"),
        (["a"], {"output_at": "tone.contrast"}, "not a file output param"),
    ]:
        with pytest.raises(PlanError, match=words.replace("{", r"\{").replace("}", r"\}")):
            plan(items, **kw)
    two = parse_graph({**GRAPH, "nodes": [*GRAPH["nodes"], {"id": "still", "type": "image_out",
                                                            "params": {"path": "still.png"}}],
                       "links": [*GRAPH["links"], {"from": "tone.out", "to": "still.in"}]})
    with pytest.raises(PlanError, match="still.path would be written by every job"):
        plan_jobs(two, [str(work / "a")], str(work / "out"), input_at=[], output_at="out.path",
                  name="{stem}{ext}", search_dirs=())
    with pytest.raises(PlanError, match="is an input"):
        plan_jobs(graph, [str(work / "a")], str(work / "a"), input_at=[], output_at=None, name="{stem}{ext}",
                  search_dirs=())


def test_ctrl_c_finishes_or_discards_the_running_job_and_a_rerun_continues(work):
    # b is long enough that a quiet machine is still inside it when the signals come (~3 ms a frame)
    make_clips(work / "clips", {"a.mp4": 200, "b.mp4": 1000, "c.mp4": 30}, size=(320, 240))
    staging = work / "out" / ".fusegraph-batch"

    def interrupted(running: str, *signals: int) -> tuple[int, str]:
        p = subprocess.Popen([fusegraph_exe(), "batch", "g.json", "clips", "--out-dir", "out", "--workers", "1",
                              "--quiet"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            partial = f"*/.{running}.partial-*"  # this job's own output, mid-way (not a leftover of the last run)
            while p.poll() is None and time.monotonic() < deadline and not any(
                    f.stat().st_size for f in staging.glob(partial)):
                time.sleep(0.02)  # a job is mid-way
            for sig in signals:
                p.send_signal(sig)
                time.sleep(0.05)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        assert "Traceback" not in err, err
        return p.returncode, err

    rc, err = interrupted("a", signal.SIGINT)  # once: a.mp4 finishes, nothing new starts
    assert rc == 130 and "no new files start" in err and "2 not started" in err, err
    recs = manifest(work / "out")
    assert list(recs) == ["a.mp4"] and recs["a.mp4"]["status"] == "ok" and recs["a.mp4"]["frames"] == 200
    for signals, code in [((signal.SIGINT, signal.SIGINT), 130), ((signal.SIGTERM,), 143)]:
        rc, err = interrupted("b", *signals)  # twice, or `kill`: b.mp4 is stopped and thrown away
        assert rc == code and "discarded" in err, err
        recs = manifest(work / "out")
        assert recs["a.mp4"]["status"] == "skipped"
        assert recs["b.mp4"]["status"] == "failed" and "stopped" in recs["b.mp4"]["error"], (err, recs)
        assert sorted(os.listdir(work / "out")) == ["a.mp4", "manifest.jsonl"]  # no half-written b.mp4
    again = fg(work, "batch", "g.json", "clips", "--out-dir", "out", "--workers", "2", "--quiet")
    assert again.returncode == 0 and "2 to run, 1 already done" in again.stderr, again.stderr
    assert [r["status"] for r in manifest(work / "out").values()] == ["skipped", "ok", "ok"]


def test_the_local_engine_needs_no_ray_and_ray_missing_is_a_clear_error(work):
    """Ray is an optional extra: the local path never imports it; --engine ray without it is exit 2."""
    make_clips(work / "clips", {"a.mp4": 2})
    code = """
import sys
sys.modules["ray"] = None  # as if it were not installed: importing it raises ImportError
from fusegraph.runtime.cli import main
rc = main(["batch", "g.json", "clips", "--out-dir", "out", "--quiet"])
assert rc == 0, rc
assert main(["batch", "g.json", "clips", "--out-dir", "out2", "--engine", "ray"]) == 2
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "--engine ray needs Ray: pip install 'fusegraph[ray]'" in p.stderr and "Traceback" not in p.stderr
    assert manifest(work / "out")["a.mp4"]["status"] == "ok" and not (work / "out2").exists()
