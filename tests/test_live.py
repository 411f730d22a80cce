"""Live mode: a worker thread, frames paced by the source and dropped (never queued) when
the pipeline is slower, edits between frames, any node's output previewed, failures contained."""
from __future__ import annotations

import numpy as np

from conftest import graph_doc, wait_for
from fusegraph.runtime.loader import parse_graph
from fusegraph.runtime.live import LiveRunner


def pattern_doc(fps=30, sink_params=None, sink="preview", size=(160, 90)):
    return graph_doc([{"id": "p", "type": "pattern", "params": {"width": size[0], "height": size[1], "fps": fps,
                                                                "frames": 20}},
                      {"id": "b", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}},
                      {"id": "c", "type": "color", "params": {}},
                      {"id": "out", "type": sink, "params": sink_params or {}}],
                     [("p.out", "b.in"), ("b.out", "c.in"), ("c.out", "out.in")])


def test_preview_any_node_and_edits_between_frames():
    runner = LiveRunner(parse_graph(pattern_doc()), preview_width=80)
    runner.set_preview("b")
    runner.start()
    try:
        assert wait_for(lambda: runner.preview()[0] is not None)
        img, _ = runner.preview()
        assert img.shape == (45, 80, 4) and img[..., :3].std() > 5  # processed pixels, not blank
        first = runner.stats()
        assert first.failure == "" and {"p", "b", "c"} <= set(first.node_ms)
        assert any("b" in members and "c" in members for _, members, _ in first.passes)  # fused pass
        runner.set_preview("c")  # a new tap: a new plan
        assert wait_for(lambda: runner.stats().plan_text != first.plan_text)
        tapped = runner.stats().plan_text
        runner.set_param("c", "saturation", 0.0)  # a uniform: the next frames are grey
        assert wait_for(lambda: (im := runner.preview()[0]) is not None
                        and np.abs(im[..., 0].astype(int) - im[..., 2]).max() <= 2)
        assert runner.stats().plan_text == tapped  # no new plan for a uniform edit
        doc = pattern_doc()  # a structural edit: blur now at half scale
        doc["nodes"][1]["params"]["scale"] = "half"
        runner.set_graph(parse_graph(doc))
        assert wait_for(lambda: "80x45" in runner.stats().plan_text)
        assert runner.stats().frame > 0
    finally:
        runner.stop()
    assert not runner.running


def test_a_slow_pipeline_drops_frames_instead_of_queueing():
    runner = LiveRunner(parse_graph(pattern_doc(fps=240, size=(1280, 720))))  # far more than it can do
    runner.start()
    try:
        assert wait_for(lambda: runner.stats().dropped > 5)
        s = runner.stats()
        assert s.fps < 240 and s.frame_ms > 0
    finally:
        runner.stop()


def test_a_failing_node_is_marked_and_the_rest_keeps_running(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    runner = LiveRunner(parse_graph(pattern_doc(sink="image_out",
                                                sink_params={"path": str(folder / "f{frame:04d}.png"),
                                                             "mode": "sequence"})), record={"out"})
    runner.set_preview("c")
    runner.start()
    try:
        assert wait_for(lambda: any(folder.iterdir()))
        folder.rename(tmp_path / "gone")  # the sink can no longer write (one step: it keeps writing)
        assert wait_for(lambda: "out" in runner.stats().errors)
        seen = runner.stats().frame
        assert wait_for(lambda: runner.stats().frame != seen)  # still running
        assert runner.stats().failure == ""
    finally:
        runner.stop()


def test_a_source_that_cannot_open_is_marked_and_only_its_branch_stops():
    doc = pattern_doc()
    doc["nodes"][0] = {"id": "p", "type": "image", "params": {"path": "/nonexistent/x.png"}}
    doc["nodes"].append({"id": "q", "type": "pattern", "params": {"width": 64, "height": 48}})
    doc["nodes"].append({"id": "view", "type": "preview"})
    doc["links"].append({"from": "q.out", "to": "view.in"})
    runner = LiveRunner(parse_graph(doc))
    runner.set_preview("view")
    runner.start()
    try:  # the failed source's branch stops; the rest runs on
        assert wait_for(lambda: "p" in runner.stats().errors and runner.stats().frame > 3)
        assert "x.png" in runner.stats().errors["p"]  # the editor marks the node that failed
        assert runner.stats().failure == "" and runner.preview()[0] is not None
        seen = runner.stats().frame
        assert wait_for(lambda: runner.stats().frame > seen)
    finally:
        runner.stop()


def test_a_live_run_writes_a_file_sink_only_while_it_records_it(tmp_path):
    """The editor's Record toggle: a live run opens no file sink it was not told to record; one
    taken off the record list is finished and published whole."""
    import av

    target = tmp_path / "rec.mp4"
    doc = pattern_doc(sink="video_out", sink_params={"path": str(target)})
    doc["nodes"][0]["params"]["frames"] = 0
    runner = LiveRunner(parse_graph(doc), preview_width=80)
    runner.set_preview("c")
    runner.start()
    try:
        assert wait_for(lambda: runner.stats().frame > 10)
        assert list(tmp_path.iterdir()) == []  # not even a partial file
        runner.set_record({"out"})
        assert wait_for(lambda: any(".partial" in f.name for f in tmp_path.iterdir()))
        seen = runner.stats().frame
        assert wait_for(lambda: runner.stats().frame > seen + 10)
        runner.set_record(set())  # stop recording: published while the run goes on
        assert wait_for(lambda: target.exists())
        assert runner.running and runner.stats().failure == ""
        assert not [f for f in tmp_path.iterdir() if ".partial" in f.name]
    finally:
        runner.stop()
    with av.open(str(target)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 5
