"""The network compiler: ONNX -> packed-tensor GLSL passes (the `gl` backend of neural_net).

import_onnx.py  ONNX -> IR (constants folded, BatchNorm into its Conv, boundary transposes absorbed)
ir.py           the IR: tensors (channels packed 4 per RGBA texel, slices in atlases) and ops
fusion.py       ops -> passes (one thick op + thin ops before and after it; small passes merged)
codegen.py      a pass -> one GLSL function and its constant textures
compile.py      the steps above, cached per model file and options
stages.py       a compiled net as the node's GPU stages (the engine runs them like any pass)
backend.py      which backend a node runs (auto's rule) and why
report.py       `fusegraph plan --layers`: ONNX nodes by pass, shapes, reads per output

runtime/nn_run.py runs a compiled net alone on a GL context (tests, benchmarks).
"""
