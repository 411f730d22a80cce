"""Output files written whole or not at all, by any number of processes at once.

Every file fusegraph writes (videos, sounds, images, presets, models, the editor's own files)
is first written under a temporary name beside its target, so the final rename is atomic:
`.{stem}.partial-{pid}-{token}-{n}{ext}`, unique per process, per output and per file (created
with O_EXCL). Symlinks are followed (the link keeps pointing at the new file) and a replaced
file keeps its permission bits.

Dead writers: a staging holds an flock on its first partial in each folder while it works. The
kernel drops it when the process ends, however it ends (SIGKILL included), so the next writer to
that folder tells a dead writer's partials (unlocked) from a live one's (locked) and removes
them (`sweep`). A lock, not a pid check: pids are reused, and a writer in another pid namespace
(a container sharing the folder) would look dead.

Publishing renames a whole set of partials (every output of a run) over their targets under an
flock on each folder, so sweeps and other publishes wait; when a rename fails part-way, the
targets already replaced get their old files back (kept as hard links until the end). Two runs
writing one output each write their own complete file and the later publish wins: a target is
only ever replaced by a complete file.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import re
import secrets
import stat
from contextlib import ExitStack, contextmanager
from typing import Iterator

PARTIAL = re.compile(r"^\..*\.partial-(?P<run>\d+-[0-9a-f]{8})-\d+(\.[^.]*)?$")
_numbers = itertools.count()


class PublishError(OSError):
    """A rename that failed while publishing; `partial` names the output (its node and path)."""

    def __init__(self, partial: "Partial", cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), partial.target)
        self.partial = partial


@contextmanager
def folder_lock(folder: str) -> Iterator[int | None]:
    """An exclusive flock on the folder: sweeps, first partials and publishes there take turns.
    Yields the folder's fd (None when it cannot be opened: then there is nothing to lock)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # drops the lock


def _live(paths: list[str]) -> bool:
    """Whether any of one staging's partials is locked (its writer is alive), or cannot be told."""
    fds = []
    try:
        for path in paths:
            try:
                fds.append(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK))
                fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except FileNotFoundError:
                continue
            except OSError:  # BlockingIOError: locked, a live writer; anything else: leave it be
                return True
        return False
    finally:
        for fd in fds:
            os.close(fd)


def sweep(folder: str) -> list[str]:
    """Remove the partial files of writers that died in `folder` (call under its folder_lock);
    returns what was removed."""
    groups: dict[str, list[str]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = PARTIAL.match(entry.name)
        if m and entry.is_file(follow_symlinks=False):
            groups.setdefault(m["run"], []).append(entry.path)
    removed = []
    for paths in groups.values():
        if _live(paths):
            continue
        for path in paths:
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def _partial_path(target: str, run: str) -> str:
    """A fresh temporary name beside `target` for the writer `run` (its extension kept: FFmpeg
    and image viewers go by it)."""
    folder, name = os.path.split(target)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem[:100]}.partial-{run}-{next(_numbers)}{ext}")


class Partial:
    """One temporary file of a staging and the target it will replace."""

    def __init__(self, path: str, target: str, run: str, shown: str, node: str | None):
        self.path, self.target, self.run = path, target, run
        self.shown, self.node = shown, node  # for messages: the path as the user wrote it, the node
        self.synced = False  # flushed to disk already (else publish does it)
        self.published = False

    @property
    def folder(self) -> str:
        return os.path.dirname(self.target)


