"""Which backend runs a neural_net node, and why: `auto` is onnxruntime on software GL (there a
CPU inference beats the same network as shader passes: ./fg bench --only nn), and where the
model does not compile to passes; else the GPU passes."""
from __future__ import annotations

from dataclasses import dataclass

from fusegraph.nodes.lib.nn.compile import CompiledNet, compile_file
from fusegraph.nodes.lib.nn.ir import NetError

SOFTWARE = ("llvmpipe", "softpipe", "swrast", "lavapipe")
MRT = 4  # render targets per pass: slices written at once (the samplers a pass binds stay <= 16)


@dataclass(frozen=True)
class Choice:
    backend: str  # "gl" or "onnxruntime"
    reason: str  # why, in words for `fusegraph plan` and the editor
    compiled: CompiledNet | None = None


_GPU: tuple[str, int] | None = None  # (renderer, largest texture) of the last GL context made


def gpu_seen(renderer: str, max_texture: int) -> None:
    """Called by the runtime when it makes its GL context (runtime/gpu.py): a node's build may
    run on any thread, where GL calls are not allowed, so it asks this instead of GL."""
    global _GPU
    _GPU = (renderer, max_texture)


def current_gl() -> tuple[str, int] | None:
    """The renderer and largest texture of the GL context the engine made (None: none yet)."""
    return _GPU


def choose(backend: str, model: str, path: str, size: tuple[int, int]) -> Choice:
    """Raises NetError only when `gl` was asked for and the model cannot run as passes."""
    gl = current_gl()
    if backend == "onnxruntime":
        return Choice("onnxruntime", "asked for")
    renderer, max_texture = gl if gl else ("", 16384)
    if backend == "auto":
        if gl is None:
            return Choice("onnxruntime", "auto: no GL context to judge the GPU by")
        if any(s in renderer.lower() for s in SOFTWARE):
            return Choice("onnxruntime", f"auto: software GL ({renderer.split('(')[0].strip()}) runs the network "
                                         "slower as shader passes than onnxruntime on the CPU")
    try:
        compiled = compile_file(path, model, size, fused=True, mrt=MRT, max_texture=max_texture)
    except NetError as exc:
        if backend == "gl":
            raise
        return Choice("onnxruntime", f"auto: {exc}")
    return Choice("gl", "asked for" if backend == "gl" else f"auto: a hardware GPU ({renderer})", compiled)
