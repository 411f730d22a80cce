"""Sound in the graph: files in and out, resampling, sound muxed into video in sync, devices
(PortAudio on ALSA's file plugin), and the errors a user meets."""
from __future__ import annotations

import json
import os
import time
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soxr

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import AudioFormat, NodeError
from fusegraph.runtime.engine import Engine
from fusegraph.runtime.loader import parse_graph
from fusegraph.runtime.runner import INVALID, OK, run_offline
from conftest import wait_for
from tests.sound import alsa_devices, flash_and_click_times, read_wav, voiced, write_flash_click_clip, write_wav

ROOT = Path(__file__).resolve().parent.parent


def graph(nodes: list[dict], links: list[tuple[str, str]]):
    return parse_graph({"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]})


def run(g, gpu, **kw) -> int:
    return run_offline(Engine(g, gpu=gpu, **kw), quiet=True)


# ---- files ---------------------------------------------------------------------------------------


def test_wav_in_resampled_wav_out_matches_soxr_sample_for_sample(tmp_path, gpu):
    x = np.stack([voiced(1.3, 44100), voiced(1.3, 44100, seed=1)], 1)
    write_wav(tmp_path / "in.wav", x, 44100)
    g = graph([{"id": "src", "type": "audio_file", "params": {"path": str(tmp_path / "in.wav")}},
               {"id": "rs", "type": "resample", "params": {"rate": 48000, "channels": 1}},
               {"id": "out", "type": "audio_out", "params": {"path": str(tmp_path / "out.wav")}}],
              [("src.out", "rs.in"), ("rs.out", "out.in")])
    assert run(g, gpu) == OK
    y, rate = read_wav(tmp_path / "out.wav")
    assert rate == 48000 and y.shape[1] == 1
    x16 = read_wav(tmp_path / "in.wav")[0]
    want = soxr.resample(x16.mean(axis=1), 44100, 48000, quality="HQ")
    assert len(y) == len(want) == round(len(x) * 48000 / 44100)
    assert np.abs(y[:, 0] - want).max() < 2 / 32768  # the same conversion, streamed in blocks
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_audio_file_reads_the_sound_of_a_video_and_float_wav_keeps_precision(tmp_path, gpu):
    clip = write_flash_click_clip(tmp_path / "clip.mp4", fps=30, frames=15, flash=5, rate=48000)
    g = graph([{"id": "src", "type": "audio_file", "params": {"path": str(clip)}},
               {"id": "out", "type": "audio_out", "params": {"path": str(tmp_path / "o.wav"),
                                                             "sample_format": "f32"}}],
              [("src.out", "out.in")])
    assert run(g, gpu) == OK
    with av.open(str(tmp_path / "o.wav")) as c:
        st = c.streams.audio[0]
        assert st.codec_context.name == "pcm_f32le" and st.codec_context.sample_rate == 48000
        a = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(st)])
    assert abs(len(a) - 0.5 * 48000) <= 1024  # the track's length (AAC frames of 1024)
    assert abs(np.argmax(np.abs(a)) / 48000 - 5 / 30) < 0.003


# ---- sound with video ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate,denoise", [(48000, False), (44100, False), (48000, True)])
def test_sound_muxed_into_the_video_stays_in_sync(tmp_path, gpu, rate, denoise, dfn3_archive):
    """A flash and a click placed together in the input are together in the output, through a
    resample (48 -> 44.1 kHz) and through the denoiser's 20 ms delay (trimmed offline) too."""
    fps, flash = 30, 23
    clip = write_flash_click_clip(tmp_path / "in.mp4", fps=fps, frames=40, flash=flash, rate=48000)
    t_flash, t_click = flash_and_click_times(clip)
    assert abs(t_flash - flash / fps) < 1e-6 and abs(t_click - t_flash) < 0.002  # the input is right
    g = graph([{"id": "v", "type": "video", "params": {"path": str(clip)}},
               {"id": "a", "type": "audio_file", "params": {"path": str(clip)}},
               {"id": "rs", "type": "resample", "params": {"rate": rate}},
               {"id": "out", "type": "video_out", "params": {"path": str(tmp_path / "out.mp4")}}],
              [("v.out", "out.in"), ("a.out", "rs.in"), ("rs.out", "out.audio")])
    if denoise:  # strength 0: the click passes, delayed by the denoiser's latency
        g = graph([*(n.model_dump() for n in g.nodes),
                   {"id": "dn", "type": "audio_denoise", "params": {"strength": 0.0}}],
                  [("v.out", "out.in"), ("a.out", "rs.in"), ("rs.out", "dn.in"), ("dn.out", "out.audio")])
    assert run(g, gpu) == OK
    t_flash, t_click = flash_and_click_times(tmp_path / "out.mp4")
    assert abs(t_flash - flash / fps) < 1e-6
    assert abs(t_click - t_flash) < 1 / fps  # the bar: under one video frame
    assert abs(t_click - t_flash) < 0.003  # what we actually get: AAC's own precision
    with av.open(str(tmp_path / "out.mp4")) as c:
        a = c.streams.audio[0]
        assert a.codec_context.sample_rate == rate
        assert abs(float(a.duration * a.time_base) - 40 / fps) < 0.03  # cut where the frames end


