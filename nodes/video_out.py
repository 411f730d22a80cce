"""video_out: write the frames to an H.264 video file (MP4 plays everywhere).

Inputs:  in (video; a mask is written as grey), audio (optional: the sound track)
Params:  path (.mp4, .m4v, .mov or .mkv), codec (h264), crf (quality: 18-23 looks good, 51 is
         worst, 0 is lossless but few players play it), preset (encoder speed: faster = bigger file)
Notes:   yuv420p, BT.709, at the graph's frame rate; frame i is shown at time i / fps. Sound is
         AAC (rates 8-96 kHz, mono or stereo; a resample node fixes others), sample 0 at the
         time of frame 0, cut where the last frame ends. Odd sizes
         are padded to even by repeating the last row/column. The video is written next to the
         target under a temporary name and renamed over it when the run ends (also after Ctrl+C),
         so a failed run never leaves a broken file nor destroys the previous one. A run that
         ends before any frame arrives writes nothing.
"""
from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from typing import Literal

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from pydantic import Field

from fusegraph.nodes.media_files import FileSink, check_target, write_error
from fusegraph.nodes.sound_frames import audio_frame, layout
from fusegraph.nodes.spec import AudioFormat, NodeError, NodeSpec, OpenContext, Params, Port, path_field

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
ENCODERS = {"h264": "libx264"}
BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709: tag the stream so players convert colours the way we did
LIMITED = 1  # AVCOL_RANGE_MPEG (16..235), what players expect from H.264
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class VideoOutParams(Params):
    path: str = path_field(kind="video", save=True)
    codec: Literal["h264"] = "h264"
    crf: int = Field(20, ge=0, le=51, description="quality: lower is better and bigger")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = "veryfast"


