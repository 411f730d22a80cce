"""The node contract: what a node kind declares (declare), what it does on the GPU or CPU
(stages, shaders), what its values are (types) and what it opens when it runs (io).

Node modules import from here; the runtime reads these declarations and nothing else of a node.
"""
from fusegraph.nodes.contract.declare import (MAX_TEXTURE, PIXEL_BUDGET, NodeError, NodeSpec, Params, Port, Role,
                                              path_field, printable)
from fusegraph.nodes.contract.io import (AudioFormat, AudioProcessor, AudioSource, EndOfStream, OpenContext, Sink,
                                         Source, SourceInfo)
from fusegraph.nodes.contract.shaders import ShaderSource
from fusegraph.nodes.contract.stages import Body, Constant, CpuStage, GpuStage, Incoming, Size, Uniform
from fusegraph.nodes.contract.types import CONVERSIONS, TYPES, PortType, PortTypeName, convert

__all__ = [
    "AudioFormat", "AudioProcessor", "AudioSource", "Body", "CONVERSIONS", "Constant", "CpuStage", "EndOfStream",
    "GpuStage", "Incoming", "MAX_TEXTURE", "NodeError", "NodeSpec", "OpenContext", "PIXEL_BUDGET", "Params", "Port",
    "PortType", "PortTypeName", "Role", "ShaderSource", "Sink", "Size", "Source", "SourceInfo", "TYPES", "Uniform",
    "convert", "path_field", "printable",
]
