"""CPU-side media nodes: pattern, image, video, camera sources; video_out, image_out, preview sinks.

Every test makes its own media in tmp_path (no downloads, no fixtures on disk).
"""
from __future__ import annotations

import glob
import os
import threading
import time

import av
import cv2
import numpy as np
import pytest

from pydantic import ValidationError

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.pattern import decode_index
from fusegraph.nodes.contract import EndOfStream, NodeError, OpenContext, Sink, Source

MEDIA = ["pattern", "image", "video", "camera", "video_out", "image_out", "preview"]


def open_node(kind: str, ctx: OpenContext | None = None, **params):
    spec = REGISTRY[kind]
    return spec.open(spec.Params(**params), ctx or OpenContext(node_id=f"my_{kind}"))


def rgba(bgr: np.ndarray) -> np.ndarray:
    """What a sink gets: RGBA, read-only (the engine hands over its read-back buffer)."""
    out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    out.flags.writeable = False
    return out


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write_video(path, frames, fps=30.0, **params) -> None:
    sink = open_node("video_out", OpenContext("out", fps=fps), path=str(path), **params)
    for i, f in enumerate(frames):
        sink.write({"in": rgba(f)}, i)
    sink.close()


def decoded_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clip():
    """30 distinct 320x240 pattern frames (each carries its index in the code cells)."""
    src = open_node("pattern", width=320, height=240, frames=30)
    return [src.read(i) for i in range(30)]


# ---- declarations ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MEDIA)
def test_declared(kind):
    spec = REGISTRY[kind]
    assert spec.open is not None and spec.build is None
    assert spec.Params.model_json_schema()["type"] == "object"
    if spec.role == "source":
        assert spec.category == "source" and not spec.inputs
        assert [(p.name, p.type) for p in spec.outputs] == [("out", "video")]
        assert "Outputs:" in spec.doc
    else:
        assert spec.role == spec.category == "sink" and not spec.outputs
        assert [(p.name, p.type) for p in spec.inputs if p.required] == [("in", "video")]
        assert spec.inputs[0].accepts_type("mask")
        assert "Inputs:" in spec.doc
    assert "Params:" in spec.doc and "Notes:" in spec.doc


def test_path_params_show_a_file_dialog():
    for kind, save in [("image", False), ("video", False), ("video_out", True), ("image_out", True)]:
        extra = REGISTRY[kind].Params.model_json_schema()["properties"]["path"]
        assert extra["widget"] == "file" and extra["save"] is save


# ---- pattern -----------------------------------------------------------------------------


def test_pattern_is_deterministic():
    a = open_node("pattern", seed=3)
    b = open_node("pattern", seed=3)
    f5 = a.read(5)
    assert f5.shape == (720, 1280, 3) and f5.dtype == np.uint8 and f5.flags.c_contiguous
    b.read(9)  # call order must not matter
    assert a.read(5).tobytes() == f5.tobytes() == b.read(5).tobytes()
    assert not np.array_equal(a.read(6), f5)
    assert mean_abs_diff(a.read(60), f5) > 3  # the scene really moves
    assert not np.array_equal(open_node("pattern", seed=4).read(5), f5)


def test_pattern_info_and_sizes():
    src = open_node("pattern", width=17, height=16, fps=12.5, frames=0)
    assert src.info.size == (17, 16) and src.info.fps == 12.5 and src.info.frame_count is None
    assert src.read(0).shape == (16, 17, 3)
    finite = open_node("pattern", width=64, height=64, frames=3)
    assert finite.info.frame_count == 3 and finite.read(2).shape == (64, 64, 3)
    with pytest.raises(EndOfStream):
        finite.read(3)
    assert src.read(10**7).shape == (16, 17, 3)  # endless


def test_pattern_frame_code():
    p = REGISTRY["pattern"].Params(width=640, height=360, frames=0)
    src = REGISTRY["pattern"].open(p, OpenContext("p"))
    for i in (0, 1, 77, 123456):
        frame = src.read(i)
        assert decode_index(p, frame) == i
        assert decode_index(p, rgba(frame)) == i


