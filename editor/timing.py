"""Timing overlays: heat colours against the frame budget, fused-pass bands, the stacked
frame-time plot and the compiled plan text.

The helpers at the top are plain functions of LiveStats (tested without a window); the
TimingPanel below draws them with Dear PyGui.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import dearpygui.dearpygui as dpg

BUDGET_MS = 1000.0 / 30.0  # one frame at 30 fps
GREEN, YELLOW, RED = (70, 170, 90), (200, 170, 40), (210, 70, 50)
BAND_COLOURS = [(90, 160, 255), (220, 120, 255), (60, 200, 200), (255, 150, 70), (170, 220, 90), (255, 110, 160)]


def heat(ms: float, budget: float = BUDGET_MS) -> tuple[str, tuple[int, int, int]]:
    """('green' | 'yellow' | 'red', colour) by the share of the frame budget a node takes."""
    share = ms / budget if budget > 0 else 0.0
    if share < 0.10:
        return "green", GREEN
    if share > 0.50:
        return "red", RED
    return "yellow", YELLOW


def age_text(frames: int) -> str:
    """A node run beside the frame (live): the age of the output the frame used."""
    return f"async: output {frames} frame{'' if frames == 1 else 's'} old"


def async_status(stats) -> str:
    """The status bar's word on nodes run beside the frame: their outputs' ages and the time each
    takes on its thread, and how far the picture is held back to match (sync: delay_video)."""
    if not stats.ages:
        return ""
    parts = [f"{n} {age} old, {stats.async_ms.get(n, 0.0):.1f} ms on its thread" for n, age in stats.ages.items()]
    held = f", video held back {stats.held_back}" if stats.held_back else ""
    return f"async: {'; '.join(parts)}{held}  "


@dataclass(frozen=True)
class Band:
    """A GPU pass that holds several nodes (fused): they share a colour and a badge."""

    index: int  # 1-based, in plan order among fused passes
    name: str
    nodes: tuple[str, ...]
    ms: float
    colour: tuple[int, int, int]


def fused_bands(passes: list[tuple[str, list[str], float]]) -> dict[str, list[Band]]:
    """node -> the fused passes it is part of (a pass with one node is not a band)."""
    out: dict[str, list[Band]] = {}
    count = 0
    for name, nodes, ms in passes:
        members = tuple(dict.fromkeys(nodes))  # a node may add several stages to one pass
        if len(members) < 2:
            continue
        count += 1
        band = Band(count, name, members, ms, BAND_COLOURS[(count - 1) % len(BAND_COLOURS)])
        for n in members:
            out.setdefault(n, []).append(band)
    return out


def pass_split(band: Band, passes: list[tuple[str, list[str], float]],
               node_ms: dict[str, float]) -> list[tuple[str, float]]:
    """How a fused pass's time divides among its members (the engine splits it by each stage's
    relative per-pixel cost). A member that runs in no other pass has all its time here; what is
    left goes to members that also run elsewhere, in proportion to their time per pass."""
    runs = {n: sum(1 for _, nodes, _ in passes if n in nodes) for n in band.nodes}
    alone = {n: min(node_ms.get(n, 0.0), band.ms) for n in band.nodes if runs[n] == 1}
    rest = max(0.0, band.ms - sum(alone.values()))
    shared = {n: node_ms.get(n, 0.0) / max(1, runs[n]) for n in band.nodes if runs[n] != 1}
    total = sum(shared.values())
    return [(n, alone[n] if n in alone else (rest * shared[n] / total if total > 0 else rest / len(shared)))
            for n in band.nodes]


def split_text(bands: list[Band], passes: list[tuple[str, list[str], float]], node_ms: dict[str, float]) -> str:
    """The tooltip lines on the fused passes a node is in."""
    lines = []
    for b in bands:
        parts = pass_split(b, passes, node_ms)
        whole = sum(ms for _, ms in parts) or 1.0
        shares = ", ".join(f"{n} ~{ms:.2f} ms ({100 * ms / whole:.0f}%)" for n, ms in parts)
        lines.append(f"fused pass #{b.index} ({b.name}): {b.ms:.2f} ms last frame, one GPU pass for "
                     f"{', '.join(b.nodes)};\n  split by each stage's per-pixel cost: {shares}")
    return "\n".join(lines)


def plan_notes(plan_text: str, node_id: str) -> list[str]:
    """What the plan says of a node's stages in brackets (e.g. neural_net's backend and why)."""
    found = re.findall(rf"(?<![\w-]){re.escape(node_id)}\.[^\s\[]+ \[([^\]]+)\]", plan_text)
    return list(dict.fromkeys(found))


def stacked(history: list[dict[str, float]], order: list[str]) -> tuple[list[float], list[tuple[str, list[float], list[float]]]]:
    """x (frames, newest at 0) and per node its band (lower, upper) of the stacked frame time."""
    n = len(history)
    xs = [float(i - n + 1) for i in range(n)]
    names = [k for k in order if any(k in h for h in history)]
    names += sorted({k for h in history for k in h} - set(names))
    base = [0.0] * n
    series = []
    for name in names:
        top = [b + h.get(name, 0.0) for b, h in zip(base, history)]
        series.append((name, base, top))
        base = top
    return xs, series


class TimingPanel:
    """The stacked frame-time plot (one band per node, newest frame at the right) and the plan."""

    def __init__(self, parent: int | str, height: int = 170):
        self.series: dict[str, int] = {}
        self.last_frame = -1
        with dpg.group(parent=parent):
            with dpg.plot(label="frame time (ms), stacked by node; one frame in 4, newest at the right", height=height - 24,
                          width=-1, no_menus=True, no_box_select=True) as self.plot:
                dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthWest, horizontal=True)
                self.x_axis = dpg.add_plot_axis(dpg.mvXAxis, label="frame", no_gridlines=True)
                self.y_axis = dpg.add_plot_axis(dpg.mvYAxis, label="ms")
                self.budget = dpg.add_inf_line_series([BUDGET_MS], horizontal=True, label="33 ms budget",
                                                      parent=self.y_axis)
            self.plan_toggle = dpg.add_checkbox(label="show the compiled plan (passes, members, sizes, "
                                                      "CPU<->GPU bytes)", callback=self._toggle)
        with dpg.window(label="Compiled plan", show=False, width=640, height=400, pos=[16, 340],
                        no_saved_settings=True, on_close=lambda: self.show_plan(False)) as self.plan_window:
            self.plan_text = dpg.add_text("(not running)")
        dpg.set_axis_limits(self.y_axis, 0.0, 2 * BUDGET_MS)
        self._bare(self.plot)

    @staticmethod
    def _bare(plot: int | str) -> None:
        """The plot paints no background of its own over the window's (a blended fill is a shaded
        pass over its pixels on software GL: 0.7 CPU-ms of a UI frame)."""
        with dpg.theme() as theme:
            with dpg.theme_component(dpg.mvAll):
                for col in (dpg.mvPlotCol_PlotBg, dpg.mvPlotCol_FrameBg):
                    dpg.add_theme_color(col, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
        dpg.bind_item_theme(plot, theme)

    def _toggle(self, sender=None, value=None, user_data=None) -> None:
        dpg.configure_item(self.plan_window, show=bool(dpg.get_value(self.plan_toggle)))

    def show_plan(self, show: bool) -> None:
        dpg.set_value(self.plan_toggle, show)
        self._toggle()

    def update(self, stats, order: list[str]) -> None:
        if stats is None:
            return
        if dpg.get_value(self.plan_toggle):
            dpg.set_value(self.plan_text, stats.plan_text or "(compiling...)")
        if stats.frame == self.last_frame or not stats.history:
            return
        self.last_frame = stats.frame
        xs, series = stacked(stats.history, order)
        names = {name for name, _, _ in series}
        for gone in set(self.series) - names:
            dpg.delete_item(self.series.pop(gone))
        peak = 0.0
        for name, lower, upper in series:
            if name not in self.series:
                self.series[name] = dpg.add_shade_series(xs, lower, y2=upper, label=name, parent=self.y_axis)
            else:
                dpg.set_value(self.series[name], [xs, lower, upper, []])
            peak = max([peak, *upper])
        dpg.set_axis_limits(self.x_axis, xs[0] if xs else -1.0, 0.0)
        dpg.set_axis_limits(self.y_axis, 0.0, max(2 * BUDGET_MS, peak * 1.1))

    def clear(self) -> None:
        for item in self.series.values():
            dpg.delete_item(item)
        self.series.clear()
        self.last_frame = -1
        dpg.set_value(self.plan_text, "(not running)")