def as_picture(img) -> tuple[np.ndarray, str]:
    """An input frame (RGBA, RGB or grey HxW / HxWx1 uint8) and its PyAV pixel format."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    fmt = "gray" if img.ndim == 2 else {3: "rgb24", 4: "rgba"}.get(img.shape[2])
    if img.dtype != np.uint8 or fmt is None:
        raise ValueError(f"expected an 8-bit RGBA, RGB or grey frame, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img), fmt


class VideoOut(FileSink):
    def __init__(self, p: VideoOutParams, ctx: OpenContext):
        self.node = ctx.node_id
        self.path = p.path
        folder, name = check_target(p.path, self.node, "video")
        ext = os.path.splitext(name)[1].lower()
        if ext not in CONTAINERS:
            raise NodeError(f"cannot write '{p.path}': use a .mp4, .m4v, .mov or .mkv file name",
                            node=self.node)
        self.target = os.path.join(folder, name)
        self.temp = os.path.join(folder, f".{os.path.splitext(name)[0]}.partial{ext}")
        self.p = p
        self.rate = Fraction(ctx.fps).limit_denominator(1001)
        try:  # create the file now: a problem shows at open, not after the first frame
            self.container = av.open(self.temp, "w", format=CONTAINERS[ext],
                                     options={"movflags": "+faststart"} if ext != ".mkv" else {})
        except (OSError, av.FFmpegError) as e:
            raise write_error(e, p.path, self.node) from None
        self.stream = None  # added at the first frame, when the size is known
        self.sound = ctx.audio
        self.audio_stream = None
        if self.sound is not None:
            self.audio_stream = self.container.add_stream("aac", rate=self.sound.rate)
            self.audio_stream.layout = layout(self.sound.channels)
            self.audio_stream.bit_rate = 96000 * self.sound.channels
        self.audio_sent = 0  # samples handed to the encoder
        self.audio_held: list[np.ndarray] = []  # samples past the frames so far: wait for more
        self.audio_lock = threading.Lock()  # live, sound arrives on the audio thread
        self.last_pts = -1
        self.state = "open"  # -> "closed" | "discarded"
        # Colour conversion and H.264 encoding run on a worker thread (FFmpeg releases the GIL),
        # so the next frame's GPU work overlaps this one's encode. A short queue bounds memory.
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.worker: threading.Thread | None = None

    def _add_stream(self, w: int, h: int) -> None:
        st = self.container.add_stream(ENCODERS[self.p.codec], rate=self.rate)
        st.width, st.height, st.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        st.time_base = 1 / self.rate  # pts counts frames
        st.options = {"crf": str(self.p.crf), "preset": self.p.preset}
        cc = st.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = BT709
        cc.color_range = LIMITED
        self.stream, self.size = st, (w, h)

    def write(self, inputs: dict, index: int) -> None:
        if self.state != "open":
            raise NodeError("the video file is already finished", node=self.node)
        img, fmt = as_picture(inputs["in"])
        h, w = img.shape[:2]
        if self.stream is None:
            self._add_stream(w, h)
        elif (w, h) != self.size:
            raise NodeError(f"frame {index} is {w}x{h}, the video is {self.size[0]}x{self.size[1]}",
                            node=self.node)
        self.last_pts = max(index, self.last_pts + 1)  # pts must increase
        if self.worker is None:
            self.worker = threading.Thread(target=self._work, name=f"encode:{self.node}", daemon=True)
            self.worker.start()
        self._check()
        self.queue.put((img, fmt, self.last_pts))
        self._send_audio()

    def write_audio(self, block: np.ndarray) -> None:
        """Sound for the track; it goes out as far as the frames so far reach (the rest waits,
        and what lies past the last frame is cut at the end)."""
        if self.state != "open" or self.audio_stream is None:
            return
        with self.audio_lock:
            self.audio_held.append(np.asarray(block, np.float32).reshape(-1, self.sound.channels))
        self._send_audio()

    def _send_audio(self) -> None:
        with self.audio_lock:
            if self.audio_stream is not None and self.audio_held and self.worker is not None:
                self._send_audio_locked()

    def _send_audio_locked(self) -> None:
        limit = int(round((self.last_pts + 1) * self.sound.rate / self.rate))
        room = limit - self.audio_sent
        if room <= 0:
            return
        data = np.concatenate(self.audio_held)
        now, rest = data[:room], data[room:]
        self.audio_held = [rest] if len(rest) else []
        self._check()
        self.queue.put(("audio", now, self.audio_sent))
        self.audio_sent += len(now)

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the engine hears of the error at its next write or close
            try:
                if isinstance(item[0], str):  # ("audio", samples, pts)
                    _, block, pts = item
                    self._mux(self.audio_stream, audio_frame(block, self.sound, "flt", pts))
                    continue
                img, fmt, pts = item
                h, w = img.shape[:2]
                if w % 2 or h % 2:  # 4:2:0 needs even sizes: repeat the edge rather than crop a line
                    img = cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
                frame = av.VideoFrame.from_ndarray(img, format=fmt).reformat(
                    format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
                frame.pts = pts
                self._mux(self.stream, frame)
            except BaseException as exc:  # handed to the engine's thread
                self.error = exc

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _finish_worker(self) -> None:
        if self.worker is not None:
            self.queue.put(None)
            self.worker.join()
            self.worker = None

    def close(self) -> None:
        if self.state == "open" and self.stream is None:  # no frames: nothing to write, an
            self.discard()                                # existing file stays as it was
            return
        super().close()

    def _flush(self) -> None:
        self._finish_worker()
        self._check()  # the worker's error, if it had one
        self._mux(self.stream, None)  # the frames the encoder still holds
        if self.audio_stream is not None:
            self._mux(self.audio_stream, None)

    def _stop(self) -> None:
        self._finish_worker()


def open_video_out(p: VideoOutParams, ctx: OpenContext) -> VideoOut:
    return VideoOut(p, ctx)


def check_sound(p: VideoOutParams, ins: dict[str, AudioFormat]) -> AudioFormat | None:
    """What an MP4's AAC track can hold; anything else asks for a resample node."""
    sound = ins.get("audio")
    if sound is None:
        return None
    if sound.rate not in AAC_RATES:
        raise NodeError(f"the sound track (AAC) cannot be {sound.rate} Hz: insert a resample node "
                        "(rate 48000) before this input", port="audio", fix=("resample", {"rate": 48000}))
    if sound.channels > 2:
        raise NodeError(f"the sound track takes mono or stereo, not {sound.channels} channels: insert "
                        "a resample node (channels 2) before this input", port="audio",
                        fix=("resample", {"rate": 0, "channels": 2}))
    return sound


SPEC = NodeSpec(
    type="video_out", category="sink", role="sink", Params=VideoOutParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)), Port("audio", "audio", required=False)),
    open=open_video_out, audio_format=check_sound,
)
