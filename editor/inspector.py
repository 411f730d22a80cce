"""The inspector: the selected node's params, with widgets derived from its Params model.

Bounded numbers -> sliders (ctrl+click types a value, taken on Enter and refused with the reason
when out of range, like a typed field), Literal enums -> combos, bools ->
checkboxes, file paths (json_schema_extra widget "file") -> a text field and a file-dialog
button, 3-float tuples that are colours -> colour pickers, anything else -> input fields.
Hints a node gives as data (json_schema_extra "widget"): "code" a multi-line code box (edits
apply as you type), "json" a list of records as JSON text, "uniforms" one widget per record
another field declares (`declared_by`: name, type, default, min, max), editing a dict of values,
"choices" a combo of what a function of the node's own module lists ("module:function", e.g. the
cameras or sound devices found). The inspector names no node kind.
A slider drag, or a typing session in the code box, is one undo step (a merge key per node and
param, closed on release).
"""
from __future__ import annotations

import importlib
import typing
from dataclasses import dataclass
from typing import Any, Literal

import dearpygui.dearpygui as dpg

from fusegraph.editor import dialogs
from fusegraph.nodes import REGISTRY

CODE_HEIGHT = 200  # pixels of the code box
SLIDER_SPAN_INT = 10_000  # wider integer ranges (seeds, frame counts) get an input field
COLOUR_NAMES = ("color", "colour", "tint", "fill", "background", "key")


@dataclass(frozen=True)
class ParamWidget:
    name: str
    kind: str  # slider_int, slider_float, combo, checkbox, file, color, input_int, input_float, input_floats, input_text
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    file_kind: str = ""
    save: bool = False
    size: int = 0
    doc: str = ""
    # kind "uniforms": the field holding the declarations; a widget made for one declared
    # record: the field holding the values (a dict by record name) it edits
    declared_by: str = ""


def _bounds(info) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", getattr(m, "gt", lo))
        hi = getattr(m, "le", getattr(m, "lt", hi))
    return lo, hi


def _is_colour(name: str, extra: dict, args: tuple) -> bool:
    if extra.get("widget") in ("color", "colour"):
        return True
    lowered = name.lower()
    return len(args) in (3, 4) and all(a is float for a in args) and any(
        lowered == w or lowered.endswith("_" + w) or lowered.startswith(w + "_") for w in COLOUR_NAMES)


def _choices(where: str, args) -> list:
    """The choices a node's own function lists ("fusegraph.nodes...:function"), when the inspector opens."""
    module, _, fn = where.partition(":")
    if not module.startswith("fusegraph.nodes."):
        raise ValueError(f"choices come from a node's module, not {module!r}")
    return list(getattr(importlib.import_module(module), fn)(*args))


def widget_for(name: str, info) -> ParamWidget:
    """The widget for one pydantic field of a Params model."""
    ann = info.annotation
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    doc = info.description or ""
    default = info.default
    if extra.get("widget") in ("code", "json", "uniforms"):
        return ParamWidget(name, str(extra["widget"]), default, declared_by=str(extra.get("declared_by", "")), doc=doc)
    if extra.get("widget") == "file":
        return ParamWidget(name, "file", default, file_kind=str(extra.get("file_kind", "")),
                           save=bool(extra.get("save", False)), doc=doc)
    if extra.get("widget") == "choices":  # the node lists them (devices found now), "module:function"
        found = tuple(_choices(extra["choices"], extra.get("args", ())))
        what = extra.get("found", "choices")
        note = f"{what} found: {', '.join(map(str, found))}" if found else f"no {what} found on this machine"
        choices = ("",) + found if extra.get("blank") else found or (default,)
        return ParamWidget(name, "combo", default, choices=choices, doc=f"{doc}; {note}")
    if origin is Literal:
        return ParamWidget(name, "combo", default, choices=tuple(args), doc=doc)
    if ann is bool:
        return ParamWidget(name, "checkbox", default, doc=doc)
    lo, hi = _bounds(info)
    if ann is int:
        if lo is not None and hi is not None and hi - lo <= SLIDER_SPAN_INT:
            return ParamWidget(name, "slider_int", default, lo, hi, doc=doc)
        return ParamWidget(name, "input_int", default, lo, hi, doc=doc)
    if ann is float:
        if lo is not None and hi is not None:
            return ParamWidget(name, "slider_float", default, lo, hi, doc=doc)
        return ParamWidget(name, "input_float", default, lo, hi, doc=doc)
    if origin is tuple and args and all(a in (int, float) for a in args):
        if _is_colour(name, extra, args):
            return ParamWidget(name, "color", default, size=len(args), doc=doc)
        return ParamWidget(name, "input_floats", default, size=len(args), doc=doc)
    return ParamWidget(name, "input_text", default, doc=doc)


