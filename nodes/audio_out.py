"""audio_out: write the sound to a WAV (or FLAC) file.

Inputs:  in (audio)
Params:  path (.wav or .flac), sample_format (WAV: 16-bit, 24-bit or 32-bit float; FLAC: 16/24-bit)
Notes:   Written at the rate and channels that arrive (a resample node before it changes them).
         Samples beyond [-1, 1] are clipped for the integer formats. The file is written next
         to the target under a temporary name (unique to the run) and renamed over it when the run
         ends (also after Ctrl+C, SIGTERM or SIGHUP), together with the run's other outputs, so a
         failed run never leaves a broken file nor destroys the previous one.
"""
from __future__ import annotations

import os
from typing import Literal

from fusegraph.nodes.lib.lazy import av
import numpy as np
from pydantic import ValidationInfo, field_validator

from fusegraph.nodes.lib.media_files import FileSink, check_target, write_error
from fusegraph.nodes.lib.sound_frames import audio_frame, layout
from fusegraph.nodes.contract import NodeError, NodeSpec, OpenContext, Params, Port, path_field

FORMATS = {".wav": "wav", ".flac": "flac"}
# (container extension, sample_format) -> (codec, PyAV sample format fed to it)
CODECS = {
    (".wav", "s16"): ("pcm_s16le", "s16"), (".wav", "s24"): ("pcm_s24le", "s32"),
    (".wav", "f32"): ("pcm_f32le", "flt"), (".flac", "s16"): ("flac", "s16"), (".flac", "s24"): ("flac", "s32"),
}


class AudioOutParams(Params):
    path: str = path_field(kind="audio", save=True)
    sample_format: Literal["s16", "s24", "f32"] = "s16"

    @field_validator("sample_format")
    @classmethod
    def _format_fits_file(cls, fmt: str, info: ValidationInfo) -> str:
        """Found when the preset is validated (naming this param), not when the run starts."""
        ext = os.path.splitext(info.data.get("path", ""))[1].lower()
        if ext in FORMATS and (ext, fmt) not in CODECS:
            raise ValueError(f"{ext} files cannot hold {fmt} samples: choose s16 or s24")
        return fmt


class AudioOut(FileSink):
    def __init__(self, p: AudioOutParams, ctx: OpenContext):
        self.node, self.path = ctx.node_id, p.path
        folder, name = check_target(p.path, self.node, "sound")
        ext = os.path.splitext(name)[1].lower()
        if ext not in FORMATS:
            raise NodeError(f"cannot write '{p.path}': use a .wav or .flac file name", node=self.node)
        if (ext, p.sample_format) not in CODECS:
            raise NodeError(f"{ext} files cannot hold {p.sample_format} samples: choose s16 or s24",
                            node=self.node)
        if ctx.audio is None:
            raise NodeError("no sound arrives at the input", node=self.node, port="in")
        self.format = ctx.audio
        self.temp = self._stage(os.path.join(folder, name))
        codec, self.sample_fmt = CODECS[(ext, p.sample_format)]
        try:
            self.container = av.open(self.temp, "w", format=FORMATS[ext])
            self.stream = self.container.add_stream(codec, rate=self.format.rate)
            self.stream.layout = layout(self.format.channels)
            self.stream.format = self.sample_fmt
        except (OSError, av.FFmpegError, ValueError) as e:
            self.staging.discard()
            raise write_error(e, p.path, self.node) from None
        self.pts = 0
        self.state = "open"

    def write(self, inputs: dict, index: int) -> None:
        pass  # sound only: everything arrives through write_audio

    def write_audio(self, block: np.ndarray) -> None:
        if self.state != "open":
            raise NodeError("the sound file is already finished", node=self.node)
        frame = audio_frame(block, self.format, self.sample_fmt, self.pts)
        self.pts += len(block)
        self._mux(self.stream, frame)

    def _flush(self) -> None:
        self._mux(self.stream, None)


def open_audio_out(p: AudioOutParams, ctx: OpenContext) -> AudioOut:
    return AudioOut(p, ctx)


SPEC = NodeSpec(
    type="audio_out", category="sink", role="sink", Params=AudioOutParams, doc=__doc__,
    inputs=(Port("in", "audio"),), open=open_audio_out,
)
