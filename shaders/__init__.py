"""GLSL sources of the GPU nodes: data only, a package so that importlib.resources finds them
(fusegraph.runtime.resources) in a checkout and in an installed wheel alike."""
