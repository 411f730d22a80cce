"""Sound blocks as PyAV frames, for the nodes that encode sound (audio_out, video_out)."""
from __future__ import annotations

import av
import numpy as np

from fusegraph.nodes.spec import AudioFormat


def layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def audio_frame(block: np.ndarray, fmt: AudioFormat, sample_fmt: str, pts: int) -> av.AudioFrame:
    """A float32 (n, channels) block as a PyAV frame of `sample_fmt` (packed) at time `pts`."""
    block = np.asarray(block, np.float32).reshape(-1, fmt.channels)
    if sample_fmt == "flt":
        data = block
    else:
        bits = 16 if sample_fmt == "s16" else 32
        scale = float(2 ** (bits - 1))
        kind = np.int16 if bits == 16 else np.int32
        data = np.clip(np.round(block * scale), -scale, scale - 1).astype(kind)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.reshape(1, -1)), format=sample_fmt,
                                       layout=layout(fmt.channels))
    frame.sample_rate = fmt.rate
    frame.pts = pts
    return frame
