"""image: a still picture from a file (PNG, JPEG and the other formats OpenCV reads).

Outputs: out (video)
Params:  path (the image file)
Notes:   The same frame every time (an endless still). Alpha and 16-bit depth are dropped:
         the frame is 8-bit BGR. A relative path is taken as given (the runtime resolves
         preset-relative paths before opening).
"""
from __future__ import annotations

from fusegraph.nodes.lib.lazy import cv2
import numpy as np

from fusegraph.nodes.lib.input_files import MAX_IMAGE_BYTES, MAX_TEXTURE, PIXEL_BUDGET, check_image_header, read_bounded
from fusegraph.nodes.contract import NodeError, NodeSpec, OpenContext, Params, Port, Source, SourceInfo, path_field


class ImageParams(Params):
    path: str = path_field(kind="image")


class ImageSource(Source):
    def __init__(self, frame: np.ndarray, fps: float):
        frame.flags.writeable = False  # every read returns this one array: nobody may change it
        self.frame = frame
        h, w = frame.shape[:2]
        self.info = SourceInfo(size=(w, h), fps=fps, frame_count=None, still=True)

    def read(self, index: int) -> np.ndarray:
        return self.frame


def read_image(path: str, node: str | None, max_side: int = MAX_TEXTURE) -> np.ndarray:
    """The file as HxWx3 BGR uint8, or a NodeError saying why not. The size its header
    declares is checked before it is decoded."""
    if not path:
        raise NodeError("no image file chosen", node=node)
    try:  # read ourselves: OSError says exactly what is wrong
        data = read_bounded(path, MAX_IMAGE_BYTES, "the file")
    except FileNotFoundError:
        raise NodeError(f"cannot read image '{path}': file not found", node=node) from None
    except IsADirectoryError:
        raise NodeError(f"cannot read image '{path}': it is a folder, not a file", node=node) from None
    except OSError as e:
        raise NodeError(f"cannot read image '{path}': {e.strerror or e}", node=node) from None
    except ValueError as e:
        raise NodeError(f"cannot read image '{path}': {e}", node=node) from None
    check_image_header(data, f"image '{path}'", node, max_side)
    log = cv2.utils.logging  # a damaged file makes the decoder log; our message says it better
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:  # OpenCV's own size bound (a format Pillow could not size)
        raise NodeError(f"cannot read image '{path}': it declares more than {PIXEL_BUDGET / 1e6:.0f} megapixels "
                        f"or a size OpenCV refuses", node=node) from None
    finally:
        log.setLogLevel(old)
    if frame is None:
        raise NodeError(f"cannot read image '{path}': not a PNG or JPEG image (or it is damaged)",
                        node=node)
    return np.ascontiguousarray(frame)


def open_image(p: ImageParams, ctx: OpenContext) -> ImageSource:
    return ImageSource(read_image(ctx.find_input(p.path), ctx.node_id, ctx.max_texture), ctx.fps)


SPEC = NodeSpec(
    type="image", category="source", role="source", Params=ImageParams, doc=__doc__,
    outputs=(Port("out", "video"),), open=open_image,
)