def test_pattern_noise():
    clean = open_node("pattern", width=320, height=240, seed=1)
    noisy = open_node("pattern", width=320, height=240, noise=0.05, seed=1)
    again = open_node("pattern", width=320, height=240, noise=0.05, seed=1)
    n3 = noisy.read(3).astype(np.float32) - clean.read(3)
    n4 = noisy.read(4).astype(np.float32) - clean.read(4)
    assert 0.04 * 255 < n3.std() < 0.06 * 255  # a few clipped pixels aside
    assert abs(n3.mean()) < 1.0
    assert abs(np.corrcoef(n3.ravel(), n4.ravel())[0, 1]) < 0.05  # fresh noise each frame
    assert noisy.read(3).tobytes() == again.read(3).tobytes()


def test_pattern_mask_matches_the_person():
    p = REGISTRY["pattern"].Params(width=640, height=360)
    src = REGISTRY["pattern"].open(p, OpenContext("p"))
    mask_fn = REGISTRY["pattern"].extra["mask"]
    for i in (0, 40):
        frame, mask = src.read(i).astype(np.float32), mask_fn(p, i)
        assert mask.shape == (360, 640) and mask.dtype == np.float32
        assert mask.min() == 0.0 and mask.max() == 1.0
        assert 0.1 < mask.mean() < 0.5
        soft = (mask > 0.02) & (mask < 0.98)
        assert 0 < soft.mean() < 0.05  # anti-aliased edges and hair, not a blurry blob
        person, wall = frame[mask > 0.99], frame[mask < 0.01]
        b, r = 0, 2
        assert (person[:, r] - person[:, b]).mean() > 40  # warm shirt, skin, hair
        assert (wall[:, r] - wall[:, b]).mean() < 0  # cool wall
        assert np.linalg.norm(person.mean(0) - wall.mean(0)) > 50
    assert mean_abs_diff(mask_fn(p, 0), mask_fn(p, 40)) > 0.005  # the person sways
    assert np.array_equal(mask_fn(p, 7), mask_fn(dict(width=640, height=360), 7))


# ---- image source ------------------------------------------------------------------------


