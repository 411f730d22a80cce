"""Graph-level checks: links, port types, required inputs, cycles, sinks.

The loader, the CLI and the editor (when the user drops a link) all ask these functions.
"""
from __future__ import annotations

from typing import Iterable

from fusegraph.nodes import REGISTRY
from fusegraph.runtime.errors import GraphError
from fusegraph.runtime.graph import ENDPOINT, Graph, Link


def _endpoint_error(graph: Graph, link: Link, end: str, known_ids: set) -> GraphError | None:
    text = link.src if end == "from" else link.dst
    m = ENDPOINT.match(text)
    if not m:
        return GraphError("invalid_link", f"link '{end}' must look like 'node.port'", received=text)
    node_id, port = m.groups()
    node = graph.node(node_id)
    if node is None:
        if node_id in known_ids:  # the node itself failed to parse: already reported
            return GraphError("skip", "")
        return GraphError("missing_node", f"link {end} a node that does not exist", node=node_id, received=text)
    spec = REGISTRY[node.type]
    ports = spec.outputs if end == "from" else spec.inputs
    if not any(p.name == port for p in ports):
        have = ", ".join(p.name for p in ports) or "none"
        kind = "output" if end == "from" else "input"
        return GraphError("missing_port", f"no {kind} port '{port}' on {node.type} (it has: {have})",
                          node=node_id, port=port)
    return None


def link_error(graph: Graph, link: Link, known_ids: Iterable[str] = ()) -> GraphError | None:
    """Why `link` cannot join `graph` (its links so far), or None. Cycles are checked too."""
    known = set(known_ids)
    for end in ("from", "to"):
        err = _endpoint_error(graph, link, end, known)
        if err:
            return err
    dst_spec = REGISTRY[graph.node(link.dst_node).type]
    out_t = output_type(graph, link.src_node, link.src_port)
    in_port = dst_spec.input(link.dst_port)
    if not in_port.accepts_type(out_t):
        want = "/".join((in_port.type,) + in_port.accepts)
        return GraphError("type_mismatch", f"{out_t} output {link.src} cannot feed {want} input",
                          node=link.dst_node, port=link.dst_port, received=link.src)
    for other in graph.links:
        if other.dst == link.dst:
            code = "duplicate_link" if other.src == link.src else "input_taken"
            msg = "the same link twice" if other.src == link.src else f"input already fed by {other.src}"
            return GraphError(code, msg, node=link.dst_node, port=link.dst_port, received=link.src)
    if link.src_node == link.dst_node or _reaches(graph, link.dst_node, link.src_node):
        return GraphError("cycle", f"link {link.src} -> {link.dst} would close a cycle",
                          node=link.dst_node, port=link.dst_port)
    return None


def output_type(graph: Graph, node_id: str, port: str) -> str:
    """The type an output carries: declared, or that of the input it follows."""
    out = REGISTRY[graph.node(node_id).type].output(port)
    if out.follows:
        feed = next((l for l in graph.links if l.dst == f"{node_id}.{out.follows}"), None)
        if feed is not None:
            return output_type(graph, feed.src_node, feed.src_port)
    return out.type


def check_links(graph: Graph, links: list[Link], known_ids: Iterable[str] = ()) -> tuple[list[Link], list[GraphError]]:
    """Add links one by one; return the accepted ones and one error per refused link."""
    accepted: list[Link] = []
    errors = []
    g = graph.model_copy(update={"links": accepted})
    for link in links:
        err = link_error(g, link, known_ids)
        if err is None:
            accepted.append(link)
        elif err.code != "skip":
            errors.append(err)
    return accepted, errors


def _reaches(graph: Graph, start: str, goal: str) -> bool:
    todo, seen = [start], set()
    while todo:
        n = todo.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            todo += [l.dst_node for l in graph.links if l.src_node == n]
    return False


def type_errors(graph: Graph) -> list[GraphError]:
    """Links whose source now carries a type the input does not take.

    `link_error` checks a link against the links before it; an output that `follows` its
    input (blur of a mask is a mask) can change type later, when its input is (un)linked.
    """
    out = []
    for l in graph.links:
        src, dst = graph.node(l.src_node), graph.node(l.dst_node)
        if src is None or dst is None or REGISTRY[src.type].output(l.src_port) is None:
            continue
        port = REGISTRY[dst.type].input(l.dst_port)
        if port is None:
            continue
        t = output_type(graph, l.src_node, l.src_port)
        if not port.accepts_type(t):
            want = "/".join((port.type,) + port.accepts)
            out.append(GraphError("type_mismatch", f"{t} output {l.src} cannot feed {want} input",
                                  node=l.dst_node, port=l.dst_port, received=l.src))
    return out


def check_graph(graph: Graph) -> list[GraphError]:
    """Whole-graph problems of a graph whose links are individually valid."""
    errors = []
    fed = {l.dst for l in graph.links}
    for node in graph.nodes:
        for port in REGISTRY[node.type].inputs:
            if port.required and f"{node.id}.{port.name}" not in fed:
                errors.append(GraphError("missing_input", f"required {port.type} input is not connected",
                                         node=node.id, port=port.name))
    errors += type_errors(graph)  # links checked one by one could not see a later retyping
    cyc = find_cycle(graph)
    if cyc:
        errors.append(GraphError("cycle", "cycle: " + " -> ".join(cyc), node=cyc[0]))
    if not any(REGISTRY[n.type].role == "sink" for n in graph.nodes):
        errors.append(GraphError("no_sink", "the graph has no sink (preview, video_out, image_out, ...)"))
    return errors


def find_cycle(graph: Graph) -> list[str] | None:
    succ: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for l in graph.links:
        succ.setdefault(l.src_node, []).append(l.dst_node)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in succ.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in succ:
        if n not in state and (c := visit(n)):
            return c
    return None


def topo_order(graph: Graph) -> list[str]:
    """Node ids in dependency order (stable: ties keep file order)."""
    indeg = {n.id: 0 for n in graph.nodes}
    for l in graph.links:
        indeg[l.dst_node] += 1
    order, ready = [], [n.id for n in graph.nodes if indeg[n.id] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for l in graph.links:
            if l.src_node == n:
                indeg[l.dst_node] -= 1
                if indeg[l.dst_node] == 0:
                    ready.append(l.dst_node)
    return order
