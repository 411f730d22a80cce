"""Compile the GLSL nodes carry or make themselves (e.g. the shader node's code) without running
the graph: `fusegraph validate` reports its errors with the author's line numbers."""
from __future__ import annotations

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.contract import GpuStage, Incoming, NodeError
from fusegraph.runtime.codegen import generate, own_glsl_error
from fusegraph.runtime.errors import GraphError
from fusegraph.runtime.graph import Graph
from fusegraph.runtime.plan import Pass, StageRef, Value
from fusegraph.runtime.validate import output_type

NOMINAL = (64, 64)  # input size for the check: GLSL does not depend on it


def check_own_glsl(graph: Graph, gpu=None) -> list[GraphError]:
    """One error per GPU node whose own GLSL does not compile (or that refuses its inputs)."""
    errors = []
    for node in graph.nodes:
        spec = REGISTRY[node.type]
        if spec.role not in ("thin", "thick"):
            continue
        incoming = {l.dst_port: Incoming(NOMINAL, output_type(graph, l.src_node, l.src_port))
                    for l in graph.links if l.dst_node == node.id}
        try:
            body = spec.build(node.params, incoming)
        except NodeError as exc:
            errors.append(GraphError("node", exc.message, node=node.id, port=exc.port))
            continue
        outs: list[Value] = []
        for i, stage in enumerate(body.stages):
            out = Value(f"{node.id}@{i}", node.id, i, stage.out_type, stage.out_size)
            outs.append(out)
            if not isinstance(stage, GpuStage) or stage.source.is_file:
                continue
            ins = [outs[int(name[1:])] if name.startswith("@") and name != "@prev" else
                   Value(name, node.id, -1, t, stage.out_size) for name, t in zip(stage.inputs, stage.input_types)]
            ref = StageRef(node.id, i, stage, ins, out, node.type)
            p = Pass(name=f"check:{ref.name}", size=stage.out_size, members=[ref], outputs=[out],
                     samplers=list(dict.fromkeys(ins)), constants=[(ref, c) for c in stage.constants])
            source, spans = generate(p)
            if gpu is None:
                from fusegraph.runtime.gpu import Gpu  # a GL context only when there is GLSL to check

                gpu = Gpu()
            from fusegraph.runtime.gpu import ShaderError

            try:
                gpu.program(source)
            except ShaderError as exc:
                found = own_glsl_error(exc.log, spans)
                errors.append(GraphError("glsl", found[1] if found else str(exc).splitlines()[0], node=node.id))
                break
    return errors
