"""What the nodes that read and write media files (through FFmpeg, PyAV) share."""
from __future__ import annotations

import os

import av


def open_reason(e: Exception, what: str) -> str:
    """Why FFmpeg could not open a file, in plain words; `what` names the kind expected."""
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if isinstance(e, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, av.error.InvalidDataError):
        return f"not {what} file that FFmpeg can read (or it is damaged)"
    return getattr(e, "strerror", None) or str(e)


def drop_partial(container, temp: str) -> None:
    """A failed or cancelled write: close what was written and delete it."""
    try:
        if container is not None:
            container.close()
    except (OSError, av.FFmpegError):
        pass  # the partial file is going away anyway
    try:
        os.remove(temp)
    except FileNotFoundError:
        pass
