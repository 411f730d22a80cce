"""The editor's per-user files: the config folder, the recent-files list, the recovery file.

Folder: ``$FUSEGRAPH_CONFIG`` if set (tests), else ``$XDG_CONFIG_HOME/fusegraph``, else
``~/.config/fusegraph``; read from the environment on every call. Writes are atomic
(temporary file in the same folder, fsync, rename).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from fusegraph.runtime.graph import write_text_atomic

log = logging.getLogger(__name__)

MAX_RECENT = 10
RECENT_FILE = "recent.json"
RECOVERY_FILE = "recovery.json"


def config_dir() -> Path:
    override = os.environ.get("FUSEGRAPH_CONFIG")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "fusegraph"


def recovery_path() -> Path:
    return config_dir() / RECOVERY_FILE


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: a failure leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def _key(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().absolute())


def read_recent() -> list[str]:
    """Recent graph files, most recent first, at most MAX_RECENT; files that no longer exist are dropped."""
    try:
        data = json.loads((config_dir() / RECENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    out: list[str] = []
    for item in data:
        if isinstance(item, str) and item not in out and os.path.isfile(item):
            out.append(item)
    return out[:MAX_RECENT]


def _write_recent(items: list[str]) -> list[str]:
    items = items[:MAX_RECENT]
    try:
        atomic_write_text(config_dir() / RECENT_FILE, json.dumps(items, indent=2) + "\n")
    except OSError as exc:  # an unwritable config folder must not break opening or saving
        log.warning("cannot write the recent-files list: %s", exc)
    return items


def add_recent(path: str | os.PathLike) -> list[str]:
    """Put `path` first in the recent list (persisted); returns the new list."""
    key = _key(path)
    return _write_recent([key] + [p for p in read_recent() if p != key])


def remove_recent(path: str | os.PathLike) -> list[str]:
    key = _key(path)
    return _write_recent([p for p in read_recent() if p != key])
