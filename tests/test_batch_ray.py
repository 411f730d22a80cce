"""`fusegraph batch --engine ray` on a real Ray cluster: one local head on 127.0.0.1 for the module
(2 CPUs, tests/ray_head.py), shut down at the end.

The same batch as the local tests; a Ray worker is killed mid-job and Ray's own retry reruns it.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from ray_head import local_ray_head
from test_batch import GRAPH, fg, frames_of, make_clips, manifest
from test_cli import fusegraph_exe


@pytest.fixture(scope="module")
def ray_head():
    with local_ray_head(cpus=2) as head:
        yield head


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in os.listdir(f"/proc/{p}/task")
                    for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except FileNotFoundError:
            continue
        out += kids
        todo += kids
    return out


def holder(pids: list[int], folder: Path) -> int | None:
    """The process with a file in `folder` open (the Ray worker writing that job's video)."""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except (FileNotFoundError, PermissionError):
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(folder) + "/"):
                    return pid
            except OSError:
                continue
    return None


def test_ray_batch_retries_a_killed_worker_and_completes_the_manifest(tmp_path, ray_head):
    address, head, env = ray_head
    work = tmp_path
    # The preset lives in a folder of its own with a backdrop image beside it: a file the job
    # reads besides its input, which must travel to the worker (the object store), as a model does.
    (work / "preset").mkdir()
    backdrop = np.random.default_rng(7).integers(0, 256, (48, 64, 3), np.uint8)
    assert cv2.imwrite(str(work / "preset" / "backdrop.png"), backdrop)
    graph = {**GRAPH, "nodes": [*GRAPH["nodes"],
                                {"id": "back", "type": "image", "params": {"path": "backdrop.png"}},
                                {"id": "mix", "type": "composite", "params": {"opacity": 0.6}}],
             "links": [*[l for l in GRAPH["links"] if l["to"] != "out.in"],
                       {"from": "tone.out", "to": "mix.fg"}, {"from": "back.out", "to": "mix.bg"},
                       {"from": "mix.out", "to": "out.in"}]}
    (work / "preset" / "g.json").write_text(json.dumps(graph))
    make_clips(work / "clips", {"a.mp4": 12, "done.mp4": 6})
    make_clips(work / "clips", {"long.mp4": 240}, size=(320, 240))
    (work / "clips" / "bad.mp4").write_bytes(np.random.default_rng(5).integers(0, 256, 9000, np.uint8).tobytes())
    assert fg(work, "batch", "preset/g.json", "clips/done.mp4", "--out-dir", "out", "--input", "src.path").returncode == 0

    p = subprocess.Popen([fusegraph_exe(), "batch", "preset/g.json", "clips", "--out-dir", "out", "--input", "src.path",
                          "--engine", "ray", "--address", address, "--quiet"], cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    with ThreadPoolExecutor(1) as pool:
        ref = pool.submit(fg, work, "run", "preset/g.json", "--quiet", "--set", "src.path=clips/long.mp4",
                          "--set", "out.path=long_ref.mp4")
        try:
            staging = work / "out" / ".fusegraph-batch" / "3"  # long.mp4: the 4th input in name order
            deadline, victim = time.monotonic() + 120, None
            while p.poll() is None and time.monotonic() < deadline and victim is None:
                workers = [pid for pid in descendants(head)
                           if Path(f"/proc/{pid}/cmdline").exists()
                           and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::fusegraph_job")]
                victim = holder(workers, staging)
                time.sleep(0.02)
            assert victim is not None, p.communicate()
            os.kill(victim, signal.SIGKILL)  # mid-job: its video file is open
            out, err = p.communicate(timeout=240)
        finally:
            if p.poll() is None:
                p.kill()
        assert ref.result().returncode == 0
    assert "Traceback" not in err, err
    assert p.returncode == 1, err  # bad.mp4 failed; everything else ran
    assert "on Ray at 127.0.0.1:" in err
    assert "retry   clips/long.mp4" in out
    recs = manifest(work / "out")
    assert set(recs) == {"a.mp4", "bad.mp4", "done.mp4", "long.mp4"}
    assert recs["done.mp4"]["status"] == "skipped"
    assert recs["bad.mp4"]["status"] == "failed" and "bad.mp4" in recs["bad.mp4"]["error"]
    assert recs["a.mp4"]["status"] == "ok" and recs["a.mp4"]["frames"] == 12
    long = recs["long.mp4"]
    assert long["status"] == "ok" and long["attempts"] == 2 and long["frames"] == 240 and long["pid"] != victim
    got, want = frames_of(work / "out" / "long.mp4"), frames_of(work / "long_ref.mp4")
    assert len(got) == 240 and all(np.array_equal(x, y) for x, y in zip(got, want))
    assert sorted(os.listdir(work / "out")) == ["a.mp4", "done.mp4", "long.mp4", "manifest.jsonl"]
    digest = hashlib.sha256((work / "preset" / "backdrop.png").read_bytes()).hexdigest()
    shipped = Path(tempfile.gettempdir()) / "fusegraph-batch-assets" / digest[:32] / "backdrop.png"
    assert shipped.read_bytes() == (work / "preset" / "backdrop.png").read_bytes()  # the worker's copy
