"""audio_file: the sound of a file: a WAV (or FLAC, MP3, Ogg...) or the audio track of a video.

Outputs: out (audio)
Params:  path (the file), track (which audio track of a file with several, from 0),
         loop (start again at the end: an endless source, for live use)
Notes:   Decoded with FFmpeg (PyAV) to float32 at the file's own rate and channels; nothing is
         resampled here (a resample node does that where a rate must change). In a video file,
         time 0 is the video's first frame (as the video node reads it): sound that starts
         later is preceded by silence, sound from before it is dropped, so the two stay in sync.
"""
from __future__ import annotations

import struct

import numpy as np
from pydantic import Field

from fusegraph.nodes.contract import AudioFormat, AudioSource, NodeError, NodeSpec, OpenContext, Params, Port, path_field
from fusegraph.nodes.lib.input_files import regular_file_error
from fusegraph.nodes.lib.lazy import av
from fusegraph.nodes.lib.media_files import open_reason


MAX_RATE, MAX_CHANNELS = 768_000, 64  # beyond any real recording


class AudioFileParams(Params):
    path: str = path_field(kind="audio")
    track: int = Field(0, ge=0, description="audio track of a file with several")
    loop: bool = Field(False, description="start again at the end")


class AudioFile(AudioSource):
    def __init__(self, path: str, track: int, loop: bool, node: str | None, shown: str):
        self.path, self.track, self.loop, self.node, self.shown = path, track, loop, node, shown
        self.container = None
        self._open()
        st = self.stream
        if st.codec_context is None:  # e.g. a WAV whose format code FFmpeg does not know
            self.close()
            raise self._error("the audio track is in an encoding FFmpeg cannot decode")
        self.format = AudioFormat(st.codec_context.sample_rate, st.codec_context.channels)
        if self.format.rate <= 0 or self.format.channels <= 0:
            raise self._error("the audio track has no sample rate or channel count")
        if self.format.rate > MAX_RATE or self.format.channels > MAX_CHANNELS:
            # a header's word alone would size every block (a frame's time of 2 GHz sound: 266 MB)
            raise self._error(f"the audio track declares {self.format}; at most {MAX_RATE} Hz and "
                              f"{MAX_CHANNELS} channels are read")
        self.lead = self._lead()  # samples of silence before the track (< 0: samples dropped)
        length = self._length()
        # what the file says it holds: a WAV's header, else the track's own duration (not the
        # container's: a video's sound may rightly end before its pictures)
        self.announced = _wav_declared_samples(path) or (length if st.duration is not None else None)
        self.frames = None if loop or length is None else max(0, length + self.lead)
        self._held = np.zeros((0, self.format.channels), np.float32)

    def _error(self, what: str) -> NodeError:
        return NodeError(f"cannot read audio '{self.shown}': {what}", node=self.node)

    def _open(self) -> None:
        self.close()
        if reason := regular_file_error(self.path):
            raise self._error(reason)
        try:
            self.container = av.open(self.path, "r")
        except (OSError, av.FFmpegError) as e:
            raise self._error(open_reason(e, "a sound or video")) from None
        tracks = self.container.streams.audio
        if not tracks:
            self.close()
            raise self._error("the file has no audio track")
        if self.track >= len(tracks):
            self.close()
            raise self._error(f"there is no audio track {self.track} (the file has {len(tracks)})")
        self.stream = tracks[self.track]
        self._blocks = self._decoded()

    def _lead(self) -> int:
        """Where the sound starts against the video's first frame, in samples."""
        video = self.container.streams.video
        if not video:
            return 0
        return int(round((_start(self.stream) - _start(video[0])) * self.format.rate))

    def _length(self) -> int | None:
        """Samples in the track, from the stream's duration (an estimate the decoder refines)."""
        st = self.stream
        if st.duration is not None and st.time_base:
            return int(round(float(st.duration * st.time_base) * self.format.rate))
        if self.container.duration:
            return int(round(self.container.duration / 1e6 * self.format.rate))
        return None

    def _decoded(self):
        """The track as float32 (n, channels) blocks, in order, from the video's time 0."""
        lead = self.lead  # set in __init__, before the first block is asked for
        if lead > 0:
            yield np.zeros((lead, self.stream.codec_context.channels), np.float32)
        drop = max(0, -lead)
        self.decoded = 0
        try:
            for frame in self.container.decode(self.stream):
                a = frame.to_ndarray()
                if frame.format.is_planar:
                    a = a.T  # (channels, n) -> (n, channels)
                else:
                    a = a.reshape(-1, self.stream.codec_context.channels)
                self.decoded += len(a)
                if drop:
                    cut = min(drop, len(a))
                    a, drop = a[cut:], drop - cut
                if len(a):
                    yield _to_float(a)
        except av.FFmpegError as e:
            raise self._error(f"the file is damaged ({e})") from None
        self._check_complete()

    def _check_complete(self) -> None:
        """At the end of the track: a file that holds less than it announces is cut short (a
        copy that stopped, a full disk); say so rather than play the part as the whole."""
        want, rate = self.announced, self.format.rate
        if want and want - self.decoded > max(0.1 * rate, 0.02 * want):
            raise self._error(f"the file is damaged or cut short: its sound ends at {self.decoded / rate:.2f} s "
                              f"of the {want / rate:.2f} s it announces")

    def read(self, n: int) -> np.ndarray:
        parts, have = [self._held], len(self._held)
        while have < n:
            block = next(self._blocks, None)
            if block is None:
                if not self.loop:
                    break
                self._open()
                block = next(self._blocks, None)
                if block is None:
                    break  # an empty track: nothing to loop
            parts.append(block)
            have += len(block)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out, self._held = data[:n], data[n:]
        return out

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def _wav_declared_samples(path: str) -> int | None:
    """Samples a WAV file's header declares (its data chunk's size); FFmpeg trusts the file's
    length instead, so a cut WAV would read as a shorter, complete one. None if not a WAV."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            align = None
            for _ in range(64):  # chunks before "data" (fmt, LIST, ...): a few, never many
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if kind == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif kind == b"data":
                    # 0 and 0xFFFFFFFF mark a stream whose length was never written back
                    return size // align if align and 0 < size < 0xFFFFFFFF else None
                else:
                    f.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None


def _start(st) -> float:
    """A stream's start time in seconds (0 when the file does not say)."""
    return float(st.start_time * st.time_base) if st.start_time is not None and st.time_base else 0.0


def _to_float(a: np.ndarray) -> np.ndarray:
    """Samples of any FFmpeg sample format as float32 in [-1, 1]."""
    if a.dtype == np.float32:
        return a
    if a.dtype.kind == "f":
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return (a.astype(np.float32) - 128.0) / 128.0
    return a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)


def open_audio_file(p: AudioFileParams, ctx: OpenContext) -> AudioFile:
    if not p.path:
        raise NodeError("no audio file chosen", node=ctx.node_id)
    return AudioFile(ctx.find_input(p.path), p.track, p.loop, ctx.node_id, p.path)


SPEC = NodeSpec(
    type="audio_file", category="source", role="source", Params=AudioFileParams, doc=__doc__,
    outputs=(Port("out", "audio"),), open=open_audio_file,
)
