"""The small window where a comment's text is written (C adds a comment, a double-click on its
title edits it); Enter, OK or closing the window keeps the text."""
from __future__ import annotations

import dearpygui.dearpygui as dpg


def edit_comment(ctl, cid: str, typing_items: set) -> int | None:
    """Open the window for comment `cid` at the pointer; returns its text field (None: no such comment)."""
    comment = next((c for c in ctl.graph.comments if c.id == cid), None)
    if comment is None:
        return None

    def done(sender=None, app_data=None, user_data=None) -> None:
        if dpg.does_item_exist(win):
            ctl.doc.set_comment_text(cid, dpg.get_value(field))
            typing_items.discard(field)
            dpg.delete_item(win)

    mx, my = dpg.get_mouse_pos(local=False)
    with dpg.window(label=f"Comment {cid}", no_collapse=True, no_saved_settings=True, width=360,
                    pos=[int(mx), int(my)], on_close=lambda: done()) as win:
        field = dpg.add_input_text(default_value=comment.text, width=-1, on_enter=True, callback=done,
                                   hint="what this group does (Enter)")
        dpg.add_button(label="OK", callback=done)
    typing_items.add(field)  # shortcuts wait while it is typed into
    dpg.focus_item(field)
    return field