def test_image_source_reads_png_and_jpeg(tmp_path, clip):
    png, jpg, grey = tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "g.png"
    cv2.imwrite(str(png), clip[0])
    cv2.imwrite(str(jpg), clip[1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(grey), clip[2][..., 1])
    src = open_node("image", path=str(png))
    assert src.info.still and src.info.frame_count is None and src.info.size == (320, 240)
    assert np.array_equal(src.read(0), clip[0]) and np.array_equal(src.read(99), clip[0])
    assert src.read(0).flags.c_contiguous
    assert mean_abs_diff(open_node("image", path=str(jpg)).read(0), clip[1]) < 4
    g = open_node("image", path=str(grey)).read(0)
    assert g.shape == (240, 320, 3) and np.array_equal(g[..., 0], clip[2][..., 1])


def test_image_source_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(NodeError) as e:
        open_node("image", OpenContext("bg_img"), path=str(missing))
    assert e.value.node == "bg_img" and str(missing) in e.value.message and "not found" in e.value.message
    assert str(e.value).startswith("bg_img: ")

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    with pytest.raises(NodeError) as e:
        open_node("image", path=str(broken))
    assert str(broken) in e.value.message and "not a PNG or JPEG" in e.value.message

    with pytest.raises(NodeError, match="it is a folder"):
        open_node("image", path=str(tmp_path))
    with pytest.raises(NodeError, match="no image file chosen"):
        open_node("image", path="")


# ---- video out + video source ------------------------------------------------------------


def test_video_round_trip(tmp_path, clip):
    path = tmp_path / "clip.mp4"
    write_video(path, clip, fps=30)
    src = open_node("video", path=str(path))
    assert src.info.size == (320, 240) and src.info.fps == 30 and src.info.frame_count == 30
    p = REGISTRY["pattern"].Params(width=320, height=240)
    got = [src.read(i) for i in range(30)]
    for i, frame in enumerate(got):
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
        assert decode_index(p, frame) == i  # right order, none dropped or repeated
        assert mean_abs_diff(frame, clip[i]) < 6  # H.264 is lossy, but not by much
    with pytest.raises(EndOfStream):
        src.read(30)
    # a second run starts again at frame 0 and decodes the same bytes (exact decoding)
    assert np.array_equal(src.read(0), got[0]) and np.array_equal(src.read(1), got[1])
    assert np.array_equal(src.read(12), got[12])  # skipping ahead lands on the right frame
    assert np.array_equal(src.read(5), got[5])  # and so does going back
    src.close()


def test_video_loop(tmp_path, clip):
    path = tmp_path / "loop.mp4"
    write_video(path, clip[:10], fps=25)
    src = open_node("video", path=str(path), loop=True)
    assert src.info.frame_count is None and src.info.fps == 25
    frames = [src.read(i) for i in range(35)]
    for i in range(25):
        assert np.array_equal(frames[i], frames[i + 10])
    assert np.array_equal(src.read(23), frames[3])  # back into a later pass of the loop
    assert np.array_equal(src.read(24), frames[4])


def test_video_source_errors_name_the_file(tmp_path, clip):
    cases = {tmp_path / "missing.mp4": "file not found", tmp_path: "it is a folder"}
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    cases[text] = "not a video file"
    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as c:
        st = c.add_stream("aac", rate=44100)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            c.mux(st.encode(frame))
        c.mux(st.encode(None))
    cases[audio] = "no video stream"
    for path, reason in cases.items():
        with pytest.raises(NodeError) as e:
            open_node("video", OpenContext("clip_in"), path=str(path))
        assert e.value.node == "clip_in" and f"'{path}'" in e.value.message and reason in e.value.message
    with pytest.raises(NodeError, match="no video file chosen"):
        open_node("video", path="")


def test_video_source_corrupt_frame(tmp_path, clip):
    good = tmp_path / "good.mp4"
    write_video(good, clip)
    data = bytearray(good.read_bytes())
    a, b = len(data) * 2 // 5, len(data) * 3 // 5  # the middle of the frame data (moov is up front)
    data[a:b] = np.random.default_rng(0).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    with av.open(str(good)) as c:  # which frames the damage hits
        st = c.streams.video[0]
        hit = {round(p.pts * st.time_base * 30) for p in c.demux(st) if p.size and p.pos < b and p.pos + p.size > a}
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    src = open_node("video", OpenContext("clip_in"), path=str(bad))
    with pytest.raises(NodeError) as e:
        for i in range(31):
            src.read(i)
    msg = e.value.message
    assert e.value.node == "clip_in" and f"'{bad}'" in msg and "damaged" in msg
    assert int(msg.split("frame ")[1].split()[0]) in hit  # the message says where


def test_video_out_pads_odd_sizes_and_takes_masks(tmp_path):
    path = tmp_path / "odd.mp4"
    sink = open_node("video_out", OpenContext("out", fps=30000 / 1001), path=str(path))
    img = np.zeros((121, 161), np.uint8)
    img[:, -1] = 255  # the last column must be repeated, not dropped
    for i in range(3):
        sink.write({"in": img}, i)
    sink.close()
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        assert (st.width, st.height) == (162, 122) and st.average_rate == av.utils.Fraction(30000, 1001)
        frames = [f.to_ndarray(format="gray") for f in c.decode(st)]
    assert len(frames) == 3
    assert frames[0][:, -2:].mean() > 200 and frames[0][:, :-4].mean() < 30


def test_video_out_close_after_5_frames(tmp_path, clip):
    path = tmp_path / "five.mp4"
    sink = open_node("video_out", path=str(path), crf=30, preset="ultrafast")
    for i in range(5):
        sink.write({"in": rgba(clip[i])}, i)
    assert not path.exists()  # written under a temporary name until the end
    sink.close()  # e.g. after Ctrl+C: what was written is a complete file
    sink.close()  # harmless twice
    sink.discard()  # and a discard after close does not delete the result
    assert len(decoded_frames(path)) == 5
    assert sorted(os.listdir(tmp_path)) == ["five.mp4"]


def test_video_out_discard_keeps_the_old_file(tmp_path, clip):
    path = tmp_path / "keep.mp4"
    write_video(path, clip[:4])
    before = path.read_bytes()
    sink = open_node("video_out", path=str(path))
    for i in range(3):
        sink.write({"in": rgba(clip[10 + i])}, i)
    sink.discard()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.mp4"]
    assert len(decoded_frames(path)) == 4


def test_video_out_errors(tmp_path):
    with pytest.raises(NodeError) as e:
        open_node("video_out", OpenContext("export"), path=str(tmp_path / "no_such_dir" / "x.mp4"))
    assert e.value.node == "export" and "x.mp4" in e.value.message and "does not exist" in e.value.message
    with pytest.raises(NodeError, match=r"\.mp4"):
        open_node("video_out", path=str(tmp_path / "x.avi"))
    with pytest.raises(NodeError, match="no video file chosen"):
        open_node("video_out", path="")
    (tmp_path / "old.mp4").write_bytes(b"previous")
    open_node("video_out", path=str(tmp_path / "old.mp4")).close()  # no frames: nothing written
    assert os.listdir(tmp_path) == ["old.mp4"] and (tmp_path / "old.mp4").read_bytes() == b"previous"


def test_video_out_unwritable_folder(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root may write anywhere: let the permission check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    with pytest.raises(NodeError, match="no permission") as e:
        open_node("video_out", path=str(locked / "x.mp4"))
    assert str(locked) in str(e.value)


# ---- image out ---------------------------------------------------------------------------


def test_image_out_last(tmp_path, clip):
    path = tmp_path / "still.png"
    sink = open_node("image_out", path=str(path))
    for i in range(3):
        sink.write({"in": rgba(clip[i])}, i)
    assert not path.exists()
    sink.close()
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), clip[2])
    assert os.listdir(tmp_path) == ["still.png"]

    jpg = tmp_path / "still.jpg"
    sink = open_node("image_out", path=str(jpg))
    sink.write({"in": rgba(clip[4])}, 0)
    sink.close()
    assert mean_abs_diff(cv2.imread(str(jpg)), clip[4]) < 4

    sink = open_node("image_out", path=str(path))
    sink.write({"in": rgba(clip[7])}, 0)
    sink.discard()  # a failed run leaves the old picture
    assert np.array_equal(cv2.imread(str(path)), clip[2])


