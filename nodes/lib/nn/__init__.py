"""The network compiler: ONNX -> packed-tensor GLSL passes (the `gl` backend of neural_net).

import_onnx.py  ONNX -> IR (constants folded, BatchNorm into its Conv, boundary transposes absorbed)
ir.py           the IR: tensors (channels packed 4 per RGBA texel, slices in atlases) and ops
fusion.py       ops -> passes (one thick op + thin ops before and after it)
codegen.py      a pass -> one GLSL function and its constant textures
gl_run.py       a compiled net run on its own (tests, benchmarks); the engine runs the same
                functions as the node's GPU stages (stages.py)
"""
