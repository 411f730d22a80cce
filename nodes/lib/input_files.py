"""What every reader of a file a preset names shares: regular files only, a bounded number of
bytes, and pictures no larger than the GPU and memory allow, found from the header, before
anything is decoded (a 2.6 MB PNG can declare 30000x30000 pixels: 2.7 GB once decoded)."""
from __future__ import annotations

import errno
import io
import os
import re
import stat
import warnings

from fusegraph.nodes.contract import MAX_TEXTURE, PIXEL_BUDGET, NodeError

MAX_IMAGE_BYTES = 512 * 2**20


def read_bounded(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """A regular file's bytes, at most `limit` of them, else OSError/ValueError saying why not.
    Opened without blocking (a FIFO would wait for a writer for ever) and checked to be a file
    (/dev/zero, a FIFO or a folder is refused before anything is read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        check_regular(os.fstat(fd))
        size = os.fstat(fd).st_size
        if size > limit:
            raise ValueError(f"{what} is {size / 2**20:.1f} MB; at most {limit // 2**20} MB is read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew while we read
            raise ValueError(f"{what} is larger than {limit // 2**20} MB")
        return data
    finally:
        os.close(fd)


def check_regular(st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file (a device, FIFO or socket)")


def regular_file_error(path: str) -> str | None:
    """Why FFmpeg should not be given `path` (a FIFO would hang it, /dev/zero feed it for ever),
    or None: a missing file is left for the reader to report in its own words."""
    try:
        check_regular(os.stat(path))
    except (IsADirectoryError, ValueError) as e:
        return e.strerror if isinstance(e, OSError) else str(e)
    except OSError:
        return None
    return None


def check_picture_size(size: tuple[int, int], what: str, node: str | None, max_side: int = MAX_TEXTURE) -> None:
    """A NodeError if a picture of `size` (w, h) is larger than a texture may be or than the
    pixel budget allows."""
    w, h = size
    if w > max_side or h > max_side:
        raise NodeError(f"{what} is {w}x{h} pixels; the GPU takes at most {max_side} a side "
                        f"(resize it first)", node=node)
    if w * h > PIXEL_BUDGET:
        raise NodeError(f"{what} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); at most "
                        f"{PIXEL_BUDGET / 1e6:.0f} megapixels are read (resize it first)", node=node)


def check_image_header(data: bytes, what: str, node: str | None, max_side: int = MAX_TEXTURE) -> None:
    """check_picture_size on the size an encoded picture declares in its header, read by Pillow
    (nothing is decoded). A format Pillow does not know passes: OpenCV, which may know it,
    holds it to the same budget (OPENCV_IO_MAX_IMAGE_PIXELS, nodes/__init__.py)."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own bomb warning: our check says it better
        try:
            with Image.open(io.BytesIO(data)) as im:
                size = im.size
        except Image.DecompressionBombError as e:  # past twice Pillow's limit, far past ours
            m = re.search(r"\((\d+) pixels\)", str(e))
            pixels = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "too many pixels"
            raise NodeError(f"{what} declares {pixels}; at most {PIXEL_BUDGET / 1e6:.0f} megapixels "
                            f"are read (resize it first)", node=node) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return
    check_picture_size(size, what, node, max_side)
