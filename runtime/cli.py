"""fusegraph command line: run, validate, plan, schema, presets, models, batch, and what other
packages register as "fusegraph.commands" entry points (the editor's `edit`).

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

from fusegraph.runtime.resources import resolve_preset, shipped_presets  # stdlib only

# The rest is imported in main(), inside its handlers: Ctrl+C while numpy, pydantic or the GPU
# libraries load stops with 130 and no traceback.
OK, FAILED, INVALID, INTERRUPTED, PIPE_CLOSED = 0, 1, 2, 130, 141


FRAME_LIMIT_S = 20.0  # seconds one frame's GPU work may take headless (software GL, 4K: a few seconds)


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def preset_dirs(preset: str) -> tuple[str, ...]:
    """Input files a preset names are found from the CWD, else next to the preset."""
    return (os.path.dirname(os.path.abspath(preset)),)


def cmd_validate(args) -> int:
    """Every problem of each preset; the GLSL nodes carry themselves is compiled too."""
    from fusegraph.runtime.errors import GraphInvalid
    from fusegraph.runtime.loader import load_graph
    from fusegraph.runtime.shadercheck import check_own_glsl

    status = OK
    for path in args.presets:
        try:
            errors = check_own_glsl(load_graph(path))
            if errors:
                raise GraphInvalid(errors, path)
            print(f"{path}: ok")
        except GraphInvalid as exc:
            print(exc, file=sys.stderr)
            status = INVALID
    return status


def cmd_presets(args) -> int:
    from fusegraph.runtime.errors import GraphInvalid
    from fusegraph.runtime.loader import load_graph
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
    from fusegraph.runtime.loader import load
    from fusegraph.runtime.output_paths import describe_outputs

    engine = Engine(load(args.preset, args.set), fuse=not args.no_fuse, search_dirs=preset_dirs(args.preset))
    engine.open(sinks=False)
    try:
        print(describe(engine.plan))
        if engine.audio:
            print(engine.audio.describe())
        if outputs := describe_outputs(engine.graph):
            print(outputs)
        if args.layers:
            print(_net_layers(engine))
        if args.glsl:
            for p in engine.plan.passes:
                print(f"\n// ===== {p.name}\n{p.source}")
    finally:
        engine.close(ok=False)
    return OK


def _net_layers(engine) -> str:
    """Each neural_net node: the backend chosen and why, and the passes its network compiles to."""
    from fusegraph.nodes.lib.model_registry import resolve
    from fusegraph.nodes.lib.nn.backend import MRT, choose
    from fusegraph.nodes.lib.nn.compile import compile_file
    from fusegraph.nodes.lib.nn.ir import NetError
    from fusegraph.nodes.lib.nn.report import layers
    from fusegraph.nodes.lib.onnx_session import open_model

    out = []
    for node in engine.graph.nodes:
        if node.type != "neural_net" or node.id not in engine.plan.nodes:
            continue
        p = node.params
        size = open_model(p.model, p.threads).input_size(p.layout, p.input_width, p.input_height)
        path = str(resolve(p.model))
        choice = choose(p.backend, p.model, path, size)
        out.append(f"{node.id} (neural_net, model {p.model}): backend {choice.backend} ({choice.reason})"
                   + ("" if choice.backend == "gl" else "; with backend gl it would run as:"))
        args = (path, p.model, size)
        mt = engine.gpu.max_texture
        try:
            out.append(layers(compile_file(*args, fused=True, mrt=MRT, max_texture=mt),
                              compile_file(*args, fused=True, mrt=1, max_texture=mt),
                              compile_file(*args, fused=False, mrt=MRT, max_texture=mt)))
        except NetError as exc:
            out.append(f"  it cannot: {exc}")
    return "\n".join(out) or "no neural_net node in the plan"


def cmd_run(args) -> int:
    from fusegraph.nodes.lib.media_files import check_target
    from fusegraph.runtime.engine import Engine
    from fusegraph.runtime.loader import load
    from fusegraph.runtime.runner import run_offline

    graph = load(args.preset, args.set)
    refuse_outside(graph, args)
    if args.profile:  # a bad trace path is found now, not after the last frame
        check_target(args.profile, None, "trace")
    engine = Engine(graph, fuse=not args.no_fuse, profile=bool(args.profile), search_dirs=preset_dirs(args.preset),
                    frame_limit=args.frame_limit)
    return run_offline(engine, frames=args.frames, trace=args.profile, quiet=args.quiet)


def refuse_outside(graph, args) -> None:
    """A preset's own output paths that lead outside the current folder need --allow-outside
    (a shared preset could otherwise overwrite any file of its kind the user can write);
    paths the user gave with --set are theirs to choose."""
    from fusegraph.runtime.errors import GraphError, GraphInvalid
    from fusegraph.runtime.loader import parse_set
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


COMMANDS_GROUP = "fusegraph.commands"  # entry points: name -> register(subparsers), e.g. the editor's `edit`


def add_plugin_commands(sub) -> None:
    """Subcommands other packages register (the editor's `edit`): the command line sits above
    the runtime and the editor, and the runtime never imports the editor. One that cannot be
    loaded (its package missing or broken) still answers, with why."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except Exception as exc:  # noqa: BLE001  (any import failure of a plugin: report it when used)
            broken = sub.add_parser(ep.name, help=f"(unavailable: {exc})")
            broken.add_argument("rest", nargs="*")
            broken.set_defaults(func=lambda args, name=ep.name, why=exc: _unavailable(name, why))
            continue
        register(sub)


def _unavailable(name: str, why: Exception) -> int:
    print(f"fusegraph {name}: not available here ({type(why).__name__}: {why})", file=sys.stderr)
    return FAILED


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
    run.add_argument("--frame-limit", type=seconds, default=FRAME_LIMIT_S, metavar="SECONDS",
                     help=f"give up when one frame's GPU work takes longer (a shader that never ends; "
                          f"default {FRAME_LIMIT_S:g})")
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
    plan.add_argument("--layers", action="store_true",
                      help="also list each neural_net's ONNX nodes, the GPU pass each lands in, shapes and reads")
    plan.set_defaults(func=cmd_plan)
    schema = sub.add_parser("schema", help="print the JSON Schema of graph files")
    schema.set_defaults(func=cmd_schema)
    presets = sub.add_parser("presets", help="list the shipped presets (usable by name: fusegraph run NAME)")
    presets.add_argument("--paths", action="store_true", help="also print where each one is installed")
    presets.set_defaults(func=cmd_presets)
    from fusegraph.runtime.models import add_models_parser

    add_models_parser(sub)  # models list / fetch
    from fusegraph.runtime.batch import add_batch_parser

    add_batch_parser(sub)  # batch: one preset over many files (runtime/batch/)
    add_plugin_commands(sub)
    return ap


PRESET_ARGS = ("preset", "presets")  # the arguments that name graph files, or shipped presets


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("fusegraph: stopped", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`fusegraph plan | head`): stop quietly, like a shell tool does on
        # SIGPIPE. Point stdout at devnull so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED


def _main(argv: list[str] | None) -> int:
    from fusegraph.nodes.contract import NodeError
    from fusegraph.runtime.errors import GraphInvalid
    from fusegraph.runtime.loader import UsageError

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