class Staging:
    """The temporary files of one output (a sink, a save): made by `new`, then published
    together with other stagings' (`publish`) or dropped (`discard`)."""

    def __init__(self, node: str | None = None):
        self.node = node
        self.run = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.files: list[Partial] = []
        self._anchors: dict[str, tuple[int, str]] = {}  # folder -> (locked fd, its partial's path)
        self._swept: set[str] = set()

    def new(self, target: str | os.PathLike, shown: str | None = None) -> Partial:
        """A new, empty, unique temporary file beside `target` (symlinks followed)."""
        shown = str(target) if shown is None else shown
        real = os.path.realpath(target)
        folder = os.path.dirname(real)
        anchored = folder in self._anchors
        with folder_lock(folder) if not anchored else _nothing():
            if folder not in self._swept:  # the first partial here: clear dead writers' leftovers
                sweep(folder)
                self._swept.add(folder)
            while True:
                path = _partial_path(real, self.run)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                    break
                except FileExistsError:
                    continue
            if anchored:
                os.close(fd)
            else:  # locked before the folder lock is let go: no sweep ever sees it unlocked
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._anchors[folder] = (fd, path)
        part = Partial(path, real, self.run, shown, self.node)
        self.files.append(part)
        return part

    def pending(self) -> list[Partial]:
        return [p for p in self.files if not p.published]

    def release(self) -> None:
        """Let go of the locks (after publish or discard; the next `new` takes a new one)."""
        for fd, _ in self._anchors.values():
            os.close(fd)
        self._anchors = {}

    def discard(self) -> None:
        """Remove every unpublished partial (the anchors last, so no sweep sees a half-removed set)."""
        anchors = {path for _, path in self._anchors.values()}
        for p in sorted(self.pending(), key=lambda p: p.path in anchors):
            try:
                os.unlink(p.path)
            except FileNotFoundError:
                pass
        self.files = [p for p in self.files if p.published]
        self.release()


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(p: Partial) -> str | None:
    """Rename one partial over its target (which keeps its permissions); returns a hard link to
    what it replaced (None: nothing was there, or the file system has no hard links)."""
    try:
        st = os.stat(p.target)
    except FileNotFoundError:
        st = None
    backup = None
    if st is not None and stat.S_ISREG(st.st_mode):
        os.chmod(p.path, stat.S_IMODE(st.st_mode))
        backup = _partial_path(p.target, p.run)
        try:
            os.link(p.target, backup)
        except OSError:
            backup = None
    try:
        os.replace(p.path, p.target)
    except OSError:
        if backup:
            os.unlink(backup)
        raise
    return backup


def publish(files: list[Partial]) -> None:
    """Rename every partial over its target, all or none: on a failure the targets already
    replaced get their old contents back, the partials stay (the caller discards them) and
    PublishError says which output failed."""
    for p in files:
        if not p.synced:
            try:
                _fsync(p.path)
            except OSError as exc:
                raise PublishError(p, exc) from None
            p.synced = True
    with ExitStack() as stack:
        folders = {f: stack.enter_context(folder_lock(f)) for f in sorted({p.folder for p in files})}
        done: list[tuple[Partial, str | None]] = []  # (published, backup of what it replaced)
        try:
            for p in files:
                try:
                    done.append((p, _replace(p)))
                except OSError as exc:
                    raise PublishError(p, exc) from None
        except BaseException:
            for p, backup in reversed(done):  # put back what was there
                try:
                    if backup:
                        os.replace(backup, p.target)
                    else:
                        os.unlink(p.target)
                except OSError:
                    pass
            raise
        for p, backup in done:
            p.published = True
            if backup:
                os.unlink(backup)
        for fd in folders.values():
            if fd is not None:
                os.fsync(fd)  # the renames themselves reach the disk


def write_atomic(path: str | os.PathLike, data: bytes, node: str | None = None) -> None:
    """Write a whole file: a partial beside it (symlinks followed), flushed, renamed over it
    keeping the old file's permissions. A failure leaves the old file and no partial."""
    staging = Staging(node)
    try:
        part = staging.new(path)
        write_partial(part, data)
        publish([part])
    finally:
        staging.discard()  # what was not published; and the lock


def write_partial(part: Partial, data: bytes) -> None:
    """Fill a partial with `data` and flush it to disk."""
    with open(part.path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    part.synced = True
