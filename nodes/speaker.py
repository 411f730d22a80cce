"""speaker: play the sound on a sound card's output (PortAudio, through sounddevice).

Inputs:  in (audio)
Params:  device (its name, or part of it; empty: the system's default output),
         buffer_ms (how much sound may wait to be played: more is safer, less is sooner)
Notes:   Plays at the rate and channels that arrive; a device that does not take them says so
         at open (insert a resample node). The device's callback pulls the sound: when none
         is there in time it plays silence and counts an underrun; sound arriving faster than
         it plays (more than buffer_ms waiting) is dropped and counted as an overrun. Offline
         runs wait for the device instead, so nothing is lost.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from pydantic import Field

from fusegraph.nodes.sound_devices import _sd, find_device, open_error, stop_stream
from fusegraph.nodes.spec import AudioFormat, NodeError, NodeSpec, OpenContext, Params, Port, Sink


class SpeakerParams(Params):
    device: str = Field("", description="name (or part of it); empty: the default output",
                        json_schema_extra={"widget": "sound_output"})
    buffer_ms: float = Field(100.0, ge=10.0, le=2000.0, description="sound waiting to be played")


class Speaker(Sink):
    def __init__(self, p: SpeakerParams, ctx: OpenContext):
        self.node, self.live = ctx.node_id, ctx.live
        if ctx.audio is None:
            raise NodeError("no sound arrives at the input", node=self.node, port="in")
        self.format: AudioFormat = ctx.audio
        sd = _sd()
        device = find_device(p.device, "output", self.node)
        self.capacity = max(1, int(self.format.rate * p.buffer_ms / 1000))
        self.buffer = np.zeros((0, self.format.channels), np.float32)
        self.lock = threading.Condition()
        self.underruns = self.overruns = 0
        self.started = False  # underruns count once sound has begun
        self.played = 0
        try:
            self.stream = sd.OutputStream(device=device, samplerate=self.format.rate,
                                          channels=self.format.channels, dtype="float32",
                                          callback=self._callback)
            self.stream.start()
        except Exception as e:  # PortAudioError, ValueError: rate or channels not supported
            raise open_error(e, "speaker", self.node) from None

    def _callback(self, out, frames, time_info, status) -> None:
        with self.lock:
            n = min(frames, len(self.buffer))
            out[:n] = self.buffer[:n]
            out[n:] = 0.0
            self.buffer = self.buffer[n:]
            self.played += n
            if n < frames and self.started:
                self.underruns += 1
            self.lock.notify_all()

    def write(self, inputs: dict, index: int) -> None:
        pass  # sound only: everything arrives through write_audio

    def write_audio(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32).reshape(-1, self.format.channels)
        with self.lock:
            self.started = True
            if not self.live:  # offline: wait for room, lose nothing
                while len(self.buffer) + len(block) > self.capacity and len(self.buffer):
                    if not self.lock.wait(timeout=2.0):
                        raise NodeError("the speaker stopped playing", node=self.node)
            elif len(self.buffer) + len(block) > self.capacity:  # live: keep latency bounded
                self.overruns += 1
                self.buffer = self.buffer[len(block):]
            self.buffer = np.concatenate([self.buffer, block])

    def close(self) -> None:
        deadline = time.monotonic() + len(self.buffer) / self.format.rate + 1.0
        with self.lock:  # play what is waiting
            while len(self.buffer) and time.monotonic() < deadline:
                self.lock.wait(timeout=0.1)
        self.discard()

    def discard(self) -> None:
        stop_stream(self)


def open_speaker(p: SpeakerParams, ctx: OpenContext) -> Speaker:
    return Speaker(p, ctx)


SPEC = NodeSpec(
    type="speaker", category="sink", role="sink", Params=SpeakerParams, doc=__doc__,
    inputs=(Port("in", "audio"),), open=open_speaker,
)
