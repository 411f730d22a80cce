"""fusegraph command line: run, validate, plan, schema, presets, edit, models.

A PRESET argument is a graph file, or the name of a shipped preset (`fusegraph run default`).

Exit codes: 0 ok, 2 invalid graph, arguments or input files, 1 failure while running,
130 / 143 / 129 stopped by Ctrl+C / SIGTERM / SIGHUP (outputs are finalised). User mistakes
never print a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from fusegraph.runtime.resources import resolve_preset, shipped_presets  # stdlib only

# The rest is imported in main(), inside its handlers: Ctrl+C while numpy, pydantic or the GPU
# libraries load stops with 130 and no traceback.
OK, FAILED, INVALID, INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    pass


def parse_set(items: list[str]) -> list[tuple[str, str, Any]]:
    """--set node.param=value; value is JSON when it parses (numbers, booleans), else a string."""
    from fusegraph.runtime.graph import JsonRefused, parse_json  # the bounds of preset files

    out = []
    for item in items:
        target, eq, raw = item.partition("=")
        node, dot, param = target.partition(".")
        if not eq or not dot or not node or not param:
            raise UsageError(f"--set '{item[:80]}': expected node.param=value")
        try:
            value = parse_json(raw)
        except json.JSONDecodeError:
            value = raw
        except JsonRefused as exc:
            raise UsageError(f"--set {target}: {exc}") from None
        out.append((node, param, value))
    return out


def load(path: str, sets: list[str] = ()) -> Any:
    """Load a preset with --set overrides applied before validation (so they are checked too)."""
    from fusegraph.runtime.errors import GraphError, GraphInvalid
    from fusegraph.runtime.graph import parse_graph, read_document
    from fusegraph.runtime.migrate import migrate

    overrides = parse_set(list(sets))
    doc = read_document(path)
    if overrides and isinstance(doc, dict):
        try:
            doc = migrate(doc)
        except ValueError:
            return parse_graph(doc, path)  # reports the version problem
        if not isinstance(doc.get("nodes"), list):
            return parse_graph(doc, path)  # reports what is wrong with it
        nodes = {n["id"]: n for n in doc["nodes"] if isinstance(n, dict) and isinstance(n.get("id"), str)}
        missing = [GraphError("unknown_node", "--set names a node that is not in the graph", node=node)
                   for node, _, _ in overrides if node not in nodes]
        if missing:
            raise GraphInvalid(missing, path)
        for node, param, value in overrides:
            if not isinstance(nodes[node].get("params"), dict):
                nodes[node]["params"] = {}
            nodes[node]["params"][param] = value
    return parse_graph(doc, path)


def preset_dirs(preset: str) -> tuple[str, ...]:
    """Input files a preset names are found from the CWD, else next to the preset."""
    return (os.path.dirname(os.path.abspath(preset)),)


def cmd_validate(args) -> int:
    from fusegraph.runtime.errors import GraphInvalid
    from fusegraph.runtime.graph import load_graph

    status = OK
    for path in args.presets:
        try:
            load_graph(path)
            print(f"{path}: ok")
        except GraphInvalid as exc:
            print(exc, file=sys.stderr)
            status = INVALID
    return status


def cmd_presets(args) -> int:
    from fusegraph.runtime.errors import GraphInvalid
    from fusegraph.runtime.graph import load_graph

    for name, path in shipped_presets().items():
        try:
            kinds = sorted({n.type for n in load_graph(path).nodes})
            about = ", ".join(kinds)
        except GraphInvalid as exc:  # a shipped preset that does not load is a bug worth seeing
            about = f"invalid: {exc}"
        print(f"{name:<20} {about}" + (f"\n{'':<20} {path}" if args.paths else ""))
    return OK


def cmd_schema(args) -> int:
    from fusegraph.runtime.graph import json_schema

    print(json.dumps(json_schema(), indent=2))
    return OK


def cmd_plan(args) -> int:
    from fusegraph.runtime.compiler import describe
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.output_paths import describe_outputs

    engine = Engine(load(args.preset, args.set), fuse=not args.no_fuse, search_dirs=preset_dirs(args.preset))
    engine.open(sinks=False)
    try:
        print(describe(engine.plan))
        if engine.audio:
            print(engine.audio.describe())
        if outputs := describe_outputs(engine.graph):
            print(outputs)
        if args.glsl:
            for p in engine.plan.passes:
                print(f"\n// ===== {p.name}\n{p.source}")
    finally:
        engine.close(ok=False)
    return OK


def cmd_run(args) -> int:
    from fusegraph.nodes.media_files import check_target
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.runner import run_offline

    graph = load(args.preset, args.set)
    refuse_outside(graph, args)
    if args.profile:  # a bad trace path is found now, not after the last frame
        check_target(args.profile, None, "trace")
    engine = Engine(graph, fuse=not args.no_fuse, profile=bool(args.profile), search_dirs=preset_dirs(args.preset))
    return run_offline(engine, frames=args.frames, trace=args.profile, quiet=args.quiet)


def refuse_outside(graph, args) -> None:
    """A preset's own output paths that lead outside the current folder need --allow-outside
    (a shared preset could otherwise overwrite any file of its kind the user can write);
    paths the user gave with --set are theirs to choose."""
    from fusegraph.runtime.errors import GraphError, GraphInvalid
    from fusegraph.runtime.output_paths import is_outside, written_paths

    if args.allow_outside:
        return
    named = {(node, param) for node, param, _ in parse_set(args.set)}
    errors = [GraphError("outside", f"writes outside the current folder, to '{os.path.abspath(path)}': "
                                    f"pass --allow-outside to allow it", node=node, param=param)
              for node, param, path in written_paths(graph)
              if (node, param) not in named and is_outside(path)]
    if errors:
        raise GraphInvalid(errors, args.preset)


def cmd_edit(args) -> int:
    try:
        from fusegraph.editor.app import main as editor_main
    except ImportError:
        print("The editor is not built yet; run the preset headless with `fusegraph run`.", file=sys.stderr)
        return FAILED
    return editor_main(args.preset)


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: at least 1 frame")
    return n


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    ap = argparse.ArgumentParser(prog="fusegraph", description="Node-based live media pipelines.")
    ap.add_argument("--version", action="version", version=f"fusegraph {version('fusegraph')}")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a preset headless, every frame in order")
    run.add_argument("preset")
    run.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    run.add_argument("--frames", type=positive_int, help="number of frames (needed when every source is endless)")
    run.add_argument("--profile", metavar="TRACE.json", help="write a Chrome/Perfetto trace, one row per node or pass")
    run.add_argument("--no-fuse", action="store_true", help="one GPU pass per stage (tests, benchmarks)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--allow-outside", action="store_true",
                     help="let the preset write outside the current folder (absolute paths, '..')")
    run.set_defaults(func=cmd_run)
    val = sub.add_parser("validate", help="check presets; print every problem")
    val.add_argument("presets", nargs="+")
    val.set_defaults(func=cmd_validate)
    plan = sub.add_parser("plan", help="print the compiled plan: passes, members, sizes, transfers")
    plan.add_argument("preset")
    plan.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    plan.add_argument("--no-fuse", action="store_true")
    plan.add_argument("--glsl", action="store_true", help="also print each pass's generated GLSL")
    plan.set_defaults(func=cmd_plan)
    schema = sub.add_parser("schema", help="print the JSON Schema of graph files")
    schema.set_defaults(func=cmd_schema)
    presets = sub.add_parser("presets", help="list the shipped presets (usable by name: fusegraph run NAME)")
    presets.add_argument("--paths", action="store_true", help="also print where each one is installed")
    presets.set_defaults(func=cmd_presets)
    edit = sub.add_parser("edit", help="open the editor")
    edit.add_argument("preset", nargs="?")
    edit.set_defaults(func=cmd_edit)
    from fusegraph.runtime.models import add_models_parser

    add_models_parser(sub)  # models list / fetch
    return ap


PRESET_ARGS = ("preset", "presets")  # the arguments that name graph files, or shipped presets


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("fusegraph: stopped", file=sys.stderr)
        return INTERRUPTED


def _main(argv: list[str] | None) -> int:
    from fusegraph.nodes.spec import NodeError
    from fusegraph.runtime.errors import GraphInvalid

    args = build_parser().parse_args(argv)
    for name in PRESET_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, resolve_preset(value))
        elif isinstance(value, list):
            setattr(args, name, [resolve_preset(v) for v in value])
    try:
        return args.func(args)
    except GraphInvalid as exc:
        print(exc, file=sys.stderr)
        return INVALID
    except UsageError as exc:
        print(f"fusegraph: {exc}", file=sys.stderr)
        return INVALID
    except NodeError as exc:
        print(f"fusegraph: {exc}", file=sys.stderr)
        return INVALID


if __name__ == "__main__":
    sys.exit(main())
