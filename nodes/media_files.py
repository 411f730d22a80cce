"""What the nodes that read and write media files (through FFmpeg, PyAV) share."""
from __future__ import annotations

import os

import av

from fusegraph.nodes.spec import NodeError, Sink


def check_target(path: str, node: str | None, what: str) -> tuple[str, str]:
    """(folder, file name) of a file we are about to write, or a NodeError if we cannot."""
    if not path:
        raise NodeError(f"no {what} file chosen", node=node)
    folder, name = os.path.split(os.path.abspath(path))
    if not name:
        raise NodeError(f"'{path}' is a folder: add a file name", node=node)
    if not os.path.isdir(folder):
        raise NodeError(f"cannot write '{path}': the folder '{folder}' does not exist", node=node)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NodeError(f"cannot write '{path}': no permission to write in '{folder}'", node=node)
    if os.path.isdir(path):
        raise NodeError(f"cannot write '{path}': it is a folder", node=node)
    return folder, name


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


def write_error(e: Exception, path: str, node: str | None) -> NodeError:
    """A failed write (the disk is full, the folder went away) in plain words."""
    return NodeError(f"cannot write '{path}': {getattr(e, 'strerror', None) or e}", node=node)


def publish(container, temp: str, target: str, path: str, node: str | None) -> None:
    """Close a finished file (it becomes playable) and move it over its target."""
    try:
        container.close()
        os.replace(temp, target)
    except (OSError, av.FFmpegError) as e:
        raise write_error(e, path, node) from None


class FileSink(Sink):
    """A sink that writes one file through FFmpeg under a temporary name (self.container at
    self.temp) and moves it over self.target when it closes; a failure drops it instead.
    Subclasses set node, path, target, temp, container and state = "open"."""

    def _mux(self, stream, frame) -> None:
        """Encode a frame on `stream` (None: flush its encoder) and write the packets out."""
        try:
            self.container.mux(stream.encode(frame))
        except (OSError, av.FFmpegError) as e:  # e.g. the disk is full
            raise write_error(e, self.path, self.node) from None

    def _flush(self) -> None:
        """Write what the encoders still hold."""

    def _stop(self) -> None:
        """Stop helper threads before the file is closed."""

    def close(self) -> None:
        if self.state != "open":
            return
        try:
            self._flush()
            publish(self.container, self.temp, self.target, self.path, self.node)
        except BaseException:
            self.discard()
            raise
        self.state = "closed"

    def discard(self) -> None:
        if self.state != "open":
            return
        self.state = "discarded"
        self._stop()
        drop_partial(self.container, self.temp)
