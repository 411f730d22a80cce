"""The shipped presets (graph files) and the media they name: data only, a package so that
importlib.resources finds them (fusegraph.runtime.resources); `fusegraph presets` lists them."""
