"""fusegraph command line: run, validate, plan, schema, edit, models.

Exit codes: 0 ok, 2 invalid graph, arguments or input files, 1 failure while running,
130 stopped with Ctrl+C (outputs are finalised). User mistakes never print a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from fusegraph.nodes.spec import NodeError
from fusegraph.runtime.errors import GraphError, GraphInvalid
from fusegraph.runtime.runner import FAILED, INTERRUPTED, INVALID, OK, run_offline


class UsageError(Exception):
    pass


def parse_set(items: list[str]) -> list[tuple[str, str, Any]]:
    """--set node.param=value; value is JSON when it parses (numbers, booleans), else a string."""
    out = []
    for item in items:
        target, eq, raw = item.partition("=")
        node, dot, param = target.partition(".")
        if not eq or not dot or not node or not param:
            raise UsageError(f"--set '{item}': expected node.param=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.append((node, param, value))
    return out


def load(path: str, sets: list[str] = ()) -> Any:
    """Load a preset with --set overrides applied before validation (so they are checked too)."""
    from fusegraph.runtime.graph import parse_graph, read_document
    from fusegraph.runtime.migrate import migrate

    overrides = parse_set(list(sets))
    doc = read_document(path)
    if overrides and isinstance(doc, dict):
        try:
            doc = migrate(doc)
        except ValueError:
            return parse_graph(doc, path)  # reports the version problem
        nodes = {n.get("id"): n for n in doc.get("nodes", []) if isinstance(n, dict)}
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


def cmd_schema(args) -> int:
    from fusegraph.runtime.graph import json_schema

    print(json.dumps(json_schema(), indent=2))
    return OK


def cmd_plan(args) -> int:
    from fusegraph.runtime.compiler import describe
    from fusegraph.runtime.engine import Engine

    engine = Engine(load(args.preset, args.set), fuse=not args.no_fuse, search_dirs=preset_dirs(args.preset))
    engine.open(sinks=False)
    try:
        print(describe(engine.plan))
        if engine.audio:
            print(engine.audio.describe())
        if args.glsl:
            for p in engine.plan.passes:
                print(f"\n// ===== {p.name}\n{p.source}")
    finally:
        engine.close(ok=False)
    return OK


def cmd_run(args) -> int:
    from fusegraph.runtime.engine import Engine

    graph = load(args.preset, args.set)
    engine = Engine(graph, fuse=not args.no_fuse, profile=bool(args.profile), search_dirs=preset_dirs(args.preset))
    return run_offline(engine, frames=args.frames, trace=args.profile, quiet=args.quiet)


def cmd_edit(args) -> int:
    try:
        from fusegraph.editor.app import main as editor_main
    except ImportError:
        print("The editor is not built yet; run the preset headless with `fusegraph run`.", file=sys.stderr)
        return FAILED
    return editor_main(args.preset)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fusegraph", description="Node-based live media pipelines.")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a preset headless, every frame in order")
    run.add_argument("preset")
    run.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    run.add_argument("--frames", type=int, help="number of frames (needed when every source is endless)")
    run.add_argument("--profile", metavar="TRACE.json", help="write a Chrome/Perfetto trace, one row per node or pass")
    run.add_argument("--no-fuse", action="store_true", help="one GPU pass per stage (tests, benchmarks)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
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
    edit = sub.add_parser("edit", help="open the editor")
    edit.add_argument("preset", nargs="?")
    edit.set_defaults(func=cmd_edit)
    from fusegraph.runtime.models import add_models_parser

    add_models_parser(sub)  # models list / fetch
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except KeyboardInterrupt:
        print("fusegraph: stopped", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
