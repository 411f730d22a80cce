"""The editor window: menu, palette, canvas, inspector, preview, timing plot, status bar.

`main(preset)` is what `fusegraph edit [PRESET]` runs. The window is a thin view of an
EditorController (editor/controller.py); every menu item, key and canvas callback calls it.

Dear PyGui callbacks run on this thread, between frames (manual callback management), so
the UI never races itself; the engine runs on its own thread inside LiveRunner.

Test hook: with FUSEGRAPH_EDITOR_PROBE=file.json set, the app writes the screen positions of
nodes, pins and modal buttons, the model and the selection to that file a few times a
second (the end-to-end tests drive the real window with xdotool from them); a PNG path
written to file.json.shot asks for a screenshot there.
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import time
from pathlib import Path

import dearpygui.dearpygui as dpg

from fusegraph.editor import dialogs
from fusegraph.editor.comment_editor import edit_comment
from fusegraph.editor.controller import EditorController
from fusegraph.editor.frame_pacer import FramePacer
from fusegraph.editor.graph_canvas import GraphCanvas
from fusegraph.editor.inspector import Inspector
from fusegraph.editor.palette import Palette, QuickAdd
from fusegraph.editor.preview import PreviewPanel
from fusegraph.editor.render_window import RenderWindow
from fusegraph.editor.timing import TimingPanel, async_status
from fusegraph.nodes import REGISTRY
from fusegraph.runtime.resources import default_preset, is_shipped_preset

DEFAULT_PRESET = default_preset()
PALETTE_W, RIGHT_W, BOTTOM_H = 600, 420, 210
WINDOW_BG = (37, 37, 38, 255)  # Dear PyGui's default window colour, now the viewport's clear (see _bare_background)
GRAPH_FILES = (".json",)
KEY_EQUAL = 602  # ImGuiKey_Equal ("=", the "+" key unshifted); Dear PyGui has no name for it
SHORTCUTS = (  # Help > Keyboard and mouse
    ("Ctrl+N / Ctrl+O / Ctrl+S", "new, open, save the graph"),
    ("Ctrl+Q", "quit (asks about unsaved changes)"),
    ("Ctrl+Z / Ctrl+Y", "undo, redo"),
    ("Ctrl+C / Ctrl+V / Ctrl+D", "copy, paste, duplicate the selected nodes"),
    ("Ctrl+A", "select all nodes"),
    ("Delete / Backspace", "delete the selected nodes and links (one undo step)"),
    ("Tab / Space / right click", "quick add a node at the pointer"),
    ("F5", "run live / stop"),
    ("Ctrl+R", "render the file sinks offline (Run > Render...)"),
    ("Escape", "close a menu, a popup or a question"),
    ("F1", "this list"),
    ("drag from a pin", "a link; a bad one is refused with the reason"),
    ("Ctrl+click a link", "detach it"),
    ("drag on empty canvas", "box selection (Ctrl: add to it)"),
    ("middle drag / wheel", "pan / zoom the canvas"),
    ("Home or F, Ctrl+0", "fit the whole graph in view, actual size"),
    ("Ctrl+= / Ctrl+-", "zoom in, out"),
    ("drop a link on nothing", "quick add, only nodes that can take it"),
    ("C", "a comment frame around the selected nodes"),
    ("double-click a link / dot", "add / remove a reroute dot"),
    ("double-click a comment", "write its text"),
    ("Record (file sinks)", "the live run writes that file only while it is on"),
)
log = logging.getLogger(__name__)


class _NoStats:
    frame = -1


class EditorApp:
    def __init__(self, ctl: EditorController | None = None, width: int = 1600, height: int = 1000,
                 title: str = "fusegraph", probe: str | None = None):
        self.ctl = ctl or EditorController()
        self.title = title
        self.probe = probe
        self.typing_items: set[int] = set()
        self.frames = 0
        self.closing = False
        self._probe_at = 0.0
        self._paste_count = 0
        self._arity: dict = {}
        self._keys: list[int] = []
        self._ctrl_frame = -10
        self._link_after_add: tuple | None = None  # a link dropped on nothing waits for the node chosen
        # moderngl keeps the GIL during GL calls, so the engine thread holds it for much of its
        # frame on software GL; a short switch interval hands it to the UI thread between calls.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)
        self.pacer = FramePacer()  # draws when something changed, at most at the display's rate
        self._mouse: tuple = ()
        self._status_at = 0.0
        self._build(width, height)
        self.ctl.listeners.append(self._on_change)
        self.ctl.on_frame = self.pacer.wake  # a new live frame to show
        self.pacer.busy = self.ctl.engine_busy  # input is drawn between live frames where it can
        dialogs.status[:] = [lambda text: self.ctl.say(text, error=True)]
        dpg.create_viewport(title=title, width=width, height=height, x_pos=0, y_pos=0, disable_close=True,
                            vsync=True)  # a real display paces the loop; Xvfb does not wait
        dpg.set_exit_callback(lambda *a: self.request_close())
        dpg.setup_dearpygui()
        dpg.show_viewport()
        dpg.set_primary_window(self.window, True)
        self._bare_background()
        self.pacer.start()
        self.canvas.sync()
        self._on_change("file")

    # ---- layout ------------------------------------------------------------------------------
    def _build(self, width: int, height: int) -> None:
        with dpg.window(tag="fusegraph_main", menubar=True, no_scrollbar=True) as self.window:
            self._menus()
            with dpg.group(horizontal=True):
                with dpg.child_window(width=-RIGHT_W, height=-BOTTOM_H, no_scrollbar=True,
                                      border=False) as canvas_box:
                    self.canvas = GraphCanvas(self.ctl, canvas_box)
                with dpg.child_window(width=-1, height=-BOTTOM_H) as right:
                    self.preview = PreviewPanel(self.ctl, right, display_width=RIGHT_W - 20)
                    dpg.add_separator()
                    self.inspector = Inspector(self.ctl, right, self.typing_items)
            with dpg.group(horizontal=True):
                with dpg.child_window(width=PALETTE_W, height=BOTTOM_H - 36) as palette_box:
                    self.palette = Palette(palette_box, self.add_at_center, self.typing_items, width=PALETTE_W - 20)
                with dpg.child_window(width=-1, height=BOTTOM_H - 36, border=False, no_scrollbar=True) as bottom:
                    self.timing = TimingPanel(bottom, height=BOTTOM_H - 40)
            with dpg.group(horizontal=True):
                self.status_run = dpg.add_text("stopped", color=(160, 160, 160))
                self.status_fps = dpg.add_text("")
                self.status_errors = dpg.add_text("")
                # a one-click mend the live run suggests (insert a resample node where a rate differs)
                self.status_fix = dpg.add_button(label="", show=False, callback=self._apply_fix)
                self.status_msg = dpg.add_text("")
        self.canvas.on_record = self.toggle_record
        self.canvas.on_drop = self.quick_add_for_link
        self.canvas.on_edit_comment = self.edit_comment
        self.quick = QuickAdd(self.add_node, self.typing_items)
        self.render = RenderWindow(self.ctl)
        with dpg.handler_registry():
            for key in (dpg.mvKey_Delete, dpg.mvKey_Back, dpg.mvKey_Tab, dpg.mvKey_Spacebar, dpg.mvKey_Return,
                        dpg.mvKey_Escape, dpg.mvKey_C, dpg.mvKey_V, dpg.mvKey_D, dpg.mvKey_Z, dpg.mvKey_Y,
                        dpg.mvKey_S, dpg.mvKey_O, dpg.mvKey_N, dpg.mvKey_A, dpg.mvKey_Q, dpg.mvKey_R, dpg.mvKey_F5,
                        dpg.mvKey_F1, dpg.mvKey_Home, dpg.mvKey_F, dpg.mvKey_0, dpg.mvKey_Minus, KEY_EQUAL,
                        dpg.mvKey_Add, dpg.mvKey_Subtract):
                dpg.add_key_press_handler(key, callback=self._on_key, user_data=key)
            for key in (dpg.mvKey_LControl, dpg.mvKey_RControl, dpg.mvKey_ModCtrl):
                dpg.add_key_press_handler(key, callback=self._on_ctrl)
                dpg.add_key_down_handler(key, callback=self._on_ctrl)
            dpg.add_mouse_click_handler(dpg.mvMouseButton_Right, callback=self._on_right_click)

    def _bare_background(self) -> None:
        """No pane paints a background: the viewport's clear, in the window's colour, is the
        background. On software GL a blended fill is a shaded pass over every pixel it covers:
        the main window's own fill (the whole 1600x1000 viewport) was 8 of a UI frame's 19 CPU-ms,
        the panes' fills over it a quarter of a frame more. Clearing is a plain memset."""
        with dpg.theme() as theme:
            with dpg.theme_component(dpg.mvAll):
                dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0))
        dpg.bind_item_theme(self.window, theme)
        dpg.configure_item(self.window, no_background=True)
        dpg.set_viewport_clear_color(WINDOW_BG)

    def _menus(self) -> None:
        with dpg.menu_bar() as self.menu_bar:
            with dpg.menu(label="File"):
                dpg.add_menu_item(label="New", shortcut="Ctrl+N", callback=lambda: self.guard_unsaved(self.ctl.new))
                dpg.add_menu_item(label="Open...", shortcut="Ctrl+O", callback=self.open_dialog)
                self.recent_menu = dpg.add_menu(label="Open recent")
                dpg.add_menu_item(label="Save", shortcut="Ctrl+S", callback=self.save)
                dpg.add_menu_item(label="Save As...", callback=self.save_as_dialog)
                dpg.add_separator()
                dpg.add_menu_item(label="Quit", shortcut="Ctrl+Q", callback=self.request_close)
            with dpg.menu(label="Edit"):
                self.undo_item = dpg.add_menu_item(label="Undo", shortcut="Ctrl+Z", callback=self.ctl.undo)
                self.redo_item = dpg.add_menu_item(label="Redo", shortcut="Ctrl+Y", callback=self.ctl.redo)
                dpg.add_separator()
                dpg.add_menu_item(label="Copy", shortcut="Ctrl+C", callback=lambda: self.ctl.copy())
                dpg.add_menu_item(label="Paste", shortcut="Ctrl+V", callback=self.paste)
                dpg.add_menu_item(label="Duplicate", shortcut="Ctrl+D", callback=self.duplicate)
                dpg.add_menu_item(label="Delete", shortcut="Del", callback=self.delete_selection)
                dpg.add_separator()
                dpg.add_menu_item(label="Select All", shortcut="Ctrl+A", callback=self.select_all)
                dpg.add_menu_item(label="Add comment around the selection", shortcut="C", callback=self.add_comment)
            with dpg.menu(label="Run"):
                dpg.add_menu_item(label="Run", shortcut="F5", callback=self.ctl.run)
                dpg.add_menu_item(label="Stop", callback=self.ctl.stop)
                dpg.add_separator()
                dpg.add_menu_item(label="Render...", shortcut="Ctrl+R", callback=lambda: self.render.ask())
            with dpg.menu(label="View"):
                dpg.add_menu_item(label="Fit all", shortcut="Home / F", callback=lambda: self.canvas.fit_all())
                dpg.add_menu_item(label="Zoom in", shortcut="Ctrl+= / wheel", callback=lambda: self.canvas.zoom_by(1.25))
                dpg.add_menu_item(label="Zoom out", shortcut="Ctrl+- / wheel", callback=lambda: self.canvas.zoom_by(0.8))
                dpg.add_menu_item(label="Actual size", shortcut="Ctrl+0", callback=lambda: self.canvas.reset_zoom())
                dpg.add_menu_item(label="Show / hide the compiled plan",
                                  callback=lambda: self.timing.show_plan(not dpg.get_value(self.timing.plan_toggle)))
            with dpg.menu(label="Help"):
                dpg.add_menu_item(label="Keyboard and mouse", shortcut="F1", callback=self.show_shortcuts)

    # ---- model -> view ---------------------------------------------------------------------------
    def _on_change(self, kind: str) -> None:
        if kind in ("structure", "file", "layout"):
            self.canvas.sync()
        if kind in ("structure", "file"):  # links selected before may be others now
            self.canvas.clear_link_selection()
        if kind == "file":  # a graph opened: all of it on screen
            self.canvas.fit_all()
        if kind in ("structure", "file", "selection"):
            sel = self.ctl.selection
            self.inspector.show(sel[0] if len(sel) == 1 else None)
            self.canvas.refresh_looks(force=True)
        if kind == "param":
            self.inspector.refresh()
            self.canvas.refresh_looks(force=True)
        if kind == "record":
            self.canvas.refresh_looks(force=True)
        if kind == "run" and not self.ctl.running:
            self.timing.clear()
            self.preview.clear()
        if kind == "file":
            self._recent_menu()
        self._title()
        self._status()

    def _title(self) -> None:
        doc = self.ctl.doc
        name = doc.path.name if doc.path else "untitled"
        dpg.set_viewport_title(f"{'*' if doc.dirty else ''}{name} - {self.title}")
        dpg.configure_item(self.undo_item, enabled=doc.can_undo)
        dpg.configure_item(self.redo_item, enabled=doc.can_redo)

    def _recent_menu(self) -> None:
        dpg.delete_item(self.recent_menu, children_only=True)
        for path in self.ctl.doc.recent or []:
            dpg.add_menu_item(label=path, parent=self.recent_menu, user_data=path,
                              callback=lambda s, a, u: self.guard_unsaved(lambda: self.ctl.open(u)))
        if not self.ctl.doc.recent:
            dpg.add_menu_item(label="(none)", parent=self.recent_menu, enabled=False)

    def _apply_fix(self, sender, app_data, endpoint: str) -> None:
        self.ctl.apply_fix(endpoint)

    def _status(self) -> None:
        stats = self.ctl.stats()
        if self.ctl.running:
            dpg.set_value(self.status_run, "LIVE")
            dpg.configure_item(self.status_run, color=(90, 220, 110))
        else:
            dpg.set_value(self.status_run, "stopped")
            dpg.configure_item(self.status_run, color=(160, 160, 160))
        ui_fps = self.ui_fps()
        if stats is not None and self.ctl.running:
            sound = ""
            if stats.sound:  # blocks a sound device could not give or take in time
                lost = [f"{node} {n} {what}" for node, c in stats.sound.items() for what, n in c.items() if n]
                sound = f"sound lost: {', '.join(lost) if lost else 'none'}  "
            dpg.set_value(self.status_fps, f"| pipeline {stats.fps:5.1f} fps  {stats.frame_ms:6.1f} ms/frame  "
                                           f"dropped {stats.dropped}  {sound}{async_status(stats)}"
                                           f"| UI {ui_fps:4.0f} fps |")
        else:
            dpg.set_value(self.status_fps, f"| UI {ui_fps:4.0f} fps |")
        node_errors = self.ctl.node_errors()
        n_err = sum(len(v) for v in node_errors.values())
        graph_wide = [e for e in self.ctl.doc.errors if not e.node]
        n_err += len(graph_wide)
        first = str(graph_wide[0]) if graph_wide else next((m for v in node_errors.values() for m in v), "")
        if len(first) > 90:
            first = first[:87] + "..."
        dpg.set_value(self.status_errors, f"{n_err} error{'s' if n_err > 1 else ''}: {first} |" if n_err
                      else "no errors |")  # the count and why: the first of them
        dpg.configure_item(self.status_errors, color=(235, 80, 70) if n_err else (150, 150, 150))
        fixes = self.ctl.fixes()
        if fixes:
            endpoint, (kind, params) = next(iter(fixes.items()))
            shown = ", ".join(f"{k} {v}" for k, v in params.items())
            dpg.configure_item(self.status_fix, label=f"Fix: insert {kind} ({shown}) before {endpoint}",
                               user_data=endpoint, show=True)
        else:
            dpg.configure_item(self.status_fix, show=False)
        msg = self.ctl.message or (str(graph_wide[0]) if graph_wide else "")
        dpg.set_value(self.status_msg, msg)
        dpg.configure_item(self.status_msg, color=(235, 80, 70) if self.ctl.message_is_error else (220, 220, 220))

    def ui_fps(self) -> float:
        return self.ctl.ui_fps()

    # ---- commands ------------------------------------------------------------------------------
    def add_node(self, kind: str, pos: tuple[float, float]) -> str:
        node_id = self.ctl.add(kind, pos)
        self.canvas.clear_selection()
        if self._link_after_add:  # from a link dropped on empty canvas
            self._link_new_node(node_id)
        return node_id

    def add_at_center(self, kind: str) -> str:
        """From the palette: in the middle of the view, or the nearest place there that is free."""
        x, y = self.canvas.free_spot(self.canvas.visible_center())
        self._link_after_add = None
        return self.add_node(kind, (round(x), round(y)))

    def quick_add_for_link(self, endpoint: str, from_output: bool, port_type: str, where) -> None:
        """A link dropped on empty canvas: the quick add, showing only nodes that can take it;
        the node chosen comes linked."""
        kinds = [k for k, spec in REGISTRY.items()
                 if (any(p.accepts_type(port_type) for p in spec.inputs) if from_output
                     else any(p.type == port_type for p in spec.outputs))]
        self._link_after_add = (endpoint, from_output, port_type)
        self.quick.open(dpg.get_mouse_pos(local=False), where, only=kinds)

    def _link_new_node(self, node_id: str) -> None:
        endpoint, from_output, port_type = self._link_after_add
        self._link_after_add = None
        spec = REGISTRY[self.ctl.node(node_id).type]
        if from_output:
            port = next(p for p in spec.inputs if p.accepts_type(port_type))
            self.ctl.link(endpoint, f"{node_id}.{port.name}")
        else:
            port = next(p for p in spec.outputs if p.type == port_type)
            self.ctl.link(f"{node_id}.{port.name}", endpoint)

    def add_comment(self) -> None:
        """A comment frame around the selected nodes (or in the middle of the view), then its text."""
        boxes = [self.canvas.views[n].box for n in self.ctl.selection if n in self.canvas.views]
        if boxes:
            x0, y0 = min(b.x for b in boxes) - 20, min(b.y for b in boxes) - 40
            x1, y1 = max(b.x + b.w for b in boxes) + 20, max(b.y + b.h for b in boxes) + 20
        else:  # at the pointer when it is on the canvas
            x0, y0 = (self.canvas.to_grid(dpg.get_mouse_pos(local=False)) if self.canvas.hovered()
                      else self.canvas.visible_center())
            x1, y1 = x0 + 300, y0 + 180
        cid = self.ctl.doc.add_comment("", (round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
        self.edit_comment(cid)

    def edit_comment(self, cid: str) -> None:
        edit_comment(self.ctl, cid, self.typing_items)

    def toggle_record(self, node_id: str, on: bool) -> None:
        """The Record toggle on a file sink: a recording replaces an existing file only when the
        user says so."""
        existing = self.ctl.record(node_id, on)
        if existing:
            dialogs.ask("Replace the file?",
                        f"{existing} exists. Recording {node_id} replaces it when the recording stops.",
                        [("Replace", lambda: self.ctl.record(node_id, True, replace=True)),
                         ("Cancel", lambda: None)])
        if node_id in self.canvas.views:  # the toggle shows the model's state, whatever was clicked
            self.canvas.views[node_id].look = ()
        self.canvas.refresh_looks(force=True)

    def delete_selection(self) -> None:
        """Delete: the selected nodes, links and comments, one undo step."""
        self.ctl.remove(self.ctl.selection, self.canvas.selected_links(), self.canvas.selected_comments)
        self.canvas.clear_selection()

    def paste(self) -> None:
        if self.ctl.clipboard:
            self._paste_count += 1
            self.ctl.paste((40.0 * self._paste_count, 40.0 * self._paste_count))
            self.canvas.clear_selection()

    def duplicate(self) -> None:
        self.ctl.duplicate()
        self.canvas.clear_selection()

    def save(self) -> None:
        path = self.ctl.doc.path
        if path is None or is_shipped_preset(path):  # a shipped preset is a template: save a copy
            self.save_as_dialog()
        else:
            self.ctl.save()

    def save_as_dialog(self) -> None:
        path = self.ctl.doc.path
        if path is None:
            default = os.path.join(os.getcwd(), "untitled.json")
        elif is_shipped_preset(path):
            default = os.path.join(os.getcwd(), os.path.basename(path))
        else:
            default = str(path)
        dialogs.ask_file("Save graph as", GRAPH_FILES, lambda p: self.ctl.save(p), default=default, save=True)

    def open_dialog(self) -> None:
        def pick() -> None:
            default = str(self.ctl.doc.path) if self.ctl.doc.path else str(DEFAULT_PRESET)
            dialogs.ask_file("Open graph", GRAPH_FILES, self.ctl.open, default=default)

        self.guard_unsaved(pick)

    def guard_unsaved(self, then) -> None:
        """Run `then` now, or after asking what to do with unsaved changes."""
        if not self.ctl.doc.dirty:
            then()
            return

        def save_then() -> None:
            if self.ctl.doc.path is None:
                self.save_as_dialog()
            elif self.ctl.save():
                then()

        dialogs.ask("Unsaved changes", "The graph has unsaved changes.",
                    [("Save", save_then), ("Discard", then), ("Cancel", lambda: None)])

    def request_close(self) -> None:
        if dialogs.current:  # a question is open already (e.g. this one): let the user answer it
            return

        def close() -> None:
            self.ctl.doc.discard_recovery()
            self.closing = True

        self.guard_unsaved(close)

    def offer_recovery(self, then=lambda: None) -> None:
        """Ask whether to load the autosaved graph; `then()` after the answer (or at once)."""
        if self.ctl.doc.recovery() is None:
            then()
            return

        def restore() -> None:
            self.ctl.doc.open_recovery()
            then()
            self.ctl.say("recovered the autosaved graph (unsaved)")

        def discard() -> None:
            self.ctl.doc.discard_recovery()
            then()

        dialogs.ask("Recover unsaved work?",
                    "fusegraph did not close cleanly last time and autosaved a graph with unsaved changes.",
                    [("Recover", restore), ("Discard", discard)])

    # ---- input -----------------------------------------------------------------------------------
    def typing(self) -> bool:
        return any(dpg.does_item_exist(i) and dpg.is_item_active(i) for i in self.typing_items)

    def _on_ctrl(self, sender=None, app_data=None, user_data=None) -> None:
        self._ctrl_frame = self.frames

    def _on_key(self, sender, app_data, key) -> None:
        self._keys.append(key)  # handled after this frame's other callbacks (a Ctrl press among them)

    def ctrl_down(self) -> bool:
        """Ctrl is held, or was pressed in this or the last frame and no key has taken that press
        yet (a fast Ctrl+key can press and release Ctrl between two of our looks at it)."""
        return (dpg.is_key_down(dpg.mvKey_ModCtrl) or dpg.is_key_down(dpg.mvKey_LControl)
                or dpg.is_key_down(dpg.mvKey_RControl) or self.frames - self._ctrl_frame <= 1)

    def handle_key(self, key: int, ctrl: bool | None = None) -> None:
        """A key press: shortcuts (ctrl: None = as the keyboard says)."""
        if key == dpg.mvKey_Escape:  # closes what is open: the quick add, a question, a menu
            self.quick.close()
            if not dialogs.cancel():
                dialogs.close_popups()
            return
        if key == dpg.mvKey_Return:
            if self.quick.shown:
                self.quick.add_first()
            return
        if self.typing() or dialogs.current:
            return
        if self.ctrl_down() if ctrl is None else ctrl:
            # One Ctrl press makes one shortcut: Dear PyGui may take Ctrl's release and the next
            # key (Ctrl+V, then Delete) in the frame after the V, where Delete is no shortcut.
            self._ctrl_frame = -10
            action = {dpg.mvKey_C: lambda: self.ctl.copy(), dpg.mvKey_V: self.paste, dpg.mvKey_D: self.duplicate,
                      dpg.mvKey_Z: self.ctl.undo, dpg.mvKey_Y: self.ctl.redo, dpg.mvKey_S: self.save,
                      dpg.mvKey_O: self.open_dialog, dpg.mvKey_N: lambda: self.guard_unsaved(self.ctl.new),
                      dpg.mvKey_A: self.select_all, dpg.mvKey_Q: self.request_close,
                      dpg.mvKey_R: self.render.ask, dpg.mvKey_0: self.canvas.reset_zoom,
                      KEY_EQUAL: lambda: self.canvas.zoom_by(1.25), dpg.mvKey_Minus: lambda: self.canvas.zoom_by(0.8)}.get(key)
            if action:
                action()
            return
        if key in (dpg.mvKey_Delete, dpg.mvKey_Back):
            self.delete_selection()
        elif key in (dpg.mvKey_Tab, dpg.mvKey_Spacebar) and self.canvas.hovered() and not self.quick.shown:
            self.open_quick_add()
        elif key == dpg.mvKey_F1:
            self.show_shortcuts()
        elif key in (dpg.mvKey_Home, dpg.mvKey_F):
            self.canvas.fit_all()
        elif key in (dpg.mvKey_Add, dpg.mvKey_Subtract):
            self.canvas.zoom_by(1.25 if key == dpg.mvKey_Add else 0.8)
        elif key == dpg.mvKey_C and self.canvas.hovered():
            self.add_comment()
        elif key == dpg.mvKey_F5:
            self.ctl.stop() if self.ctl.running else self.ctl.run()

    def show_shortcuts(self) -> None:
        width = max(len(k) for k, _ in SHORTCUTS) + 2
        dialogs.ask("Keyboard and mouse", "\n".join(f"{k:<{width}}{what}" for k, what in SHORTCUTS),
                    [("Close", lambda: None)], width=620)

    def select_all(self) -> None:
        self.ctl.select([n.id for n in self.ctl.graph.nodes])
        self.canvas.clear_selection()

    def _on_right_click(self, sender=None, app_data=None, user_data=None) -> None:
        if self.canvas.hovered() and self.canvas.hovered_node() is None and not dialogs.current:
            self.open_quick_add()

    def open_quick_add(self) -> None:
        mouse = dpg.get_mouse_pos(local=False)
        self._link_after_add = None
        self.quick.open(mouse, self.canvas.to_grid(mouse))

    # ---- the loop --------------------------------------------------------------------------------
    def step(self) -> None:
        """One UI frame now (it does not wait for an event): draw, run the callbacks it raised,
        update live views."""
        self._frame()

    def turn(self) -> int:
        """One turn of the window's loop: the next frame, drawn when something changed (input, a
        new live frame, the pacer's tick) and no sooner than the display's next refresh."""
        self.pacer.before_frame()
        self._frame()
        self.pacer.after_frame()
        return 1

    def _frame(self) -> None:
        dpg.render_dearpygui_frame()
        self._notice_input(self._run_callbacks())
        dialogs.heal()
        self.render.poll()
        self.frames += 1
        self.canvas.poll()
        self.ctl.tick()
        self.preview.update()
        self.canvas.refresh_looks()
        if self.ctl.running:
            self.timing.update(self.ctl.stats(), [n.id for n in self.ctl.graph.nodes])
        if time.perf_counter() >= self._status_at:  # a few times a second, however often it draws
            self._status_at = time.perf_counter() + 0.25
            self._status()
        if self.probe:
            self.write_probe()

    def _notice_input(self, callbacks: int) -> None:
        """Input keeps the window drawing at the display's rate for a moment (Dear PyGui settles
        hovers, popups and drags over several frames); typing, the quick add and a question keep
        it drawing (a field takes the keyboard a frame after it is asked to)."""
        mouse = tuple(dpg.get_mouse_pos(local=False))
        if (mouse != self._mouse or callbacks
                or any(dpg.is_mouse_button_down(b) for b in (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right,
                                                              dpg.mvMouseButton_Middle))
                or self.typing() or self.quick.shown or dialogs.current or dialogs.file_dialogs):
            self.pacer.keep_awake()
        self._mouse = mouse

    def _run_callbacks(self) -> int:
        """Dear PyGui's queued callbacks, each given as many of (sender, app_data, user_data) as it
        takes, then the keys pressed; returns how many there were."""
        jobs = dpg.get_callback_queue() or []
        for job in jobs:
            fn = job[0]
            if fn is None:
                continue
            n = self._arity.get(fn)
            if n is None:
                try:
                    n = self._arity[fn] = min(3, len(inspect.signature(fn).parameters))
                except (TypeError, ValueError):
                    n = 3
            self._guarded(fn, *job[1:1 + n])
        keys, self._keys = self._keys, []
        for key in keys:
            self._guarded(self.handle_key, key)
        return len(jobs) + len(keys)

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # a bug in one action must not take the window down
            log.exception("callback %r failed", fn)
            self.ctl.say(f"internal error in {getattr(fn, '__name__', fn)}; see the log", error=True)

    def run(self) -> int:
        while dpg.is_dearpygui_running() and not self.closing:
            self.turn()
        self.close()
        return 0

    def close(self) -> None:
        self.pacer.close()
        self.render.close()
        self.ctl.shutdown()
        dpg.destroy_context()
        sys.setswitchinterval(self._switch_interval)

    # ---- test hook -------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        doc = self.ctl.doc
        return {
            "frame": self.frames,
            "viewport": list(dpg.get_viewport_pos()),
            **self.canvas.geometry(),
            "graph": doc.graph.model_dump(mode="json", by_alias=True),
            "palette": self.palette.geometry(), "inspector": self._inspector_geometry(), "preview_caption": dpg.get_value(self.preview.caption),
            "errors_text": dpg.get_value(self.status_errors), "live_frame": (self.ctl.stats() or _NoStats).frame,
            "selection": list(self.ctl.selection), "selected_links": self.canvas.selected_links(),
            "selected_comments": sorted(self.canvas.selected_comments),
            "can_undo": doc.can_undo, "dirty": doc.dirty,
            "status": self.ctl.message, "modal": dialogs.current_title[:], "buttons": dialogs.button_rects(), "mouse": list(dpg.get_mouse_pos(local=False)),
            "quick_add": self.quick.shown,
            "text_active": self.text_active(),  # a field takes the keyboard a frame after it shows
            "quick_items": self.quick.matches("") if self.quick.shown else [], "running": self.ctl.running, "ui_fps": self.ctl.ui_fps(),
            "path": str(doc.path) if doc.path else None, **self._menu_geometry(),
            "render": self.render.probe(),
            "file_dialog": dialogs.file_dialogs[0].geometry() if dialogs.file_dialogs else None,
        }

    def text_active(self) -> bool:
        """A text field has the keyboard (one of the window's, or the file dialog's)."""
        field = dialogs.file_dialogs[0].field if dialogs.file_dialogs else None
        return self.typing() or bool(field and dpg.does_item_exist(field) and dpg.is_item_active(field))

    def _inspector_geometry(self) -> dict:
        out = {}
        for name, (item, _) in self.inspector.items.items():
            state = dpg.get_item_state(item) if dpg.does_item_exist(item) else {}
            if "rect_min" in state and state["rect_max"][0] > state["rect_min"][0]:  # drawn
                (x0, y0), (x1, y1) = state["rect_min"], state["rect_max"]
                out[name] = [(x0 + x1) / 2, (y0 + y1) / 2]
        return out

    def _menu_geometry(self) -> dict:
        """Where each menu's label is on screen, and which menus are open (drawn as a popup)."""
        where, open_ = {}, []
        for menu in dpg.get_item_children(self.menu_bar, 1):
            label = dpg.get_item_label(menu)
            state = dpg.get_item_state(menu)
            x, y = state.get("pos", (0, 0))
            where[label] = [x + 14, y + 9]
            if state.get("rect_size", [0, 0])[0] > 0:
                open_.append(label)
        return {"menus": where, "menus_open": open_}

    def write_probe(self) -> None:
        request = Path(f"{self.probe}.shot")  # holds a PNG path: the test wants a screenshot there
        if request.exists():
            target = request.read_text().strip()
            request.unlink()
            dpg.output_frame_buffer(file=target)
        now = time.monotonic()
        if now - self._probe_at < 0.1:
            return
        self._probe_at = now
        tmp = f"{self.probe}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.snapshot(), f)
        os.replace(tmp, self.probe)


def main(preset: str | None = None) -> int:
    path = Path(preset) if preset else DEFAULT_PRESET
    app = EditorApp(probe=os.environ.get("FUSEGRAPH_EDITOR_PROBE"))
    ctl = app.ctl
    if path.exists():
        ctl.open(path)
    else:
        ctl.say(f"{path}: no such file; starting with an empty graph", error=True)
    def start() -> None:  # after the recovery question, on the graph it chose
        if os.environ.get("FUSEGRAPH_EDITOR_RUN", "1") != "0" and not ctl.problems():
            ctl.run()

    app.offer_recovery(start)
    return app.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
