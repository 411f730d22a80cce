"""The node contract, re-exported from nodes/contract/ (the import path older node modules use)."""
from fusegraph.nodes.contract import *  # noqa: F401,F403
from fusegraph.nodes.contract import __all__  # noqa: F401
from fusegraph.nodes.contract.types import PortTypeName as PortType  # noqa: F401  (the name as a Literal)