def widgets_for(params_model) -> list[ParamWidget]:
    return [widget_for(name, info) for name, info in params_model.model_fields.items()]


# a declared uniform's type -> (widget kind, components)
UNIFORM_WIDGETS = {"float": ("slider_float", 1), "int": ("slider_int", 1), "bool": ("checkbox", 1),
                   "vec2": ("input_floats", 2), "vec3": ("input_floats", 3), "color": ("color", 3)}


def uniform_widgets(field: str, declared: list) -> list[ParamWidget]:
    """One widget per declared record (name, type, default, min, max) editing `field`'s dict."""
    out = []
    for d in declared:
        kind, size = UNIFORM_WIDGETS.get(getattr(d, "type", "float"), ("input_text", 1))
        out.append(ParamWidget(d.name, kind, d.default, d.min, d.max, size=size, declared_by=field,
                               doc=f"uniform {d.type} {d.name} ({d.min:g}..{d.max:g})"))
    return out


def to_json_text(value: Any) -> str:
    import json

    return json.dumps([v.model_dump() if hasattr(v, "model_dump") else v for v in value], indent=1)


def to_widget(w: ParamWidget, value: Any) -> Any:
    """A model value as the widget holds it."""
    if w.kind == "json":
        return to_json_text(value)
    if w.kind == "code":
        return str(value)
    if w.kind == "combo":
        return str(value)
    if w.kind == "color":
        rgb = [float(v) * 255.0 for v in value]
        return rgb + [255.0] * (4 - len(rgb))
    if w.kind == "input_floats":
        return [float(v) for v in value] + [0.0] * (4 - len(value))
    if w.kind == "input_text":  # e.g. a number where "auto" is the other choice
        return str(value)
    return value


def from_widget(w: ParamWidget, value: Any) -> Any:
    """A widget's value as the model takes it."""
    if w.kind == "json":
        import json

        try:
            return json.loads(value)
        except ValueError:
            return value  # the model refuses it, naming the field
    if w.kind == "slider_int":
        return int(value)
    if w.kind == "combo":
        return next((c for c in w.choices if str(c) == value), value)
    if w.kind == "color":
        return tuple(round(float(v) / 255.0, 4) for v in list(value)[: w.size])
    if w.kind == "input_floats":
        return tuple(float(v) for v in list(value)[: w.size])
    return value