def test_sound_that_starts_after_the_first_frame_stays_in_sync(tmp_path, gpu):
    """A camera file whose sound track begins 0.25 s after its first frame: audio_file puts the
    sound where the video node's frames are, so the click still meets the flash."""
    clip = write_flash_click_clip(tmp_path / "late.mp4", fps=30, frames=30, flash=20, rate=48000,
                                  sound_starts=0.25)
    t_flash, t_click = flash_and_click_times(clip)
    assert abs(t_click - t_flash) < 0.003  # the file itself is in sync, on its own timeline
    g = graph([{"id": "v", "type": "video", "params": {"path": str(clip)}},
               {"id": "a", "type": "audio_file", "params": {"path": str(clip)}},
               {"id": "out", "type": "video_out", "params": {"path": str(tmp_path / "out.mp4")}}],
              [("v.out", "out.in"), ("a.out", "out.audio")])
    assert run(g, gpu) == OK
    t_flash, t_click = flash_and_click_times(tmp_path / "out.mp4")
    assert abs(t_flash - 20 / 30) < 1e-6 and abs(t_click - t_flash) < 0.003


def test_video_out_refuses_a_rate_aac_cannot_hold_and_asks_for_a_resample_node(tmp_path, gpu):
    write_wav(tmp_path / "odd.wav", voiced(0.5, 37000), 37000)
    g = graph([{"id": "p", "type": "pattern", "params": {"width": 32, "height": 24, "frames": 5}},
               {"id": "a", "type": "audio_file", "params": {"path": str(tmp_path / "odd.wav")}},
               {"id": "out", "type": "video_out", "params": {"path": str(tmp_path / "o.mp4")}}],
              [("p.out", "out.in"), ("a.out", "out.audio")])
    engine = Engine(g, gpu=gpu)
    with pytest.raises(NodeError) as e:
        engine.open()
    assert (e.value.node, e.value.port) == ("out", "audio")
    assert "37000 Hz" in e.value.message and "resample" in e.value.message
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


# ---- errors --------------------------------------------------------------------------------------


def test_bad_sound_files_get_clear_errors(tmp_path, gpu):
    (tmp_path / "notes.wav").write_text("not a sound")
    clip = tmp_path / "silent.mp4"
    with av.open(str(clip), "w") as c:
        st = c.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 32, 32, "yuv420p"
        c.mux(st.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        c.mux(st.encode(None))
    cases = {"missing.wav": "file not found", "notes.wav": "not a sound or video file that FFmpeg can read",
             "silent.mp4": "has no audio track"}
    for name, words in cases.items():
        g = graph([{"id": "mic", "type": "audio_file", "params": {"path": str(tmp_path / name)}},
                   {"id": "out", "type": "audio_out", "params": {"path": str(tmp_path / "o.wav")}}],
                  [("mic.out", "out.in")])
        with pytest.raises(NodeError) as e:
            Engine(g, gpu=gpu).open()
        assert e.value.node == "mic" and words in e.value.message and name in e.value.message
    assert not (tmp_path / "o.wav").exists()


def test_no_sound_device_is_a_clear_error_listing_what_exists():
    spec = REGISTRY["microphone"]
    from fusegraph.nodes.contract import OpenContext
    from fusegraph.nodes.lib.sound_devices import devices

    if devices("input"):
        pytest.skip("this machine has a sound input")
    with pytest.raises(NodeError) as e:
        spec.open(spec.Params(), OpenContext(node_id="mic"))
    assert e.value.node == "mic" and "no microphone" in e.value.message and "audio_file" in e.value.message
    with pytest.raises(NodeError) as e:
        REGISTRY["speaker"].open(REGISTRY["speaker"].Params(),
                                 OpenContext(node_id="spk", audio=AudioFormat(48000, 1)))
    assert e.value.node == "spk" and "no speaker" in e.value.message


def test_resample_formats_and_channel_mixing():
    spec = REGISTRY["resample"]
    p = spec.Params(rate=0, channels=2)
    assert spec.audio_format(p, {"in": AudioFormat(22050, 1)}) == AudioFormat(22050, 2)
    proc = spec.stream(p, {"in": AudioFormat(22050, 1)})
    x = np.arange(6, dtype=np.float32).reshape(-1, 1)
    assert np.array_equal(proc.process(x), np.repeat(x, 2, axis=1))
    down = spec.stream(spec.Params(rate=0, channels=1), {"in": AudioFormat(22050, 2)})
    assert np.allclose(down.process(np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)), [[0.5], [0.5]])
    with pytest.raises(NodeError):
        spec.audio_format(spec.Params(rate=500), {"in": AudioFormat(48000, 1)})


