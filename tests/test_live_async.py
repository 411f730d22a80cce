"""Live at camera rate: sources read ahead on their own thread, the network beside the frame
(sync: latest | delay_video), and offline untouched by either."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import graph_doc, wait_for
from fusegraph.nodes.contract import EndOfStream, NodeError, Source, SourceInfo
from fusegraph.runtime.async_stage import AsyncStage
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.frames import LiveFrameReader
from fusegraph.runtime.live import LiveRunner
from fusegraph.runtime.loader import parse_graph
from media import write_clip


class Numbered(Source):
    """Frame i is filled with i; asked indices are recorded; 20 is broken, 30 is the end."""

    def __init__(self):
        self.info = SourceInfo(size=(8, 4), fps=30.0, frame_count=None)
        self.asked: list[int] = []

    def read(self, index: int) -> np.ndarray:
        self.asked.append(index)
        if index == 20:
            raise NodeError("frame 20 is damaged")
        if index >= 30:
            raise EndOfStream
        return np.full((4, 8, 3), index, np.uint8)


def test_live_reader_reads_ahead_skips_what_is_dropped_and_goes_back():
    source = Numbered()
    reader = LiveFrameReader("src", source, ahead=2)
    try:
        assert reader.read(0)[0, 0, 0] == 0 and reader.read(0).shape == (4, 8, 4)
        assert wait_for(lambda: 2 in source.asked)  # the next two, before they are asked for
        assert reader.read(1)[0, 0, 0] == 1
        assert reader.read(10)[0, 0, 0] == 10  # the pipeline fell behind: a jump
        assert not set(range(4, 10)) & set(source.asked)  # the frames between were never read
        assert reader.read(11)[0, 0, 0] == 11
        assert reader.read(3)[0, 0, 0] == 3  # back (a looping file's start)
        with pytest.raises(NodeError, match="damaged"):
            reader.read(20)
        assert reader.read(21)[0, 0, 0] == 21  # and on
        with pytest.raises(EndOfStream):
            reader.read(30)
    finally:
        reader.close()
    assert not any(t.name == "read:src" for t in threading.enumerate())


def test_live_reader_reads_ahead_in_the_engines_gaps(monkeypatch):
    """With a gap event (set between frames), frames no one waits for are read only in the gap;
    a frame the engine waits for is read at once, gap or not."""
    import time

    import fusegraph.runtime.frames as frames

    monkeypatch.setattr(frames, "GAP_WAIT_S", 30.0)  # only the gap (or a wait) may start a read here
    source, gap = Numbered(), threading.Event()
    reader = LiveFrameReader("src", source, ahead=2, gap=gap.is_set)
    try:
        assert reader.read(0)[0, 0, 0] == 0  # asked, in the frame: read at once
        time.sleep(0.3)
        assert source.asked == [0]  # no read ahead while the engine makes its frame
        gap.set()
        assert wait_for(lambda: source.asked == [0, 1, 2])  # the gap: the next two
        gap.clear()
        got = []
        asked = threading.Thread(target=lambda: got.append(reader.read(5)))  # frames 3, 4 skipped
        asked.start()
        asked.join(15)  # the engine waits for frame 5: read at once, though there is no gap
        assert got and got[0][0, 0, 0] == 5 and 3 not in source.asked
    finally:
        reader.close()


def test_async_stage_runs_the_newest_input_and_hands_back_its_errors():
    gate = threading.Event()
    ran = []

    def run(params, inputs):
        ran.append(inputs[0])
        gate.wait(10)
        if inputs[0] == 9:
            raise NodeError("bad input")
        return inputs[0] * 10

    stage = AsyncStage("t", run)
    try:
        first = stage.submit(1, None, [1])
        assert wait_for(lambda: ran == [1])  # running, held at the gate
        stage.submit(2, None, [2])
        third = stage.submit(3, None, [3])  # replaces 2, which never runs
        gate.set()
        out = stage.latest(at_least=third)
        assert (out.index, out.seq, out.value) == (3, third, 30) and first < third
        assert ran == [1, 3]
        out = stage.latest(at_least=stage.submit(9, None, [9]))
        assert out.index == 9 and isinstance(out.error, NodeError)
    finally:
        stage.close()


def blur_doc(clip, sync: str) -> dict:
    """The background-blur graph on a clip, into a preview sink."""
    return graph_doc([{"id": "source", "type": "video", "params": {"path": str(clip)}},
                      {"id": "segment", "type": "neural_net", "params": {"model": "selfie", "sync": sync}},
                      {"id": "refine", "type": "bilateral", "params": {"sigma_space": 1.0, "sigma_color": 0.1,
                                                                       "radius": 2, "early_out": True}},
                      {"id": "background", "type": "blur", "params": {"sigma": 12.0}},
                      {"id": "mix", "type": "composite", "params": {"feather": 0.35, "light_wrap": 0.2}},
                      {"id": "view", "type": "preview", "params": {"max_width": 3840}}],
                     [("source.out", "segment.in"), ("segment.out", "refine.mask"), ("source.out", "refine.guide"),
                      ("source.out", "background.in"), ("source.out", "mix.fg"), ("background.out", "mix.bg"),
                      ("refine.out", "mix.mask"), ("mix.out", "view.in")])


def run_frames(gpu, doc, frames: int, live: bool) -> list[tuple[int, int | None, np.ndarray]]:
    """(frame shown, the mask's age, the preview's picture) per process(i), i = 0..frames-1."""
    engine = Engine(parse_graph(doc), gpu=gpu, live=live)
    engine.open()
    out = []
    try:
        for i in range(frames):
            assert engine.process(i)
            out.append((engine.shown, engine.ages.get("segment"), np.array(engine.sinks["view"].last)))
    finally:
        engine.close()
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 256, 144, frames=10)


def test_offline_is_synchronous_whatever_the_sync_setting(gpu, clip):
    """Offline, every frame's mask is its own (age 0) and `sync` changes nothing."""
    latest = run_frames(gpu, blur_doc(clip, "latest"), 10, live=False)
    delayed = run_frames(gpu, blur_doc(clip, "delay_video"), 10, live=False)
    assert [(s, a) for s, a, _ in latest] == [(i, None) for i in range(10)]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(latest, delayed))
    assert len({a[2].tobytes() for a in latest}) == 10  # the person moves: ten different pictures


