"""The editor's file dialog: a path field and the folder's entries (Dear PyGui's own dialog took
an absolute path typed as the name as a name inside the current folder, and a double-click did
not open).

The field takes a name, a relative path or an absolute one (~ too); Enter or OK opens a folder or
takes the file. A click on an entry puts its name in the field; a double-click goes into a folder
or takes a file. No file is written here: `on_chosen(path)` does what the caller wants with it.
"""
from __future__ import annotations

import os
from typing import Callable

import dearpygui.dearpygui as dpg


def resolve(text: str, folder: str) -> str:
    """What the user typed, as an absolute path (relative to `folder`)."""
    text = os.path.expanduser(text.strip())
    return os.path.normpath(text if os.path.isabs(text) else os.path.join(folder, text))


def entries(folder: str, extensions: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(name, is a folder) in `folder`: folders first, then the files with one of `extensions`
    (all when there are none); hidden ones left out."""
    try:
        names = sorted(os.listdir(folder), key=str.lower)
    except OSError:
        return []
    folders = [(n, True) for n in names if not n.startswith(".") and os.path.isdir(os.path.join(folder, n))]
    files = [(n, False) for n in names if not n.startswith(".") and os.path.isfile(os.path.join(folder, n))
             and (not extensions or os.path.splitext(n)[1].lower() in extensions)]
    return folders + files


class FileDialog:
    def __init__(self, title: str, extensions: tuple[str, ...], on_chosen: Callable[[str], None],
                 default: str = "", save: bool = False, on_close: Callable[[], None] = lambda: None,
                 say: Callable[[str], None] = lambda text: None):
        self.extensions = tuple(e.lower() for e in extensions if e != ".*")
        self.on_chosen, self.on_close, self.say, self.save = on_chosen, on_close, say, save
        default = os.path.abspath(os.path.expanduser(default)) if default else os.getcwd()
        self.folder = default if os.path.isdir(default) else os.path.dirname(default)
        self.rows: dict[str, int] = {}
        vw, vh = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
        with dpg.window(label=title, modal=True, no_open_over_existing_popup=False, no_collapse=True, no_close=True,
                        width=720, height=460, pos=[max(0, (vw - 720) // 2), max(0, (vh - 460) // 2)],
                        no_saved_settings=True) as self.window:
            self.where = dpg.add_text("")
            with dpg.child_window(height=-62) as self.listing:
                pass
            self.field = dpg.add_input_text(width=-1, on_enter=True, callback=self.accept,
                                            default_value=os.path.basename(default) if save else "",
                                            hint="a name, or a path (absolute or relative); Enter")
            with dpg.group(horizontal=True):
                self.ok = dpg.add_button(label="Save" if save else "Open", width=130, callback=self.accept)
                self.cancel_button = dpg.add_button(label="Cancel", width=130, callback=self.cancel)
        with dpg.item_handler_registry() as self.handlers:
            dpg.add_item_double_clicked_handler(callback=self._double_clicked)
        self.show(self.folder)
        dpg.focus_item(self.field)

    def show(self, folder: str) -> None:
        self.folder = folder
        dpg.set_value(self.where, f"Folder: {folder}")
        dpg.delete_item(self.listing, children_only=True)
        self.rows = {}
        for name, is_dir in [("..", True)] + entries(folder, self.extensions):
            row = dpg.add_selectable(label=name + ("/" if is_dir and name != ".." else ""), parent=self.listing,
                                     user_data=name, callback=self._clicked)
            dpg.bind_item_handler_registry(row, self.handlers)
            self.rows[name] = row

    def _clicked(self, sender, app_data, name: str) -> None:
        for row in self.rows.values():
            if row != sender:
                dpg.set_value(row, False)
        if not os.path.isdir(os.path.join(self.folder, name)):
            dpg.set_value(self.field, name)

    def _double_clicked(self, sender, app_data, user_data=None) -> None:
        item = app_data[-1] if isinstance(app_data, (list, tuple)) else app_data  # [button, item]
        name = next((n for n, row in self.rows.items() if row == item), None)
        if name is not None:
            self.take(os.path.normpath(os.path.join(self.folder, name)))

    def accept(self, sender=None, app_data=None, user_data=None) -> None:
        text = dpg.get_value(self.field)
        if text.strip():
            self.take(resolve(text, self.folder))

    def take(self, path: str) -> None:
        """A folder is entered; a file is chosen (to open: it must exist; to save: its folder must)."""
        if os.path.isdir(path):
            dpg.set_value(self.field, "")
            self.show(path)
            return
        if self.save:
            if self.extensions and not os.path.splitext(path)[1]:
                path += self.extensions[0]
            if not os.path.isdir(os.path.dirname(path)):
                self.say(f"cannot save '{path}': the folder '{os.path.dirname(path)}' does not exist")
                return
        elif not os.path.isfile(path):
            self.say(f"'{path}': no such file")
            return
        self.close()
        self.on_chosen(path)

    def cancel(self, sender=None, app_data=None, user_data=None) -> None:
        self.close()

    def close(self) -> None:
        if dpg.does_item_exist(self.window):
            dpg.delete_item(self.window)
            dpg.delete_item(self.handlers)
        self.on_close()

    def geometry(self) -> dict:
        """Screen centres of the entries and the field (the end-to-end tests click them)."""
        out = {}
        for name, item in [*self.rows.items(), ("<field>", self.field)]:
            state = dpg.get_item_state(item) if dpg.does_item_exist(item) else {}
            if state.get("visible") and "rect_min" in state and state["rect_max"][0] > state["rect_min"][0]:
                (x0, y0), (x1, y1) = state["rect_min"], state["rect_max"]
                out[name] = [x0 + min(40, (x1 - x0) / 2), (y0 + y1) / 2]
        return out
