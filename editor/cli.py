"""`fusegraph edit`: the editor's subcommand, registered through the "fusegraph.commands" entry
point (pyproject.toml), so the command line finds it and runtime/ never imports the editor."""
from __future__ import annotations


def register(sub) -> None:
    edit = sub.add_parser("edit", help="open the editor")
    edit.add_argument("preset", nargs="?")
    edit.set_defaults(func=cmd_edit)


def cmd_edit(args) -> int:
    from fusegraph.editor.app import main  # Dear PyGui only when the editor opens

    return main(args.preset)
