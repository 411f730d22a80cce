"""The layers: the command line above the runtime and the editor; the runtime never imports the
editor; finding the node kinds loads no heavy library."""
from __future__ import annotations

import subprocess
import sys

BLOCK_EDITOR = '''
import sys
class BlockEditor:  # as if the editor package were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "fusegraph.editor" or name.startswith("fusegraph.editor."):
            raise ImportError("no editor here (test)")
sys.meta_path.insert(0, BlockEditor())
'''


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_runtime_runs_a_preset_with_the_editor_unimportable(tmp_path):
    code = BLOCK_EDITOR + '''
import importlib, pkgutil
import fusegraph.runtime
for m in pkgutil.walk_packages(fusegraph.runtime.__path__, "fusegraph.runtime."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)  # every runtime module imports without the editor
from fusegraph.runtime.cli import main
assert main(["run", "stylise", "--frames", "2", "--quiet", "--set", "out.path=out.mp4"]) == 0
assert main(["edit"]) == 1  # the editor's command answers that it is not there
assert not [m for m in sys.modules if m.startswith("fusegraph.editor")]
print("ok")
'''
    r = run_python(code, tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    assert (tmp_path / "out.mp4").stat().st_size > 0
    assert "fusegraph edit: not available here" in r.stderr


def test_the_editor_registers_its_command():
    from fusegraph.runtime.cli import build_parser

    assert build_parser().parse_args(["edit", "x.json"]).preset == "x.json"


def test_finding_node_kinds_loads_no_heavy_library(tmp_path):
    code = '''
import sys
import fusegraph.nodes
from fusegraph.runtime.cli import build_parser
from fusegraph.runtime.loader import load_graph
load_graph("''' + str(__import__("fusegraph.runtime.resources", fromlist=["x"]).default_preset()) + '''")
heavy = [m for m in ("cv2", "av", "onnxruntime", "moderngl", "fusegraph.runtime.engine") if m in sys.modules]
print(heavy)
'''
    r = run_python(code, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_graph_model_and_validator_do_not_import_each_other():
    import ast
    import inspect

    import fusegraph.runtime.graph as graph
    import fusegraph.runtime.validate as validate

    def imports(module) -> set[str]:
        tree = ast.parse(inspect.getsource(module))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "fusegraph.runtime.validate" not in imports(graph)
    assert "fusegraph.runtime.graph" in imports(validate)
    assert "fusegraph.runtime.loader" not in imports(graph) | imports(validate)
