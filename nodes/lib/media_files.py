"""What the nodes that read and write media files (through FFmpeg, PyAV) share."""
from __future__ import annotations

import os

from fusegraph.nodes.lib.lazy import av

from fusegraph.nodes.lib.output_names import check_output_name
from fusegraph.nodes.contract import NodeError, Sink
from fusegraph.runtime.atomic import Partial, PublishError, Staging, publish


def check_target(path: str, node: str | None, what: str) -> tuple[str, str]:
    """(folder, file name) of a file we are about to write, or a NodeError if we cannot."""
    if not path:
        raise NodeError(f"no {what} file chosen", node=node)
    check_output_name(path, node)
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


def write_error(e: Exception, path: str, node: str | None) -> NodeError:
    """A failed write (the disk is full, the folder went away) in plain words."""
    return NodeError(f"cannot write '{path}': {getattr(e, 'strerror', None) or e}", node=node)


class StagedSink(Sink):
    """A sink whose files are staged (self.staging, runtime.atomic) by finish() and published
    when it closes; self.state: "open" -> "finished" (complete under temporary names) ->
    "closed" | "discarded"."""

    def close(self) -> None:
        files = self.finish()
        if self.state != "finished":
            return
        try:
            publish(files)  # close_sinks has done it already when it closes several sinks
        except PublishError as e:
            self.discard()
            raise write_error(e, e.partial.shown, self.node) from None
        self.staging.release()
        self.state = "closed"


class FileSink(StagedSink):
    """A sink that writes one file through FFmpeg (self.container) under a temporary name beside
    its target (runtime.atomic: unique per run, locked while written) and publishes it over the
    target when the run ends, together with the run's other outputs (close_sinks); a failure
    drops it instead. Subclasses call _stage(target) for self.temp, then set self.container and
    state = "open"."""

    def _stage(self, target: str) -> str:
        self.target, self.staging, self.container = target, Staging(self.node), None
        return self.staging.new(target, shown=self.path).path

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

    def finish(self) -> list[Partial]:
        if self.state != "open":
            return []
        try:
            self._flush()
            self.container.close()  # the file is complete (and playable) under its temporary name
        except (OSError, av.FFmpegError) as e:
            self.discard()
            raise write_error(e, self.path, self.node) from None
        except BaseException:
            self.discard()
            raise
        self.state = "finished"
        return self.staging.pending()

    def discard(self) -> None:
        if self.state in ("closed", "discarded"):
            return
        if self.state == "open":
            self._stop()
            try:
                if self.container is not None:
                    self.container.close()
            except (OSError, av.FFmpegError):
                pass  # the partial file is going away anyway
        self.state = "discarded"
        self.staging.discard()
