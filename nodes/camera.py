"""camera: live frames from a webcam.

Outputs: out (video)
Params:  device (camera number: 0 is the first camera), width, height, fps (what to ask the
         camera for)
Notes:   An endless source: each read returns the camera's newest frame. If the camera
         delivers another size, its picture is centre-cropped to the requested aspect ratio
         and scaled to the requested size (people are never stretched). If the camera cannot
         be opened, the error lists the cameras that can.
"""
from __future__ import annotations

import contextlib
import os
import sys

from fusegraph.nodes.lib.lazy import cv2
import numpy as np
from pydantic import Field

from fusegraph.nodes.contract import NodeError, NodeSpec, OpenContext, Params, Port, Source, SourceInfo

PROBE = range(10)
# Linux: V4L2 directly (opening an absent device is instant); elsewhere let OpenCV choose.


class CameraParams(Params):
    device: int = Field(0, ge=0, le=63, description="0 is the first camera",
                        json_schema_extra={"widget": "choices", "choices": "fusegraph.nodes.camera:available_cameras",
                                           "found": "cameras"})  # the inspector lists the cameras found
    width: int = Field(1280, ge=16, le=7680)
    height: int = Field(720, ge=16, le=4320)
    fps: float = Field(30.0, ge=1, le=240)


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs every failed open attempt to stderr; our error message says it better."""
    log = cv2.utils.logging
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(old)


def _capture(device: int) -> cv2.VideoCapture | None:
    with _quiet_opencv():
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY)
        if cap.isOpened():
            return cap
        cap.release()
    return None


def available_cameras() -> list[int]:
    """Camera numbers that open (0..9)."""
    found = []
    for i in PROBE:
        if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{i}"):
            continue  # no device node, nothing to try
        cap = _capture(i)
        if cap is not None:
            cap.release()
            found.append(i)
    return found


def fit(frame: np.ndarray, w: int, h: int) -> np.ndarray:
    """Centre-crop `frame` to the aspect ratio w:h, then scale it to w x h."""
    fh, fw = frame.shape[:2]
    if (fw, fh) == (w, h):
        return frame
    if fw * h > fh * w:  # too wide: crop the sides
        cw = max(1, round(fh * w / h))
        frame = frame[:, (fw - cw) // 2:(fw - cw) // 2 + cw]
    elif fw * h < fh * w:  # too tall: crop top and bottom
        ch = max(1, round(fw * h / w))
        frame = frame[(fh - ch) // 2:(fh - ch) // 2 + ch]
    shrink = frame.shape[1] > w
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class Camera(Source):
    read_ahead = False  # live: a frame read ahead would be an older one than the device has when asked

    def __init__(self, p: CameraParams, node: str | None):
        self.p, self.node = p, node
        cap = _capture(p.device)
        if cap is None:
            others = [i for i in available_cameras() if i != p.device]
            hint = (f"cameras that can be opened: {', '.join(map(str, others))}" if others
                    else "no cameras found")
            raise NodeError(f"camera {p.device} could not be opened; {hint}", node=node)
        self.cap = cap
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, p.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, p.height)
        cap.set(cv2.CAP_PROP_FPS, p.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep no backlog: a read gets a fresh frame
        try:
            self._grab("opened but delivers no frames (is another program using it?)")
        except NodeError:
            self.close()
            raise
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(size=(p.width, p.height), fps=fps if 1 <= fps <= 240 else p.fps,
                               frame_count=None)

    def _grab(self, problem: str) -> np.ndarray:
        with _quiet_opencv():
            ok, frame = self.cap.read()
        if not ok or frame is None:
            raise NodeError(f"camera {self.p.device} {problem}", node=self.node)
        return frame

    def read(self, index: int) -> np.ndarray:
        frame = self._grab("stopped delivering frames (unplugged, or taken by another program?)")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(fit(frame, self.p.width, self.p.height))

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def open_camera(p: CameraParams, ctx: OpenContext) -> Camera:
    return Camera(p, ctx.node_id)


SPEC = NodeSpec(
    type="camera", category="source", role="source", Params=CameraParams, doc=__doc__,
    outputs=(Port("out", "video"),), open=open_camera,
)
