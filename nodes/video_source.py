"""video: frames of a video file, decoded exactly, in order.

Outputs: out (video)
Params:  path (the video file), loop (start again at the end: an endless source)
Notes:   Decoded with FFmpeg (PyAV): every frame, none skipped or repeated, so offline runs are
         frame-exact. The frame rate is the stream's average rate. Going back to an earlier
         frame (a new run, or the start of a loop) reopens the file and decodes from the start.
"""
from __future__ import annotations

from fusegraph.nodes.lib.lazy import av
import numpy as np
from pydantic import Field

from fusegraph.nodes.lib.input_files import check_picture_size, regular_file_error
from fusegraph.nodes.lib.media_files import open_reason
from fusegraph.nodes.contract import (MAX_TEXTURE, EndOfStream, NodeError, NodeSpec, OpenContext, Params, Port, Source,
                                  SourceInfo, path_field)


class VideoParams(Params):
    path: str = path_field(kind="video")
    loop: bool = Field(False, description="start again at the end")


class _Broken(Exception):
    def __init__(self, frame: int, error: Exception):
        self.frame, self.reason = frame, getattr(error, "strerror", None) or str(error)


class VideoSource(Source):
    def __init__(self, path: str, loop: bool, node: str | None, max_side: int = MAX_TEXTURE):
        self.path, self.loop, self.node = path, loop, node
        self.container = None
        self._open()
        st = self.stream
        try:  # the size the stream declares, before a frame is decoded
            check_picture_size((st.codec_context.width, st.codec_context.height), f"video '{path}'", node, max_side)
        except NodeError:
            self.close()
            raise
        rate = st.average_rate or st.guessed_rate or st.base_rate
        fps = float(rate) if rate else 30.0
        count = st.frames or self._estimate_frames(fps)
        self.info = SourceInfo(size=(st.codec_context.width, st.codec_context.height), fps=fps,
                               frame_count=None if loop else count)
        self.length: int | None = None  # frames in the file, known after the first pass of a loop

    def _error(self, what: str) -> NodeError:
        return NodeError(f"cannot read video '{self.path}': {what}", node=self.node)

    def _open(self) -> None:
        self.close()
        if reason := regular_file_error(self.path):
            raise self._error(reason)
        try:
            self.container = av.open(self.path, "r")
        except (OSError, av.FFmpegError) as e:
            raise self._error(open_reason(e, "a video")) from None
        if not self.container.streams.video:
            self.close()
            raise self._error("the file has no video stream")
        self.stream = self.container.streams.video[0]
        # Slice threads only: frame threads would report a broken packet a few frames late.
        self.stream.thread_type = "SLICE"
        self._frames = self._decoded()
        self._pos = 0  # the file's frame number that decoding yields next
        self._next = 0  # the index that frame is read as (differs from _pos once a loop wraps)

    def _decoded(self):
        """The file's frames in display order; a broken packet raises _Broken with its frame number."""
        for packet in self.container.demux(self.stream):
            try:
                yield from packet.decode()
            except av.FFmpegError as e:
                raise _Broken(self._frame_number(packet), e) from None

    def _frame_number(self, packet: av.Packet) -> int:
        # Packets come in decode order (B-frames reorder): the timestamp says which frame it is.
        st = self.stream
        if packet.pts is None or not st.time_base or not st.average_rate:
            return self._pos
        return round(float((packet.pts - (st.start_time or 0)) * st.time_base * st.average_rate))

    def _estimate_frames(self, fps: float) -> int | None:
        st = self.stream
        if st.duration and st.time_base:
            seconds = float(st.duration * st.time_base)
        elif self.container.duration:
            seconds = self.container.duration / av.time_base
        else:
            return None
        return max(1, round(seconds * fps))

    def _decode(self, index: int) -> av.VideoFrame:
        """The next frame of the file, as frame `index` of the output (wrapping around if looping)."""
        try:
            try:
                frame = next(self._frames)
            except StopIteration:
                if not self.loop:
                    raise EndOfStream from None
                if self._pos == 0:
                    raise self._error("the video has no frames") from None
                self.length = self._pos
                self._open()
                frame = next(self._frames)
        except _Broken as e:
            raise NodeError(f"cannot decode frame {e.frame} of video '{self.path}' "
                            f"(the file is damaged): {e.reason}", node=self.node) from None
        except av.FFmpegError as e:  # the demuxer failed (e.g. a read error)
            raise NodeError(f"cannot read frame {self._pos} of video '{self.path}': "
                            f"{getattr(e, 'strerror', None) or e}", node=self.node) from None
        except StopIteration:
            raise self._error("the video has no frames") from None
        self._pos += 1
        self._next = index + 1
        return frame

    def read(self, index: int) -> np.ndarray:
        if index < self._next:
            # Going back: reopen and decode from the start (exact, whatever the file's seek index says).
            self._open()
            if self.length:  # looping: start from the pass that holds `index`
                self._next = index - index % self.length
        while self._next < index:  # skipping ahead (dropped frames): decode, don't convert
            self._decode(self._next)
        frame = self._decode(index)
        w, h = self.info.size  # a mid-stream size change is scaled back to the announced size
        return np.ascontiguousarray(frame.to_ndarray(format="bgr24", width=w, height=h))

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def open_video(p: VideoParams, ctx: OpenContext) -> VideoSource:
    if not p.path:
        raise NodeError("no video file chosen", node=ctx.node_id)
    return VideoSource(ctx.find_input(p.path), p.loop, ctx.node_id, ctx.max_texture)


SPEC = NodeSpec(
    type="video", category="source", role="source", Params=VideoParams, doc=__doc__,
    outputs=(Port("out", "video"),), open=open_video,
)