# ---- devices: PortAudio on ALSA's file plugin -----------------------------------------------------


def _fusegraph(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "fusegraph"
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _device_run(tmp_path: Path, nodes: list[dict], links: list[tuple[str, str]], said: np.ndarray,
                frames: int) -> subprocess.CompletedProcess:
    (tmp_path / "mic.raw").write_bytes(said.tobytes())
    env = alsa_devices(tmp_path, tmp_path / "mic.raw")
    doc = {"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    return _fusegraph(["run", "g.json", "--frames", str(frames)], tmp_path, env)


def _never_zero(seconds: float) -> np.ndarray:
    t = np.arange(int(48000 * seconds)) / 48000
    return np.round((0.3 + 0.2 * np.sin(2 * np.pi * 440 * t)) * 32767).astype("<i2")


def test_speaker_plays_every_sample_in_order_offline(tmp_path):
    """The test devices are ALSA file-plugin PCMs, not paced by a clock: the speaker's device
    asks for sound faster than it comes and gets silence (exact zeros, counted as underruns)
    in between. The sound sent never touches zero, so without the zeros what was heard must be
    what was sent, sample for sample, in order."""
    said = _never_zero(0.5)
    write_wav(tmp_path / "said.wav", said.astype(np.float32) / 32768, 48000)
    r = _device_run(tmp_path, [{"id": "file", "type": "audio_file", "params": {"path": "said.wav"}},
                               {"id": "spk", "type": "speaker", "params": {"device": "fgspk"}}],
                    [("file.out", "spk.in")], said, frames=15)
    assert r.returncode == OK, r.stderr
    heard = np.frombuffer((tmp_path / "speaker.raw").read_bytes(), "<i2")
    heard = heard[heard != 0]
    assert len(heard) == len(said)
    assert np.abs(heard.astype(int) - said).max() <= 1  # float32 round trip


def test_microphone_records_from_a_device_in_order(tmp_path):
    """Recorded sound is the device's, block after block in order. (The unpaced test device
    skips ahead in its file when it outruns its reader, so gaps between blocks are allowed.)"""
    said = _never_zero(3.0)
    r = _device_run(tmp_path, [{"id": "mic", "type": "microphone", "params": {"device": "fgmic"}},
                               {"id": "out", "type": "audio_out", "params": {"path": "rec.wav"}}],
                    [("mic.out", "out.in")], said, frames=15)
    assert r.returncode == OK, r.stderr
    rec, rate = read_wav(tmp_path / "rec.wav")
    rec = np.round(rec[:, 0] * 32768).astype(int)
    assert rate == 48000 and len(rec) == 24000  # 15 frames at 30 fps
    assert np.abs(rec[:480] - said[:480]).max() <= 1  # the first block is the device's first
    at = 0
    for i in range(0, len(rec), 480):
        block = rec[i:i + 480]
        starts = at + np.nonzero(np.abs(said[at:len(said) - len(block) + 1] - block[0]) <= 1)[0]
        hits = [j for j in starts if np.abs(said[j:j + len(block)] - block).max() <= 1][:1]
        assert hits, f"block {i // 480} is not in what was said after the previous one"
        at = hits[0] + len(block)


def test_microphone_counts_the_blocks_it_has_no_room_for():
    from fusegraph.nodes.microphone import Microphone

    mic = object.__new__(Microphone)  # its callback alone, no device
    mic.blocks, mic.overruns = __import__("queue").Queue(maxsize=2), 0
    status = type("Status", (), {"input_overflow": False})()
    for _ in range(5):
        mic._callback(np.ones((480, 1), np.float32), 480, None, status)
    status.input_overflow = True
    mic._callback(np.ones((480, 1), np.float32), 480, None, status)
    assert mic.overruns == 3 + 2  # three with no room, and one the device reported (also no room)


def test_a_missing_device_in_a_preset_fails_before_anything_runs(tmp_path):
    (tmp_path / "mic.raw").write_bytes(b"\0" * 960)
    env = alsa_devices(tmp_path, tmp_path / "mic.raw")
    doc = {"format": 2, "nodes": [
        {"id": "mic", "type": "microphone", "params": {"device": "usb headset"}},
        {"id": "out", "type": "audio_out", "params": {"path": "o.wav"}}],
        "links": [{"from": "mic.out", "to": "out.in"}]}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    r = _fusegraph(["run", "g.json", "--frames", "3"], tmp_path, env)
    assert r.returncode == INVALID
    assert "Traceback" not in r.stderr
    assert "mic: no microphone (input) device named 'usb headset'; there are:" in r.stderr
    assert "fgmic" in r.stderr
    assert not (tmp_path / "o.wav").exists()


# ---- live ----------------------------------------------------------------------------------------


def test_live_sound_runs_on_its_own_thread_beside_slow_video(tmp_path):
    """Live, the sound is paced by its own clock on its own thread: a video pipeline far slower
    than real time does not hold it back; a gain-free edit of a processor reaches it as it runs."""
    from fusegraph.runtime.live import LiveRunner

    write_wav(tmp_path / "voice.wav", voiced(2.0, 44100), 44100)
    g = graph([{"id": "p", "type": "pattern", "params": {"width": 160, "height": 90, "fps": 30}},
               {"id": "b", "type": "blur", "params": {"sigma": 2.0, "scale": "full"}},
               {"id": "view", "type": "preview"},
               {"id": "a", "type": "audio_file", "params": {"path": str(tmp_path / "voice.wav"), "loop": True}},
               {"id": "rs", "type": "resample", "params": {"rate": 48000}},
               {"id": "rec", "type": "audio_out", "params": {"path": str(tmp_path / "rec.wav")}}],
              [("p.out", "b.in"), ("b.out", "view.in"), ("a.out", "rs.in"), ("rs.out", "rec.in")])
    runner = LiveRunner(g, preview_width=80, record={"rec"})
    runner.yield_s = 0.25  # the video pipeline manages 4 fps at most
    runner.start()
    try:
        time.sleep(1.5)
        stats = runner.stats()
        assert stats.failure == "" and "rs" in stats.node_ms
        # level meters: the voice's RMS is about -17 dBFS, in each node it passes and at the sink
        assert set(stats.levels) == {"a", "rs", "rec"}
        assert all(-30 < db < -8 for db in stats.levels.values()), stats.levels
        runner.set_param("rs", "quality", "VHQ")  # the same format: taken without a restart
        edited = g.model_copy(deep=True)
        edited.node("b").params.scale = "half"  # a structural video edit leaves the sound be
        runner.set_graph(edited)
        time.sleep(0.5)
    finally:
        runner.stop()
    rec, rate = read_wav(tmp_path / "rec.wav")
    assert rate == 48000
    assert 1.6 < len(rec) / rate < 2.6  # ~2 s of sound while the video ran at 4 fps
    assert stats.fps < 6  # while the video ran at 4 fps


# ---- the shipped presets with sound ----------------------------------------------------------------


def test_voice_denoise_preset_runs_headless_on_test_devices(tmp_path, dfn3_archive):
    """microphone -> audio_denoise -> speaker, on the ALSA file-plugin devices: a second of
    steady noise with mains hum said into the microphone comes out of the speaker far quieter."""
    rng = np.random.default_rng(3)
    t = np.arange(96000) / 48000
    noise = 0.03 * rng.standard_normal(len(t)) + 0.05 * np.sin(2 * np.pi * 50 * t)
    said = np.round(noise * 32767).astype("<i2")
    (tmp_path / "mic.raw").write_bytes(said.tobytes())
    env = alsa_devices(tmp_path, tmp_path / "mic.raw")
    preset = ROOT / "presets" / "voice_denoise.json"
    r = _fusegraph(["run", str(preset), "--frames", "30", "--set", "mic.device=fgmic",
                    "--set", "speaker.device=fgspk"], tmp_path, env)
    assert r.returncode == OK, r.stderr
    heard = np.frombuffer((tmp_path / "speaker.raw").read_bytes(), "<i2").astype(np.float64) / 32767
    assert len(heard) >= 48000
    louder = np.sqrt(np.mean(said[:48000].astype(np.float64) ** 2)) / 32767
    # the unpaced test speaker adds silence between blocks: compare the loudest tenth of 10 ms windows
    windows = np.sqrt(np.mean(heard[: len(heard) // 480 * 480].reshape(-1, 480) ** 2, axis=1))
    loud = np.sort(windows)[-max(1, len(windows) // 10):].mean()
    assert 20 * np.log10(loud / louder) < -12


def test_video_call_preset_blurs_and_denoises_into_one_file_in_sync(tmp_path, monkeypatch, gpu, dfn3_archive):
    from fusegraph.runtime.loader import load

    preset = ROOT / "presets" / "video_call_clean.json"
    monkeypatch.chdir(tmp_path)
    engine = Engine(load(str(preset), []), gpu=gpu, search_dirs=(str(preset.parent),))
    assert run_offline(engine, frames=45, quiet=True) == OK
    out = tmp_path / "video_call_clean.mp4"

    def track(path):
        with av.open(str(path)) as c:
            return np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)]), c.streams.video[0].frames
    noisy, _ = track(preset.parent / "media" / "person.mp4")
    clean, frames = track(out)
    assert frames == 45 and abs(len(clean) - 1.5 * 48000) <= 1024
    n = 48000  # the first second: in sync (no lag) and the noise floor far lower
    lag = int(np.argmax(np.correlate(clean[:n], noisy[:n - 960], "valid")))
    assert lag == 0

    def floor(x):
        return np.percentile(np.sqrt(np.mean(x[:n].reshape(-1, 480) ** 2, axis=1)), 10)
    assert 20 * np.log10(floor(clean) / floor(noisy)) < -10


def test_a_rate_the_denoiser_cannot_take_asks_for_a_resample_node_at_the_command_line(tmp_path, dfn3_archive):
    write_wav(tmp_path / "talk.wav", voiced(0.5, 44100), 44100)
    doc = {"format": 2, "nodes": [
        {"id": "talk", "type": "audio_file", "params": {"path": "talk.wav"}},
        {"id": "denoise", "type": "audio_denoise", "params": {}},
        {"id": "out", "type": "audio_out", "params": {"path": "clean.wav"}}],
        "links": [{"from": "talk.out", "to": "denoise.in"}, {"from": "denoise.out", "to": "out.in"}]}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    r = _fusegraph(["run", "g.json"], tmp_path, dict(os.environ))
    assert r.returncode == INVALID and "Traceback" not in r.stderr
    assert "denoise.in: audio_denoise needs 48000 Hz audio, got 44100 Hz: insert a resample node" in r.stderr
    assert not (tmp_path / "clean.wav").exists() and not list(tmp_path.glob(".*"))


def test_level_meter_text_and_colours():
    from fusegraph.editor.meters import meter_colour, meter_text

    assert meter_text(-30.0) == "[||||||||........]  -30 dBFS"
    assert meter_text(-200.0).startswith("[................]") and meter_text(3.0).startswith("[||||||||||||||||]")
    assert meter_colour(-20) != meter_colour(-6) != meter_colour(-1)


# ---- the validator asks for a resample node; the editor inserts it in one click --------------------


def test_the_editor_inserts_the_resample_node_a_rate_error_asks_for(tmp_path, monkeypatch, dfn3_archive):
    from fusegraph.editor.controller import EditorController

    monkeypatch.setenv("FUSEGRAPH_CONFIG", str(tmp_path / "config"))
    write_wav(tmp_path / "talk.wav", voiced(1.0, 44100), 44100)
    ctl = EditorController(autosave_seconds=3600)
    src = ctl.add("audio_file", (0, 0), {"path": str(tmp_path / "talk.wav"), "loop": True})
    den = ctl.add("audio_denoise", (400, 0))
    out = ctl.add("audio_out", (800, 0), {"path": str(tmp_path / "clean.wav")})
    assert ctl.link(f"{src}.out", f"{den}.in") is None and ctl.link(f"{den}.out", f"{out}.in") is None
    assert ctl.run()
    try:
        assert wait_for(lambda: ctl.fixes())
        assert ctl.fixes() == {f"{den}.in": ("resample", {"rate": 48000})}
        assert "48000 Hz" in ctl.node_errors()[den][0]  # the node is marked, and says why
        new = ctl.apply_fix(f"{den}.in")
        g = ctl.doc.graph
        assert g.node(new).type == "resample" and g.node(new).params.rate == 48000
        assert {(l.src, l.dst) for l in g.links} == {(f"{src}.out", f"{new}.in"), (f"{new}.out", f"{den}.in"),
                                                     (f"{den}.out", f"{out}.in")}
        assert wait_for(lambda: ctl.runner is not None and ctl.runner.running
                    and den in ctl.runner.stats().node_ms)  # the edit restarted the run: it runs now
        assert ctl.runner.stats().failure == "" and not ctl.fixes()
    finally:
        ctl.stop()
    assert ctl.doc.undo() and len(ctl.doc.graph.nodes) == 3  # one undo step takes it out again


def test_insert_on_link_refuses_what_cannot_pass(tmp_path):
    from fusegraph.editor.document import Document

    doc = Document()
    a = doc.add_node("audio_file", (0, 0), {"path": "x.wav"})
    b = doc.add_node("audio_out", (200, 0), {"path": "y.wav"})
    assert doc.link(f"{a}.out", f"{b}.in") is None
    with pytest.raises(ValueError, match="cannot insert blur"):
        doc.insert_on_link(f"{b}.in", "blur")
    with pytest.raises(ValueError, match="no link feeds"):
        doc.insert_on_link(f"{a}.nothing", "resample")
    assert len(doc.graph.nodes) == 2 and len(doc.graph.links) == 1


def test_live_recording_keeps_sound_and_frames_together(tmp_path):
    """Live, frames come from the engine's thread and sound from the audio thread; the file
    video_out writes has both, of about the same length."""
    from fusegraph.runtime.live import LiveRunner

    write_wav(tmp_path / "voice.wav", voiced(1.0, 48000), 48000)
    g = graph([{"id": "p", "type": "pattern", "params": {"width": 160, "height": 96, "fps": 30, "frames": 0}},
               {"id": "a", "type": "audio_file", "params": {"path": str(tmp_path / "voice.wav"), "loop": True}},
               {"id": "out", "type": "video_out", "params": {"path": str(tmp_path / "rec.mp4")}}],
              [("p.out", "out.in"), ("a.out", "out.audio")])
    runner = LiveRunner(g, record={"out"})
    runner.start()
    try:
        assert wait_for(lambda: runner.stats().frame > 45)
    finally:
        runner.stop()
    with av.open(str(tmp_path / "rec.mp4")) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(tmp_path / "rec.mp4")) as c:
        sound = sum(f.samples for f in c.decode(audio=0)) / 48000
    video_s = frames / 30
    assert frames > 20 and abs(sound - video_s) < 0.25, (frames, sound)


def test_plan_shows_the_audio_path(tmp_path, dfn3_archive):
    r = _fusegraph(["plan", str(ROOT / "presets" / "video_call_clean.json")], tmp_path, dict(os.environ))
    assert r.returncode == OK, r.stderr
    assert "audio path" in r.stdout
    assert "denoise (audio_denoise): 48000 Hz, 1 channel, delays 30 ms (trimmed offline) -> out.audio" in r.stdout


def test_profile_trace_has_a_row_per_audio_processor(tmp_path, gpu):
    write_wav(tmp_path / "in.wav", voiced(0.3, 44100), 44100)
    g = graph([{"id": "src", "type": "audio_file", "params": {"path": str(tmp_path / "in.wav")}},
               {"id": "rs", "type": "resample", "params": {"rate": 48000}},
               {"id": "out", "type": "audio_out", "params": {"path": str(tmp_path / "out.wav")}}],
              [("src.out", "rs.in"), ("rs.out", "out.in")])
    engine = Engine(g, gpu=gpu, profile=True)
    assert run_offline(engine, quiet=True, trace=str(tmp_path / "t.json")) == OK
    rows = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert any(e.get("name") == "audio:rs" and e["ph"] == "X" and e["dur"] >= 0 for e in rows)
