"""The one check of a name we are about to write, made when an output opens (before any frame
is computed), not when the file is finally written at the end of a run."""
from __future__ import annotations

import os

from nodes.spec import NodeError

# A file is written under a temporary name beside its target (".NAME.<random>.partial" and
# the like): its name must fit the file system's limit with that much room to spare.
TEMP_NAME_ROOM = 32
NAME_MAX = 255  # bytes in one name on Linux, macOS and Windows file systems
PATH_MAX = 4096


def check_output_name(path: str, node: str | None) -> None:
    """A NodeError if `path` cannot name a file on this system (a NUL byte, a name or a path
    too long), said in words, with the byte counts."""
    if "\0" in path:
        raise NodeError(f"cannot write '{path}': a file name cannot hold a NUL byte", node=node)
    encoded = os.fsencode(os.path.abspath(path))
    if len(encoded) > PATH_MAX - TEMP_NAME_ROOM:
        raise NodeError(f"cannot write '{path}': the path is {len(encoded)} bytes long "
                        f"(at most {PATH_MAX - TEMP_NAME_ROOM})", node=node)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX") if os.path.isdir(folder) else NAME_MAX
    except (OSError, ValueError, AttributeError):
        name_max = NAME_MAX
    parts = os.fsencode(path).split(b"/")
    for i, part in enumerate(parts):
        room = name_max - (TEMP_NAME_ROOM if i == len(parts) - 1 else 0)
        if len(part) > room:
            raise NodeError(f"cannot write '{path}': the name '{os.fsdecode(part)[:40]}...' is {len(part)} bytes "
                            f"long (at most {room} here, room kept for the temporary name)", node=node)
