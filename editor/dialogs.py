"""Modal questions and file dialogs (Dear PyGui windows made on demand, deleted when answered)."""
from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg

# the open modal's buttons by label (tests and the end-to-end probe answer through it)
current: dict[str, Callable[[], None]] = {}
current_title: list[str] = []
current_items: dict[str, int] = {}
current_window: list[int] = []


def ask(title: str, text: str, buttons: list[tuple[str, Callable[[], None]]], width: int = 460) -> int:
    """A modal window with `text` and one button per (label, action); any button closes it.
    One question at a time: a new one replaces an open one. It opens over an open menu or
    popup (Dear PyGui's default refuses to, and the question stayed open but invisible: every
    shortcut waited for an answer the user could not see)."""
    if current_window and dpg.does_item_exist(current_window[0]):
        dpg.delete_item(current_window[0])
    current_items.clear()
    vw, vh = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
    with dpg.window(label=title, modal=True, no_open_over_existing_popup=False, no_collapse=True, no_resize=True, no_close=True, width=width,
                    pos=[max(0, (vw - width) // 2), max(0, vh // 2 - 120)], no_saved_settings=True) as win:
        dpg.add_text(text, wrap=width - 20)
        dpg.add_spacer(height=6)
        with dpg.group(horizontal=True):
            for label, action in buttons:
                current_items[label] = dpg.add_button(label=label, width=130, callback=_answer,
                                                      user_data=(win, action))
    current.clear()
    current.update({label: (lambda a=action, w=win: _answer(None, None, (w, a))) for label, action in buttons})
    current_title[:] = [title]
    current_window[:] = [win]
    return win


def _answer(sender, app_data, user_data) -> None:
    win, action = user_data
    current.clear()
    current_title.clear()
    current_items.clear()
    current_window.clear()
    if dpg.does_item_exist(win):
        dpg.delete_item(win)
    action()


def button_rects() -> dict[str, list[float]]:
    """Screen rectangles of the open modal's buttons (drawn at least once)."""
    out = {}
    for label, item in current_items.items():
        state = dpg.get_item_state(item) if dpg.does_item_exist(item) else {}
        if "rect_min" in state and state["rect_max"][0] > state["rect_min"][0]:  # drawn already
            out[label] = [*state["rect_min"], *state["rect_max"]]
    return out


def answer(label: str) -> None:
    """Press a button of the open modal (tests)."""
    current[label]()


def cancel() -> bool:
    """Escape: answer "Cancel" (or "Close") when the open question has it; True if it did."""
    for label in ("Cancel", "Close"):
        if label in current:
            answer(label)
            return True
    return False


_closer: list[int] = []


def close_popups() -> None:
    """Close an open menu or popup (Escape). ImGui has no call for it from here, but opening a
    modal closes the popups open at its level: an invisible one is opened for one frame
    (`heal` deletes it on the next)."""
    if _closer or current_window:
        return
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvThemeCol_ModalWindowDimBg, (0, 0, 0, 0))
    win = dpg.add_window(modal=True, no_open_over_existing_popup=False, no_title_bar=True, no_background=True,
                         no_saved_settings=True, width=1, height=1, pos=[-10, -10])
    dpg.bind_item_theme(win, theme)
    _closer[:] = [win, theme, 2]


def heal() -> None:
    """Once per frame: a question must be on screen while it is waiting for an answer. Dear PyGui
    hides a modal that ImGui closed (another popup opened over it): show it again; one whose
    window is gone is no question any more."""
    if _closer:
        _closer[2] -= 1
        if _closer[2] <= 0:
            for item in _closer[:2]:
                if dpg.does_item_exist(item):
                    dpg.delete_item(item)
            _closer.clear()
    if not current_window:
        return
    win = current_window[0]
    if not dpg.does_item_exist(win):
        current.clear()
        current_title.clear()
        current_items.clear()
        current_window.clear()
    elif not dpg.is_item_shown(win):
        dpg.configure_item(win, show=True)


status: list[Callable[[str], None]] = []  # where a file dialog says why it refused a path (the app's status bar)
file_dialogs: list = []  # the open file dialog (editor/file_dialog.py), for the probe


def ask_file(title: str, extensions: tuple[str, ...], on_chosen: Callable[[str], None], default: str = "",
             save: bool = False) -> int:
    """A file dialog; on_chosen(path) when the user picks one (nothing on cancel). While it is
    open it is the question (shortcuts wait, Escape cancels)."""
    from fusegraph.editor.file_dialog import FileDialog

    def closed() -> None:
        current.clear()
        current_title.clear()
        current_items.clear()
        current_window.clear()
        file_dialogs.clear()

    dialog = FileDialog(title, extensions, on_chosen, default=default, save=save, on_close=closed,
                        say=lambda text: [fn(text) for fn in status])
    current.clear()
    current.update({"Cancel": dialog.cancel})
    current_title[:] = [title]
    current_items.clear()
    current_items.update({"OK": dialog.ok, "Cancel": dialog.cancel_button})
    current_window[:] = [dialog.window]
    file_dialogs[:] = [dialog]
    return dialog.window
