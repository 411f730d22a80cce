"""Run > Render...: the checks before a render, the question before it replaces files, and the
window with its progress bar, ETA and Cancel, over a RenderJob (editor/render.py)."""
from __future__ import annotations

import os

import dearpygui.dearpygui as dpg

from fusegraph.editor import dialogs
from fusegraph.editor.render import RenderJob
from fusegraph.runtime.outputs import output_param, output_paths


def duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


class RenderWindow:
    def __init__(self, ctl):
        self.ctl = ctl
        self.job: RenderJob | None = None
        self.window: int | None = None

    def ask(self) -> None:
        """Render the document's graph if it can be: every file sink has a file; files that
        exist are replaced only when the user says so."""
        if self.job is not None:
            return
        graph = self.ctl.graph
        problems = self.ctl.problems()
        if problems:
            self.ctl.say(f"cannot render: {problems[0]}", error=True)
            return
        targets = output_paths(graph)
        missing = [n.id for n in graph.nodes if output_param(n.type) and n.id not in targets]
        if missing:
            self.ctl.say(f"cannot render: {missing[0]} has no file chosen", error=True)
            return
        if not targets:
            self.ctl.say("nothing to render: the graph has no file sink (video_out, image_out, audio_out)",
                         error=True)
            return
        existing = [t for t in targets.values() if "{" not in t and os.path.exists(t)]
        if existing:
            shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
            dialogs.ask("Replace files?", f"Rendering replaces {shown} when it is done (Cancel keeps them).",
                        [("Replace", self.start), ("Cancel", lambda: None)])
        else:
            self.start()

    def start(self) -> None:
        self.job = RenderJob(self.ctl.graph, self.ctl.search_dirs()).start()
        vw, vh = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
        with dpg.window(label="Render", modal=True, no_open_over_existing_popup=False, no_close=True,
                        no_collapse=True, no_resize=True, width=460, pos=[max(0, (vw - 460) // 2), vh // 2 - 80],
                        no_saved_settings=True) as self.window:
            self.text = dpg.add_text("starting...")
            self.bar = dpg.add_progress_bar(default_value=0.0, width=-1)
            self.cancel_button = dpg.add_button(label="Cancel", width=130, callback=self.cancel)

    def cancel(self, sender=None, app_data=None, user_data=None) -> None:
        if self.job is not None:
            self.job.cancel()

    def poll(self) -> None:
        """Once per UI frame: the progress; when it is over, the window goes and the status says how."""
        if self.job is None:
            return
        p = self.job.progress()
        if p.total:
            eta = f"   ETA {duration(p.eta)}" if p.eta is not None else ""
            dpg.set_value(self.text, f"frame {p.done} of {p.total}{eta}")
            dpg.set_value(self.bar, p.done / p.total)
        if p.finished:
            self.job = None
            dpg.delete_item(self.window)
            self.window = None
            self.ctl.say(p.message, error=p.state == "failed")

    def close(self) -> None:
        """Quitting cancels a render: nothing half written is published."""
        if self.job is not None:
            self.job.cancel()
            self.job.wait()

    def probe(self) -> dict | None:
        if self.job is None:
            return None
        p = self.job.progress()
        state = dpg.get_item_state(self.cancel_button)
        cancel = [*state["rect_min"], *state["rect_max"]] if "rect_min" in state else None
        return {"state": p.state, "done": p.done, "total": p.total, "cancel": cancel}
