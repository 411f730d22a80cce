"""`fusegraph batch`: one saved graph run over many files, one job per input file.

    jobs.py      inputs (files, folders, globs) -> jobs: which param each replaces, output names
    manifest.py  DIR/manifest.jsonl: a record per input; what a rerun may skip
    worker.py    one job, on whichever engine: the `fusegraph run` path on a staged output
    local.py     the default engine: worker processes (spawn) on this machine
    ray_engine.py  the same jobs as Ray tasks on a cluster (`pip install 'fusegraph[ray]'`)
    progress.py  one bar for the batch and a line per finished file
    cli.py       the subcommand: plan, skip what is done, run, summarise, exit code
"""
from __future__ import annotations


def add_batch_parser(sub):
    """Add `fusegraph batch` to the CLI's subparsers."""
    from fusegraph.runtime.batch.cli import add_batch_parser as _add

    return _add(sub)
