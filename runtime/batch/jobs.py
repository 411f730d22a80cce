"""Batch planning: the inputs a user names, which graph param each one replaces, what each writes.

A job is one input file: the graph with its file source's path set to the input and its file
sink's path set to a staging file inside the output folder (worker.py moves it into place).
Everything here is checked before any job starts, so a mistake costs nothing (exit 2).
"""
from __future__ import annotations

import glob
import os
import string
from dataclasses import dataclass, field
from typing import Any

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import NodeError, OpenContext
from fusegraph.runtime.graph import Graph

# What a folder given as INPUT contributes, by the kind of file its source reads.
KIND_EXTS = {
    "video": (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts"),
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"),
    "audio": (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".mp4", ".m4v", ".mov", ".mkv", ".webm"),
}
NAME_FIELDS = ("stem", "ext", "name", "input_ext", "parent")
STAGING = ".fusegraph-batch"  # inside the output folder: where jobs write before the final rename


class PlanError(Exception):
    """A user mistake found while planning (the CLI reports it and exits 2)."""


@dataclass
class Job:
    index: int
    input: str  # absolute path
    output: str  # absolute path
    inputs: list[tuple[str, str]]  # (node, param) that take the input path
    output_at: tuple[str, str]  # (node, param) that takes the output path
    search_dirs: tuple[str, ...] = ()
    assets: dict[str, str] = field(default_factory=dict)  # "node.param" -> absolute file path

    @property
    def staging(self) -> str:
        """This job's own folder for its output while it is written (cleared at each attempt)."""
        return os.path.join(os.path.dirname(self.output), STAGING, f"{self.index}")

    @property
    def staged(self) -> str:
        return os.path.join(self.staging, os.path.basename(self.output))


def file_params(graph: Graph, save: bool) -> list[tuple[str, str]]:
    """(node, param) of every file path param: inputs of sources (save=False) or outputs of sinks."""
    out = []
    for node in graph.nodes:
        spec = REGISTRY[node.type]
        if spec.role != ("sink" if save else "source"):
            continue
        for name, f in spec.Params.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            if extra.get("widget") == "file" and bool(extra.get("save")) == save:
                out.append((node.id, name))
    return out


def endpoint(graph: Graph, text: str, save: bool, flag: str) -> tuple[str, str]:
    """--input/--output NODE.PARAM, checked against the graph."""
    node, dot, param = text.partition(".")
    if not dot or graph.node(node) is None:
        raise PlanError(f"{flag} '{text}': expected NODE.PARAM naming a node of the graph")
    if (node, param) not in file_params(graph, save):
        choices = ", ".join(f"{n}.{p}" for n, p in file_params(graph, save)) or "none"
        raise PlanError(f"{flag} '{text}': not a file {'output' if save else 'input'} param "
                        f"(the graph's: {choices})")
    return node, param


def the_one(graph: Graph, save: bool, flag: str) -> tuple[str, str]:
    """The graph's single file source (or sink); with none or several the user must choose."""
    found = file_params(graph, save)
    what = "file sink (video_out, image_out, audio_out)" if save else "file source (video, image, audio_file)"
    if not found:
        raise PlanError(f"the graph has no {what} for the batch to {'write' if save else 'read'}")
    if len(found) > 1:
        raise PlanError(f"the graph has several {what.split(' (')[0]}s ({', '.join(f'{n}.{p}' for n, p in found)}): "
                        f"choose the one each {'output' if save else 'input'} replaces with {flag} NODE.PARAM")
    return found[0]


def expand_inputs(items: list[str], kinds: set[str]) -> list[str]:
    """Files, folders (their media files, not recursive) and globs -> absolute paths, in order, once."""
    exts = tuple({e for k in kinds for e in KIND_EXTS.get(k, ())})
    out: dict[str, str] = {}
    for item in items:
        if not os.path.exists(item) and any(c in item for c in "*?["):
            matches = [m for m in sorted(glob.glob(item, recursive=True)) if os.path.isfile(m)]
            if not matches:
                raise PlanError(f"input '{item}' matches no file")
        elif os.path.isdir(item):
            matches = [os.path.join(item, n) for n in sorted(os.listdir(item))
                       if not n.startswith(".") and n.lower().endswith(exts)
                       and os.path.isfile(os.path.join(item, n))]
            if not matches:
                raise PlanError(f"input folder '{item}' holds no {'/'.join(sorted(kinds))} file "
                                f"({', '.join(sorted(exts))})")
        elif os.path.isfile(item):
            matches = [item]
        else:
            raise PlanError(f"input '{item}': no such file or folder")
        for m in matches:
            out.setdefault(os.path.realpath(m), os.path.abspath(m))
    return list(out.values())


def output_name(template: str, path: str, ext: str) -> str:
    folder, name = os.path.split(path)
    stem, input_ext = os.path.splitext(name)
    fields = {"stem": stem, "ext": ext, "name": name, "input_ext": input_ext, "parent": os.path.basename(folder)}
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        unknown = sorted(used - set(fields))
        if unknown:
            raise PlanError(f"--name '{template}': unknown field {{{unknown[0]}}}; "
                            f"use {', '.join('{' + f + '}' for f in NAME_FIELDS)}")
        out = template.format(**fields)
    except (ValueError, IndexError) as exc:
        raise PlanError(f"--name '{template}': {exc}") from None
    if not out or os.sep in out or out in (".", "..") or out.startswith("."):
        raise PlanError(f"--name '{template}' gives '{out}' for '{name}': it must be a plain file name "
                        "(no folder, not hidden)")
    if not os.path.splitext(out)[1]:
        raise PlanError(f"--name '{template}' gives '{out}' for '{name}': no extension to tell the file type "
                        "(add {ext}, or e.g. .mp4)")
    return out


def assets_of(graph: Graph, skip: set[tuple[str, str]], search_dirs: tuple[str, ...]) -> dict[str, str]:
    """Files the graph reads besides the batch input (a backdrop image, a model): absolute paths,
    so a worker anywhere (another folder, another machine once shipped) finds the same file."""
    from fusegraph.nodes.lib.model_registry import resolve

    out = {}
    for node, param in file_params(graph, save=False):
        value = getattr(graph.node(node).params, param)
        if (node, param) in skip or not value:
            continue
        found = OpenContext(node_id=node, search_dirs=search_dirs).find_input(value)
        if not os.path.isfile(found):
            raise NodeError(f"'{value}' not found (looked in the current folder and next to the preset)",
                            node=node, port=param)
        out[f"{node}.{param}"] = os.path.abspath(found)
    for node in graph.nodes:
        if node.type == "neural_net":
            try:
                out[f"{node.id}.model"] = str(resolve(node.params.model).resolve())
            except NodeError as exc:
                exc.node = exc.node or node.id
                raise
    return out


def plan_jobs(graph: Graph, items: list[str], out_dir: str, *, input_at: list[str], output_at: str | None,
              name: str, search_dirs: tuple[str, ...]) -> list[Job]:
    """Every job of the batch, or PlanError: unknown endpoints, no inputs, outputs that collide."""
    ins = [endpoint(graph, t, False, "--input") for t in input_at] or [the_one(graph, False, "--input")]
    out = endpoint(graph, output_at, True, "--output") if output_at else the_one(graph, True, "--output")
    others = [f"{n}.{p}" for n, p in file_params(graph, True) if (n, p) != out]
    if others:
        raise PlanError(f"{', '.join(others)} would be written by every job alike: a batch writes one "
                        f"file per input ({out[0]}.{out[1]}); remove the other file sinks from the graph")
    sink = graph.node(out[0])
    if getattr(sink.params, "mode", None) == "sequence":
        raise PlanError(f"{out[0]}: a batch writes one file per input; set mode to 'last' "
                        f"(--set {out[0]}.mode=last)")
    ext = os.path.splitext(getattr(sink.params, out[1]) or "")[1]
    if not ext and "{ext}" in name:
        raise PlanError(f"{out[0]}.{out[1]} has no file extension to name outputs by: give --name, "
                        "e.g. --name '{stem}.mp4'")
    kinds = {REGISTRY[graph.node(n).type].Params.model_fields[p].json_schema_extra.get("file_kind", "video")
             for n, p in ins}
    paths = expand_inputs(items, kinds)
    out_dir = os.path.abspath(out_dir)
    assets = assets_of(graph, set(ins), search_dirs)
    jobs, owners = [], {}
    real_inputs = {os.path.realpath(p) for p in paths}
    for i, path in enumerate(paths):
        target = os.path.join(out_dir, output_name(name, path, ext))
        if target in owners:
            raise PlanError(f"'{owners[target]}' and '{path}' would both write '{target}': "
                            "change --name (e.g. '{parent}_{stem}{ext}')")
        if os.path.realpath(target) in real_inputs:
            raise PlanError(f"'{target}' is an input: it would be overwritten; choose another --out-dir or --name")
        owners[target] = path
        jobs.append(Job(i, path, target, ins, out, search_dirs, assets))
    return jobs


def job_doc(doc: dict[str, Any], job: Job, output: str, assets: dict[str, str]) -> dict[str, Any]:
    """The graph document of one job: the input and the output paths set, assets where they are."""
    doc = {**doc, "nodes": [{**n, "params": dict(n.get("params") or {})} for n in doc["nodes"]]}
    params = {n["id"]: n["params"] for n in doc["nodes"]}
    for node, param in job.inputs:
        params[node][param] = job.input
    params[job.output_at[0]][job.output_at[1]] = output
    for key, path in assets.items():
        node, _, param = key.partition(".")
        params[node][param] = path
    return doc
