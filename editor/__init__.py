"""The fusegraph editor.

`fusegraph.editor.document` (the model's controller: every user action is a command on the same
pydantic Graph the headless runner uses, with undo/redo), `fusegraph.editor.history` and
`fusegraph.editor.files` (config folder, recent files, crash recovery) import no Dear PyGui and are
unit-tested without a display; the Dear PyGui views are built on top of them.
"""