class Inspector:
    def __init__(self, ctl, parent: int | str, typing_items: set):
        self.ctl = ctl
        self.typing_items = typing_items  # text fields: shortcuts are off while one is active
        self.node_id: str | None = None
        self.items: dict[str, tuple[int, ParamWidget]] = {}  # "param" or "param.entry" -> (item, widget)
        self._declared = ""  # the declarations the per-record widgets were built from
        self.typed: set[int] = set()  # sliders holding a typed value not taken yet
        self.dragging = lambda: dpg.is_mouse_button_down(dpg.mvMouseButton_Left)  # else a slider is typed into
        with dpg.group(parent=parent) as self.root:
            self.header = dpg.add_text("Select a node to edit its parameters.", wrap=470)
            self.body = dpg.add_group()
        with dpg.item_handler_registry() as self.release_handler:
            dpg.add_item_deactivated_after_edit_handler(callback=self._deactivated)

    def show(self, node_id: str | None) -> None:
        """Rebuild for `node_id` (None: nothing selected)."""
        self.node_id = node_id
        for item, _ in self.items.values():
            self.typing_items.discard(item)
        self.items.clear()
        dpg.delete_item(self.body, children_only=True)
        node = self.ctl.node(node_id) if node_id else None
        if node is None:
            n = len(self.ctl.selection)
            dpg.set_value(self.header, f"{n} nodes selected." if n > 1 else
                          "Select a node to edit its parameters.")
            return
        spec = REGISTRY[node.type]
        dpg.set_value(self.header, f"{node.id}  ({node.type}, {spec.category}, {spec.role})")
        with dpg.group(parent=self.body):
            doc = dpg.add_text(spec.doc.strip().splitlines()[0], color=(160, 160, 160), wrap=470)
            with dpg.tooltip(doc):
                dpg.add_text(spec.doc.strip())
            for w in widgets_for(spec.Params):
                if w.kind == "uniforms":  # a widget per declared record, each editing one entry
                    self._declared = repr(getattr(node.params, w.declared_by))
                    values = getattr(node.params, w.name)
                    subs = uniform_widgets(w.name, getattr(node.params, w.declared_by))
                    if subs:
                        dpg.add_text(f"{w.name}:", color=(160, 160, 160))
                    for sub in subs:
                        self._add_tooltip(self._add(sub, values.get(sub.name, sub.default)), sub, f"{w.name}.{sub.name}")
                    continue
                self._add_tooltip(self._add(w, getattr(node.params, w.name)), w, w.name)

    def _add_tooltip(self, item: int, w: ParamWidget, key: str) -> None:
        self.items[key] = (item, w)
        if w.doc:
            with dpg.tooltip(item):
                dpg.add_text(w.doc)

    def _add(self, w: ParamWidget, value: Any) -> int:
        cb, user = self._changed, w
        width = 300
        value = to_widget(w, value)
        if w.kind == "slider_int":
            item = dpg.add_slider_int(label=w.name, default_value=value, min_value=int(w.min), max_value=int(w.max),
                                      width=width, callback=cb, user_data=user, clamped=False)
        elif w.kind == "slider_float":
            item = dpg.add_slider_float(label=w.name, default_value=value, min_value=w.min, max_value=w.max,
                                        width=width, callback=cb, user_data=user, clamped=False, format="%.3f")
        elif w.kind == "combo":
            item = dpg.add_combo([str(c) for c in w.choices], label=w.name, default_value=value, width=width,
                                 callback=cb, user_data=user)
        elif w.kind == "checkbox":
            item = dpg.add_checkbox(label=w.name, default_value=bool(value), callback=cb, user_data=user)
        elif w.kind == "color":
            item = dpg.add_color_edit(value, label=w.name, no_alpha=w.size == 3, width=width, callback=cb,
                                      user_data=user)
        elif w.kind in ("code", "json"):  # multi-line text; the code box applies as you type
            item = dpg.add_input_text(label=w.name, default_value=value, multiline=True, tab_input=True,
                                      width=-1 if w.kind == "code" else width + 140,
                                      height=CODE_HEIGHT if w.kind == "code" else 90,
                                      callback=cb if w.kind == "code" else None, user_data=user)
            self.typing_items.add(item)
        elif w.kind == "file":
            with dpg.group(horizontal=True):
                item = dpg.add_input_text(label=w.name, default_value=value, width=width - 40, on_enter=True,
                                          callback=cb, user_data=user)
                dpg.add_button(label="...", callback=self._browse, user_data=(w, item))
            self.typing_items.add(item)
        elif w.kind == "input_int":
            item = dpg.add_input_int(label=w.name, default_value=value, width=width, on_enter=True, callback=cb,
                                     user_data=user)
            self.typing_items.add(item)
        elif w.kind == "input_float":
            item = dpg.add_input_float(label=w.name, default_value=value, width=width, on_enter=True, callback=cb,
                                       user_data=user)
            self.typing_items.add(item)
        elif w.kind == "input_floats":
            item = dpg.add_input_floatx(label=w.name, default_value=value, size=w.size, width=width, on_enter=True,
                                        callback=cb, user_data=user)
            self.typing_items.add(item)
        else:
            item = dpg.add_input_text(label=w.name, default_value=str(value), width=width, on_enter=True,
                                      callback=cb, user_data=user)
            self.typing_items.add(item)
        if w.kind in ("slider_int", "slider_float"):
            self.typing_items.add(item)  # Ctrl+click types into it: no shortcuts meanwhile
        dpg.bind_item_handler_registry(item, self.release_handler)
        return item

    def _commit(self, w: ParamWidget, raw: Any, merge: bool) -> None:
        if self.node_id is None:
            return
        name, value = w.name, from_widget(w, raw)
        if w.declared_by:  # one uniform of a dict of values: the whole dict, that entry changed
            node = self.ctl.node(self.node_id)
            name, value = w.declared_by, {**getattr(node.params, w.declared_by), w.name: value}
        key = (self.node_id, name, w.name) if merge else None
        err = self.ctl.set_param(self.node_id, name, value, merge_key=key)
        if err is not None and w.kind != "code":
            self.refresh()  # refused: the widget shows the model's value again (code keeps what is typed)

    def _changed(self, sender, app_data, user_data: ParamWidget) -> None:
        if user_data.kind in ("slider_int", "slider_float") and not self.dragging():
            self.typed.add(sender)  # typed into the slider (Ctrl+click): taken on Enter, like a field,
            return                  # and refused with the reason when out of range (not clamped)
        merge = user_data.kind in ("slider_int", "slider_float", "color", "code")
        self._commit(user_data, app_data, merge)

    def _deactivated(self, sender, app_data, user_data=None) -> None:
        item = app_data
        w = next((w for i, w in self.items.values() if i == item), None)
        if w is None:
            return
        if w.kind in ("slider_int", "slider_float", "color", "code"):
            self.ctl.end_merge()  # the drag (or the typing) is over: one undo step
            if item in self.typed:
                self.typed.discard(item)
                self._commit(w, dpg.get_value(item), merge=False)
        else:  # a typed value also commits when the field loses focus
            self._commit(w, dpg.get_value(item), merge=False)

    def _browse(self, sender, app_data, user_data) -> None:
        w, item = user_data
        node_id = self.node_id
        exts = {"image": (".png", ".jpg", ".jpeg"), "video": (".mp4", ".mov", ".mkv", ".avi", ".webm"),
                "model": (".onnx",)}.get(w.file_kind, ())

        def chosen(path: str) -> None:
            if node_id is not None and self.ctl.node(node_id) is not None:
                self.ctl.set_param(node_id, w.name, path)

        dialogs.ask_file(f"{'Save' if w.save else 'Open'} {w.file_kind or 'file'} for {node_id}.{w.name}",
                         exts, chosen, default=dpg.get_value(item))

    def refresh(self) -> None:
        """Show the model's values (after undo, or a refused edit); a widget being dragged is left alone."""
        node = self.ctl.node(self.node_id) if self.node_id else None
        if node is None:
            return
        declared = next((repr(getattr(node.params, w.declared_by)) for _, w in self.items.values() if w.declared_by),
                        None)
        if declared is not None and declared != self._declared:  # other uniforms: other widgets
            self.show(self.node_id)
            return
        for key, (item, w) in self.items.items():
            if dpg.is_item_active(item):
                continue
            field, _, entry = key.partition(".")
            value = getattr(node.params, field)
            if entry:
                value = value.get(entry, w.default)
            dpg.set_value(item, to_widget(w, value))
