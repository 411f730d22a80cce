"""audio_denoise: streaming speech noise suppression (DeepFilterNet3 or RNNoise, mains-hum
cancelling, and a guard that never lets it make clean speech worse).

Inputs:  in (audio, 48000 Hz, any number of channels)
Outputs: out (audio, same format)
Params:  model (deepfilternet3: the better one on every noise of the benchmark, needs
         `fusegraph models fetch deepfilternet3` once, 40 ms latency; rnnoise: built in, lighter,
         30 ms), strength (0: the input untouched, 1: full effect), limit_db (most attenuation of
         steady noise, dB; 100: no limit; the default 35 keeps a trace of the room under the
         voice, which scores higher than removing it all (with RNNoise 25 does best);
         transients such as keystrokes are taken out regardless), hum (auto: find and
         cancel 50 or 60 Hz mains hum and its harmonics by itself; 50 / 60: that mains
         frequency; off), declick (repair short clicks before denoising; off by default: it can
         take plosives for clicks)
Notes:   learns the noise while running (no noise sample needed); eases off towards the
         untouched input where the speech is already clean (an SNR estimate) and, with
         deepfilternet3, where the noise is other voices (babble, a café: the model cannot tell
         them from the speaker and would cut the speaker's words). 10 ms frames.
         Needs 48 kHz audio: put a resample node in front of other rates. One independent state
         per channel.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fusegraph.nodes.contract import AudioFormat, AudioProcessor, NodeError, NodeSpec, Params, Port

RATE = 48000


class AudioDenoiseParams(Params):
    model: Literal["deepfilternet3", "rnnoise"] = Field(
        "deepfilternet3", description="the learned core: DeepFilterNet3 (better, 40 ms) or RNNoise (lighter, 30 ms)")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0: input untouched, 1: full noise suppression")
    limit_db: float = Field(35.0, ge=0.0, le=100.0,
                            description="most attenuation applied to steady noise, dB (100: no limit)")
    hum: Literal["auto", "50", "60", "off"] = Field(
        "auto", description="mains hum cancelling: auto-detect 50/60 Hz, a fixed mains frequency, or off")
    declick: bool = Field(False, description="repair short clicks (crackle) before denoising")


def audio_format(p: AudioDenoiseParams, ins: dict[str, AudioFormat]) -> AudioFormat:
    fmt = ins.get("in")
    if fmt is None:
        raise NodeError("no audio arrives", port="in")
    if fmt.rate != RATE:
        raise NodeError(f"audio_denoise needs {RATE} Hz audio, got {fmt.rate} Hz: insert a resample node "
                        f"before it", port="in", fix=("resample", {"rate": RATE}))
    if p.model != "rnnoise":
        from fusegraph.nodes.lib.audio_denoiser import model_archive

        model_archive(p.model)  # NodeError with the fetch command when it is not downloaded
    return AudioFormat(RATE, fmt.channels)


class DenoiseProcessor(AudioProcessor):
    """The node's stream: SpeechDenoiser behind the AudioProcessor contract."""

    def __init__(self, p: AudioDenoiseParams, fmt: AudioFormat):
        from fusegraph.nodes.lib.audio_denoiser import SpeechDenoiser  # loads a model only when a stream opens
        self.channels = fmt.channels
        self.model = p.model
        self.core = SpeechDenoiser(fmt.rate, fmt.channels, strength=p.strength, limit_db=p.limit_db,
                                   hum=p.hum, declick=p.declick, model=p.model)
        self.latency = self.core.latency

    def process(self, block: np.ndarray) -> np.ndarray:
        return self.core.process(block)

    def flush(self) -> np.ndarray:
        return self.core.flush()

    def set_params(self, p: AudioDenoiseParams) -> bool:
        if p.model != self.model:  # another latency: the stream is rebuilt
            return False
        self.core.set_params(strength=p.strength, limit_db=p.limit_db, hum=p.hum, declick=p.declick)
        return True


def stream(p: AudioDenoiseParams, ins: dict[str, AudioFormat]) -> DenoiseProcessor:
    return DenoiseProcessor(p, audio_format(p, ins))


SPEC = NodeSpec(
    type="audio_denoise", category="filter", role="audio", Params=AudioDenoiseParams, doc=__doc__,
    inputs=(Port("in", "audio"),), outputs=(Port("out", "audio"),),
    audio_format=audio_format, stream=stream,
)
