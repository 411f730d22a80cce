"""Where a GPU stage's GLSL comes from: a file of shaders/ or text a node carries or makes.

Either may `#include "name.glsl"` shared snippets of shaders/ (each is pasted once per program,
before the first source that asks for it). The compiler (runtime/codegen.py) reads files;
a node never touches the file system for its shaders.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.M)


@dataclass(frozen=True)
class ShaderSource:
    name: str  # a file of shaders/ ("blur.glsl"), or what the text is ("n7.code") for messages
    text: str | None = None  # None: the file `name`
    # error messages count lines from here: the text's line `first_line` is the author's line 1
    # (a node that wraps user code in a signature says where the user's code begins)
    first_line: int = 1
    # names in the text that carry this prefix are the author's own, renamed so that several
    # texts share a program (messages show them without it)
    prefix: str = ""

    @classmethod
    def file(cls, name: str) -> "ShaderSource":
        return cls(name)

    @classmethod
    def inline(cls, text: str, name: str, first_line: int = 1, prefix: str = "") -> "ShaderSource":
        return cls(name, text, first_line, prefix)

    @property
    def is_file(self) -> bool:
        return self.text is None

    @staticmethod
    def includes(text: str) -> list[str]:
        """The snippets `text` includes, in order."""
        return INCLUDE.findall(text)

    @staticmethod
    def strip_includes(text: str) -> str:
        """The text with its include lines blanked (kept as empty lines: line numbers stay)."""
        return INCLUDE.sub("", text)


def as_source(glsl: "str | ShaderSource") -> ShaderSource:
    """A stage's `glsl`: a file name, or a ShaderSource."""
    return glsl if isinstance(glsl, ShaderSource) else ShaderSource.file(glsl)
