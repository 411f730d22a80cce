"""image_out: save frames as PNG or JPEG files.

Inputs:  in (video; a mask is saved as a grey image)
Params:  path (.png, .jpg or .jpeg; may hold a {frame} placeholder, e.g. "out/shot_{frame:05d}.png"),
         mode ("last": the last frame, written when the run ends; "sequence": every frame as it
         comes, the path must hold {frame})
Notes:   Every file is written under a temporary name and renamed into place, so a reader never
         sees a half-written image. A failed run writes nothing in "last" mode; in "sequence" mode
         the frames written so far stay (each one is complete). PNG keeps alpha when the frame has
         any transparency; JPEG is saved at quality 95.
"""
from __future__ import annotations

import os
import secrets
from typing import Literal

import cv2
import numpy as np

from fusegraph.nodes.spec import NodeError, NodeSpec, OpenContext, Params, Port, Sink, path_field
from fusegraph.nodes.media_files import check_target

FORMATS = {".png": [cv2.IMWRITE_PNG_COMPRESSION, 3], ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
           ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95]}


class ImageOutParams(Params):
    path: str = path_field(kind="image", save=True)
    mode: Literal["last", "sequence"] = "last"


def to_bgr(img, ext: str) -> np.ndarray:
    """RGBA / RGB / grey uint8 -> what cv2.imwrite expects (BGR(A) or grey)."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img
    if img.shape[2] == 4 and ext == ".png" and (img[..., 3] < 255).any():
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)


def write_atomic(path: str, img: np.ndarray, ext: str, node: str | None) -> None:
    ok, data = cv2.imencode(ext, img, FORMATS[ext])
    if not ok:
        raise NodeError(f"cannot encode '{path}' as {ext[1:].upper()}", node=node)
    folder, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.partial")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the usual permissions
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data.tobytes())
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as e:
        raise NodeError(f"cannot write '{path}': {e.strerror or e}", node=node) from None


class ImageOut(Sink):
    def __init__(self, p: ImageOutParams, ctx: OpenContext):
        self.node, self.p = ctx.node_id, p
        self.pattern = "{frame" in p.path
        if p.mode == "sequence" and not self.pattern:
            raise NodeError(f"'{p.path}': a sequence needs a {{frame}} placeholder in the file name, "
                            f"e.g. 'shot_{{frame:05d}}.png'", node=self.node)
        first = self._path(0)
        check_target(first, self.node, "image")
        self.ext = os.path.splitext(first)[1].lower()
        if self.ext not in FORMATS:
            raise NodeError(f"cannot write '{p.path}': use a .png, .jpg or .jpeg file name", node=self.node)
        self.last: tuple[np.ndarray, int] | None = None
        self.done = False

    def _path(self, index: int) -> str:
        if not self.pattern:
            return self.p.path
        try:
            return self.p.path.format(frame=index)
        except (KeyError, IndexError, ValueError) as e:
            raise NodeError(f"'{self.p.path}': bad placeholder ({e}); use {{frame}} or e.g. {{frame:05d}}",
                            node=self.node) from None

    def write(self, inputs: dict, index: int) -> None:
        img = to_bgr(inputs["in"], self.ext)
        if self.p.mode == "sequence":
            write_atomic(self._path(index), img, self.ext, self.node)
        else:  # keep a copy: the caller may reuse its buffer for the next frame
            if np.may_share_memory(img, inputs["in"]):
                img = img.copy()
            self.last = (img, index)

    def close(self) -> None:
        if self.done or self.p.mode == "sequence":
            self.done = True
            return
        self.done = True
        if self.last is None:  # no frames: nothing to write, an existing file stays as it was
            return
        img, index = self.last
        write_atomic(self._path(index), img, self.ext, self.node)

    def discard(self) -> None:
        self.done = True
        self.last = None


def open_image_out(p: ImageOutParams, ctx: OpenContext) -> ImageOut:
    return ImageOut(p, ctx)


SPEC = NodeSpec(
    type="image_out", category="sink", role="sink", Params=ImageOutParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), open=open_image_out,
)