def test_live_delay_video_shows_each_frame_with_its_own_mask(gpu, clip):
    """delay_video: the picture is held back to the frame the mask was made from, so every frame
    shown equals the offline frame of that index, exactly."""
    offline = run_frames(gpu, blur_doc(clip, "latest"), 10, live=False)
    live = run_frames(gpu, blur_doc(clip, "delay_video"), 10, live=True)
    shown = [s for s, _, _ in live]
    assert shown[0] == 0 and shown == sorted(shown)  # the first frame waits for its own mask
    assert shown[-1] > 0  # and on: the network (~2 ms here) answered some of the nine frames after
    for s, age, picture in live:
        assert age == 0
        assert np.array_equal(picture, offline[s][2]), f"frame {s}"


def test_live_latest_composites_the_newest_mask_and_says_how_old(gpu, clip):
    offline = run_frames(gpu, blur_doc(clip, "latest"), 10, live=False)
    live = run_frames(gpu, blur_doc(clip, "latest"), 10, live=True)
    assert [s for s, _, _ in live] == list(range(10))  # the picture is never held back
    assert all(age is not None and age >= 0 for _, age, _ in live)
    fresh = [(s, p) for s, age, p in live if age == 0]
    assert fresh[0][0] == 0  # the first frame waits for its own mask (there is no older one)
    for s, picture in fresh:  # a mask of the frame itself: the offline picture
        assert np.array_equal(picture, offline[s][2]), f"frame {s}"


def test_sync_changes_while_running(gpu, clip):
    """`sync` is an edit between frames (no recompile): latest -> delay_video -> latest."""
    offline = run_frames(gpu, blur_doc(clip, "latest"), 10, live=False)
    engine = Engine(parse_graph(blur_doc(clip, "latest")), gpu=gpu, live=True)
    engine.open()
    try:
        plan = engine.plan
        shown = []
        for i in range(10):
            if i in (3, 7):
                engine.set_param("segment", "sync", "delay_video" if i == 3 else "latest")
            assert engine.process(i)
            shown.append(engine.shown)
            if 3 <= i < 7:  # held back: each picture is the offline one of the frame shown
                assert engine.ages["segment"] == 0
                assert np.array_equal(engine.sinks["view"].last, offline[engine.shown][2]), f"frame {i}"
        assert engine.plan is plan and shown[-3:] == [7, 8, 9]
        assert shown[3:7] == sorted(shown[3:7]) and shown[6] >= 3  # the network was given frames 3-6
    finally:
        engine.close()


def test_live_runner_reports_mask_age_thread_time_and_hold_back(clip):
    for sync in ("latest", "delay_video"):
        runner = LiveRunner(parse_graph(blur_doc(clip, sync)), preview_width=128)
        in_frame_when_published = []  # the window a new frame wakes must find the engine between frames
        runner.frame_listeners.append(lambda stats: in_frame_when_published.append(runner.in_frame()))
        runner.start()
        try:
            assert wait_for(lambda: runner.stats().frames > 3 and runner.stats().ages)
            s = runner.stats()
            assert s.failure == "" and set(s.ages) == {"segment"} and s.async_ms["segment"] > 0
            assert s.held_back >= 0 and (s.ages["segment"] == 0 if sync == "delay_video" else True)
        finally:
            runner.stop()
        assert in_frame_when_published and not any(in_frame_when_published) and not runner.in_frame()
        assert not any(t.name.startswith("async:") for t in threading.enumerate())
