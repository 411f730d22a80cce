"""fusegraph engine: graph model, validation, compiler, GPU executor, CLI."""
