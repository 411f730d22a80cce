"""Validation problems as records, reported all at once (never a traceback)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fusegraph.nodes.contract import NodeError, printable


@dataclass(frozen=True)
class GraphError:
    code: str  # e.g. "unknown_type", "param_range", "type_mismatch", "cycle"
    message: str
    node: str | None = None
    port: str | None = None
    param: str | None = None
    received: Any = None

    def __str__(self) -> str:
        where = self.node or "graph"
        if self.port:
            where += f".{self.port}"
        if self.param:
            where += f" param '{self.param}'"
        # every part may come from the preset: no control codes, no megabytes (nodes.contract.printable)
        text = f"{printable(where)}: {printable(self.message, 600)} [{self.code}]"
        if self.received is not None:
            text += f" (received {printable(_short_repr(self.received), 1000)})"
        return text


def _short_repr(value: Any) -> str:
    """repr() of a received value without building megabytes of text for a huge one."""
    if isinstance(value, str) and len(value) > 200:
        return repr(value[:200]) + f"... ({len(value)} characters)"
    if isinstance(value, (list, dict)) and len(value) > 50:
        return f"<{type(value).__name__} of {len(value)} items>"
    return repr(value)


class GraphInvalid(Exception):
    """A graph document with problems; `errors` lists them all."""

    def __init__(self, errors: list[GraphError], source: str = ""):
        self.errors = errors
        self.source = source
        self.partial = None  # the loadable part of the graph, when there is one (for the editor)
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(errors)} problem(s)\n" + "\n".join(f"  {e}" for e in errors))


class ShaderCompileError(NodeError):
    """A node's own GLSL (text it carries or makes) did not compile; the message gives the
    author's line numbers and the driver's words."""


class FrameTimeout(NodeError):
    """A frame's GPU work did not finish in time (a runaway shader): the GL context is stuck.
    `nodes`: the nodes whose passes were running (those with GLSL of their own, when any)."""

    def __init__(self, message: str, nodes: list[str]):
        super().__init__(message, node=nodes[0] if nodes else None)
        self.nodes = nodes
