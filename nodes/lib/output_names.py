"""The one check of a name we are about to write, made when an output opens (before any frame
is computed), not when the file is finally written at the end of a run."""
from __future__ import annotations

import os

from fusegraph.nodes.contract import NodeError

NAME_MAX = 255  # bytes in one name on Linux, macOS and Windows file systems
PATH_MAX = 4096
# The temporary name a file is written under beside its target (runtime/atomic.py keeps at
# most 100 bytes of the stem, plus ".partial-<pid>-<token>-<n>" and the extension): room for
# it in the folder's path.
TEMP_NAME_BYTES = 160


def check_output_name(path: str, node: str | None) -> None:
    """A NodeError if `path` cannot name a file on this system (a NUL byte, a name or a path
    too long), said in words, with the byte counts."""
    if "\0" in path:
        raise NodeError(f"cannot write '{path}': a file name cannot hold a NUL byte", node=node)
    folder, name = os.path.split(os.fsencode(os.path.abspath(path)))
    longest = len(folder) + 1 + max(len(name), TEMP_NAME_BYTES)
    if longest >= PATH_MAX:
        raise NodeError(f"cannot write '{path}': the path is too long ({longest} bytes with the temporary "
                        f"name; at most {PATH_MAX - 1})", node=node)
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX") if os.path.isdir(folder) else NAME_MAX
    except (OSError, ValueError, AttributeError):
        name_max = NAME_MAX
    for part in os.fsencode(path).split(b"/"):
        if len(part) > name_max:
            raise NodeError(f"cannot write '{path}': the name '{os.fsdecode(part)[:40]}...' is {len(part)} bytes "
                            f"long (at most {name_max})", node=node)
