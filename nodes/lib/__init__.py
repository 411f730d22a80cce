"""Libraries the node kinds share (media files, model sessions and registry, sound helpers,
numpy references); not node kinds themselves."""
