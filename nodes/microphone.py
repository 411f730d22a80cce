"""microphone: live sound from a sound card's input (PortAudio, through sounddevice).

Outputs: out (audio)
Params:  device (its name, or part of it; empty: the system's default input), rate (Hz),
         channels, block_ms (the device's block: latency; 10 ms like the denoiser's frame)
Notes:   An endless source, driven by the device: its callback hands each block over, and the
         audio path runs as blocks arrive, never waiting on video. Blocks the path could not
         take in time (an overrun) are counted and shown, not dropped silently. Without a
         device the node fails at open with the list of the devices there are.
"""
from __future__ import annotations

import queue

import numpy as np
from pydantic import Field

from fusegraph.nodes.lib.sound_devices import _sd, find_device, open_error, stop_stream
from fusegraph.nodes.contract import AudioFormat, AudioSource, NodeError, NodeSpec, OpenContext, Params, Port

WAIT_S = 2.0  # a device silent this long has stopped


class MicrophoneParams(Params):
    device: str = Field("", description="name (or part of it); empty: the default input",
                        json_schema_extra={"widget": "choices", "choices": "fusegraph.nodes.lib.sound_devices:devices",
                                           "args": ["input"], "found": "sound devices", "blank": True})
    rate: int = Field(48000, ge=8000, le=192000, description="samples per second")
    channels: int = Field(1, ge=1, le=8)
    block_ms: float = Field(10.0, ge=2.5, le=100.0, description="device block (latency)")


class Microphone(AudioSource):
    frames = None  # endless
    device = True  # read() waits for the device's blocks

    def __init__(self, p: MicrophoneParams, node: str | None):
        self.node = node
        sd = _sd()
        device = find_device(p.device, "input", node)
        self.format = AudioFormat(p.rate, p.channels)
        self.blocks: queue.Queue = queue.Queue(maxsize=max(4, int(2000 / p.block_ms)))  # 2 s
        self.overruns = 0
        self._held = np.zeros((0, p.channels), np.float32)
        try:
            self.stream = sd.InputStream(device=device, samplerate=p.rate, channels=p.channels,
                                         dtype="float32", blocksize=int(round(p.rate * p.block_ms / 1000)),
                                         callback=self._callback)
            self.stream.start()
        except Exception as e:  # PortAudioError, ValueError: rate or channels not supported
            raise open_error(e, "microphone", node) from None

    def _callback(self, data, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overruns += 1
        try:
            self.blocks.put_nowait(data.copy())
        except queue.Full:  # the audio path fell 2 s behind: count what is lost
            self.overruns += 1

    def read(self, n: int) -> np.ndarray:
        """At least one device block (waits for it), at most n samples."""
        parts = [self._held]
        have = len(self._held)
        try:
            if have == 0:
                block = self.blocks.get(timeout=WAIT_S)
                parts.append(block)
                have += len(block)
            while have < n:
                block = self.blocks.get_nowait()
                parts.append(block)
                have += len(block)
        except queue.Empty:
            if have == 0:
                raise NodeError(f"the microphone sent no sound for {WAIT_S:.0f} s", node=self.node) from None
        data = np.concatenate(parts)
        out, self._held = data[:n], data[n:]
        return out

    def close(self) -> None:
        stop_stream(self)


class PlannedMicrophone(AudioSource):
    """`fusegraph plan`: the format the params ask for, without starting the device (and, when
    there is none, why: the plan marks what depends on it)."""

    frames = None
    device = True

    def __init__(self, p: MicrophoneParams, node: str | None):
        self.format = AudioFormat(p.rate, p.channels)
        try:
            find_device(p.device, "input", node)
        except NodeError as e:
            self.missing = e.message


def open_microphone(p: MicrophoneParams, ctx: OpenContext) -> AudioSource:
    return PlannedMicrophone(p, ctx.node_id) if ctx.plan_only else Microphone(p, ctx.node_id)


SPEC = NodeSpec(
    type="microphone", category="source", role="source", Params=MicrophoneParams, doc=__doc__,
    outputs=(Port("out", "audio"),), open=open_microphone,
)
