"""The preview panel: the previewed node's latest frame in a raw texture, taken from
LiveRunner.preview() when the window draws (never waits on the engine).

The texture is exactly the frame's size (a float32 array this panel owns and writes in place: no
copy through set_value): Dear PyGui uploads a raw texture whole every frame it draws, so it holds
nothing the panel does not show. The live runner makes its preview frames at the panel's width;
a new frame size makes a new texture.
"""
from __future__ import annotations

import cv2
import numpy as np
import dearpygui.dearpygui as dpg

SIZE = 480  # the largest side a frame is shown at


def fit(frame: np.ndarray, size: int = SIZE) -> np.ndarray:
    """RGBA uint8 at most size x size (aspect kept); a mask (HxW) shows grey."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGBA)
    elif frame.shape[2] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA)
    h, w = frame.shape[:2]
    if w > size or h > size:
        s = size / max(w, h)
        frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return frame


class PreviewPanel:
    def __init__(self, ctl, parent: int | str, size: int = SIZE, display_width: int = 400):
        self.ctl = ctl
        self.size = size
        self.display_width = display_width
        self.index = -1
        self.shown: tuple[int, int] = (16, 9)  # width, height of the frame in the texture
        self.pixels, self.texture = self._texture(*self.shown)
        with dpg.group(parent=parent):
            self.caption = dpg.add_text("Preview (not running: Run > Run, or F5)")
            self.image = dpg.add_image(self.texture, width=display_width, height=display_width * 9 // 16,
                                       border_color=(70, 70, 70, 255))

    @staticmethod
    def _texture(w: int, h: int) -> tuple[np.ndarray, int | str]:
        pixels = np.zeros((h, w, 4), np.float32)
        pixels[..., 3] = 1.0
        with dpg.texture_registry():
            return pixels, dpg.add_raw_texture(w, h, pixels, format=dpg.mvFormat_Float_rgba)

    def clear(self) -> None:
        """Nothing shown (the run stopped, or the previewed node is gone): no stale picture."""
        self.pixels[..., :3] = 0.0
        self.index = -1

    def update(self) -> bool:
        """Upload the newest frame if there is one; True when the texture changed."""
        frame, index = self.ctl.preview()
        target = self.ctl.preview_target()
        if frame is None and self.ctl.running and self.index != -1:
            self.clear()
            why = next(iter(self.ctl.node_errors().get(target, [])), "") if target else ""
            dpg.set_value(self.caption, f"Preview: nothing from {why or target}" if target
                          else "Preview: select a node to see its output")
            return True
        if frame is None or index == self.index:
            if not self.ctl.running:
                dpg.set_value(self.caption, "Preview (not running: Run > Run, or F5)")
            return False
        self.index = index
        img = fit(np.asarray(frame), self.size)
        h, w = img.shape[:2]
        if (w, h) != self.shown:  # a texture of the new size; the old one goes
            old = self.texture
            self.pixels, self.texture = self._texture(w, h)
            self.shown = (w, h)
            scale = min(self.display_width / w, self.display_width * 0.75 / h)  # fit the panel, aspect kept
            dpg.configure_item(self.image, texture_tag=self.texture, width=max(1, round(w * scale)),
                               height=max(1, round(h * scale)))
            dpg.delete_item(old)
        np.multiply(img, np.float32(1.0 / 255.0), out=self.pixels, casting="unsafe")
        dpg.set_value(self.caption, f"Preview: {target or '-'}   frame {index}   {frame.shape[1]}x{frame.shape[0]}")
        return True

    def texture_pixels(self) -> np.ndarray:
        """What the texture holds now (RGBA float32 in [0, 1], the shown part)."""
        return self.pixels.copy()