def test_image_out_sequence_and_masks(tmp_path, clip):
    sink = open_node("image_out", path=str(tmp_path / "f_{frame:03d}.png"), mode="sequence")
    for i in range(3):
        sink.write({"in": rgba(clip[i])}, i)
        assert not (tmp_path / f"f_{i:03d}.png").exists()  # staged as it comes, published at the end
    sink.close()
    assert sorted(os.listdir(tmp_path)) == ["f_000.png", "f_001.png", "f_002.png"]
    assert np.array_equal(cv2.imread(str(tmp_path / "f_001.png")), clip[1])

    mask = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    sink = open_node("image_out", path=str(tmp_path / "m{frame}.png"), mode="sequence")
    sink.write({"in": mask}, 7)
    sink.close()
    got = cv2.imread(str(tmp_path / "m7.png"), cv2.IMREAD_UNCHANGED)
    assert got.ndim == 2 and np.array_equal(got, mask)

    half = rgba(clip[0]).copy()
    half[..., 3] = 128  # transparency survives in PNG
    sink = open_node("image_out", path=str(tmp_path / "alpha.png"))
    sink.write({"in": half}, 0)
    sink.close()
    got = cv2.imread(str(tmp_path / "alpha.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (240, 320, 4) and np.array_equal(got, cv2.cvtColor(half, cv2.COLOR_RGBA2BGRA))
    assert not glob.glob(str(tmp_path / ".*"))  # no temporary files left behind


def test_image_out_errors(tmp_path):
    with pytest.raises(NodeError, match=r"\{frame\} placeholder"):
        open_node("image_out", path=str(tmp_path / "x.png"), mode="sequence")
    with pytest.raises(NodeError, match=r"\.png, \.jpg or \.jpeg"):
        open_node("image_out", path=str(tmp_path / "x.tiff"))
    with pytest.raises(ValidationError, match="only placeholder"):  # refused when the preset is validated
        open_node("image_out", path=str(tmp_path / "x{frame:q}.png"), mode="sequence")
    with pytest.raises(NodeError) as e:
        open_node("image_out", OpenContext("snap"), path=str(tmp_path / "nowhere" / "x.png"))
    assert e.value.node == "snap" and "nowhere" in e.value.message
    open_node("image_out", path=str(tmp_path / "x.png")).close()  # no frames: nothing written
    assert not (tmp_path / "x.png").exists()


# ---- camera ------------------------------------------------------------------------------


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="this machine has a camera")
def test_camera_absent():
    with pytest.raises(NodeError) as e:
        open_node("camera", OpenContext("webcam"), device=0)
    assert e.value.node == "webcam"
    assert e.value.message == "camera 0 could not be opened; no cameras found"


def test_camera_fit_crops_to_the_aspect_ratio():
    from fusegraph.nodes.camera import fit

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:60] = 255  # 4:3 -> 16:9 crops 60 rows at the top and at the bottom
    out = fit(frame, 320, 180)
    assert out.shape == (180, 320, 3) and out.max() == 0
    tall = np.zeros((100, 100, 3), np.uint8)
    tall[:, :10] = 255  # 1:1 -> 2:1 keeps the full width
    assert fit(tall, 40, 20)[:, :2].min() == 255
    assert fit(frame, 640, 480) is frame


