"""image_out: save frames as PNG or JPEG files.

Inputs:  in (video; a mask is saved as a grey image)
Params:  path (.png, .jpg or .jpeg; may hold a {frame} placeholder, e.g. "out/shot_{frame:05d}.png";
         no other braces or formats),
         mode ("last": the last frame, written when the run ends; "sequence": every frame as it
         comes, the path must hold {frame})
Notes:   Every image is written under a temporary name beside its file as it comes and all are
         renamed into place when the run ends (also after Ctrl+C, SIGTERM or SIGHUP), together
         with the run's other outputs: a reader never sees a half-written image, and a failed run
         writes nothing (a sequence already there is not half replaced). Live (the editor), a
         sequence's images are renamed into place one by one as they come. PNG keeps alpha when the
         frame has any transparency; JPEG is saved at quality 95.
"""
from __future__ import annotations

import os
import re
from typing import Literal

from fusegraph.nodes.lib.lazy import cv2
import numpy as np
from pydantic import field_validator

from fusegraph.nodes.contract import NodeError, NodeSpec, OpenContext, Params, Port, path_field
from fusegraph.nodes.lib.media_files import StagedSink, check_target, write_error
from fusegraph.runtime.atomic import Staging, publish, write_partial

# encoder settings by extension: PNG compression 3, JPEG quality 95 (cv2.IMWRITE_* numbers as
# literals: importing the node kind must not load OpenCV)
FORMATS = {".png": [16, 3], ".jpg": [1, 95], ".jpeg": [1, 95]}


# The one placeholder a file name may hold: {frame}, or {frame:05d}-style (zero-padded, at most
# 12 wide). Anything else str.format understands ({frame:0>1500000000}, {0}, {frame.x}) could
# cost unbounded memory or fail only when the file is written.
PLACEHOLDER = re.compile(r"\{frame(?::(0?)(\d{1,2})d)?\}")
MAX_FRAME_WIDTH = 12


class ImageOutParams(Params):
    path: str = path_field(kind="image", save=True)
    mode: Literal["last", "sequence"] = "last"

    @field_validator("path")
    @classmethod
    def _plain_placeholder(cls, path: str) -> str:
        rest = PLACEHOLDER.sub("", path)
        if "{" in rest or "}" in rest:
            raise ValueError("the only placeholder a file name may hold is {frame} or e.g. {frame:05d}")
        for m in PLACEHOLDER.finditer(path):
            if m.group(2) and int(m.group(2)) > MAX_FRAME_WIDTH:
                raise ValueError(f"{m.group(0)}: a frame number is at most {MAX_FRAME_WIDTH} digits wide")
        return path


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


def encode(path: str, img: np.ndarray, ext: str, node: str | None) -> bytes:
    ok, data = cv2.imencode(ext, img, FORMATS[ext])
    if not ok:
        raise NodeError(f"cannot encode '{path}' as {ext[1:].upper()}", node=node)
    return data.tobytes()


class ImageOut(StagedSink):
    def __init__(self, p: ImageOutParams, ctx: OpenContext):
        self.node, self.p, self.live = ctx.node_id, p, ctx.live
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
        self.staging = Staging(self.node)
        self.state = "open"  # -> "finished" (complete under temporary names) -> "closed" | "discarded"

    def _path(self, index: int) -> str:
        # the params allow only {frame} / {frame:05d}-style placeholders: format cannot fail
        return self.p.path.format(frame=index) if self.pattern else self.p.path

    def _stage(self, img: np.ndarray, index: int) -> None:
        """One image, whole, under a temporary name beside its file (published at the end; live,
        where a run has no end, a sequence's frames are published as they come)."""
        path = self._path(index)
        data = encode(path, img, self.ext, self.node)
        try:
            part = self.staging.new(path)
            write_partial(part, data)
            if self.live and self.p.mode == "sequence":
                publish([part])
                self.staging.files.remove(part)
                self.staging.release()  # its lock went with the file: the next image takes a new one
        except OSError as e:
            raise write_error(e, path, self.node) from None

    def write(self, inputs: dict, index: int) -> None:
        img = to_bgr(inputs["in"], self.ext)
        if self.p.mode == "sequence":
            self._stage(img, index)
        else:  # keep a copy: the caller may reuse its buffer for the next frame
            if np.may_share_memory(img, inputs["in"]):
                img = img.copy()
            self.last = (img, index)

    def finish(self) -> list:
        if self.state != "open":
            return []
        try:
            if self.last is not None:  # "last" mode; none: nothing to write, an existing file stays
                self._stage(*self.last)
        except BaseException:
            self.discard()
            raise
        self.state, self.last = "finished", None
        return self.staging.pending()

    def discard(self) -> None:
        if self.state not in ("closed", "discarded"):
            self.state, self.last = "discarded", None
            self.staging.discard()


def open_image_out(p: ImageOutParams, ctx: OpenContext) -> ImageOut:
    return ImageOut(p, ctx)


SPEC = NodeSpec(
    type="image_out", category="sink", role="sink", Params=ImageOutParams, doc=__doc__,
    inputs=(Port("in", "video", accepts=("mask",)),), open=open_image_out,
)