# ---- preview -----------------------------------------------------------------------------


def test_preview_keeps_the_last_frame_downscaled():
    sink = open_node("preview", max_width=640)
    assert isinstance(sink, Sink) and sink.last is None and sink.count == 0
    frames = [np.full((1080, 1920, 4), v, np.uint8) for v in (10, 20, 30)]
    frames[2][:540] = 200
    for i, f in enumerate(frames):
        sink.write({"in": f}, i)
    last, index, count = sink.snapshot()
    assert sink.count == count == 3 and index == 2
    assert last.shape == (360, 640, 4) and not last.flags.writeable
    assert np.array_equal(last, cv2.resize(frames[2], (640, 360), interpolation=cv2.INTER_AREA))

    small = np.zeros((48, 64), np.uint8)  # a mask, narrower than max_width: kept as is, but copied
    sink.write({"in": small}, 3)
    small[:] = 99
    assert sink.last.shape == (48, 64) and sink.last.max() == 0


def test_preview_is_safe_to_read_from_another_thread():
    sink = open_node("preview", max_width=320)
    stop, seen = threading.Event(), []

    def ui():
        while not stop.is_set():
            last = sink.last
            if last is not None:  # a whole frame, never half of one
                seen.append(bool(last.min() == last.max()))

    reader = threading.Thread(target=ui)
    reader.start()
    for i in range(200):
        sink.write({"in": np.full((240, 640, 4), i % 256, np.uint8)}, i)
        if i == 0:  # the reader is reading before the rest comes (a loaded machine may not run it at all)
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.001)
    stop.set()
    reader.join()
    assert seen and all(seen) and sink.count == 200


def test_sources_are_sources(clip, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), clip[0])
    assert isinstance(open_node("pattern", width=64, height=64), Source)
    assert isinstance(open_node("image", path=str(tmp_path / "a.png")), Source)
