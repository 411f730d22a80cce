"""The engine's GL context and the GPU objects it owns: programs (cached by source), textures, targets."""
from __future__ import annotations

import ctypes
import ctypes.util

import moderngl
import numpy as np

from fusegraph.nodes.lib.nn.backend import gpu_seen
from fusegraph.runtime.codegen import VERTEX

DTYPE = {"src": "f1", "f1": "f1", "f2": "f2", "f4": "f4"}
NP_DTYPE = {"f1": np.uint8, "f2": np.float16, "f4": np.float32}
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "lavapipe")


class ShaderError(Exception):
    """A generated program failed to compile: the message holds the numbered source."""

    def __init__(self, message: str, log: str = "", source: str = ""):
        super().__init__(message)
        self.log, self.source = log, source  # the driver's own message; the program's text


GL_SYNC_GPU_COMMANDS_COMPLETE, GL_SYNC_FLUSH_COMMANDS_BIT = 0x9117, 0x1
GL_TIMEOUT_EXPIRED, GL_WAIT_FAILED = 0x911B, 0x911D
FOREVER_S = 1e9  # "no limit" for a fence wait (still with the GIL released)


class Fences:
    """glFenceSync / glClientWaitSync through ctypes, which releases the GIL while it waits.

    moderngl holds the GIL in every call, so a read-back that waits for a runaway shader would
    freeze every Python thread (the editor's UI too). Waiting on a fence first, with a time
    limit and the GIL released, lets the engine give up on a frame and the UI run on.
    Only where the context comes from EGL (headless, as here); elsewhere `available` is False."""

    def __init__(self):
        self.available = False
        name = ctypes.util.find_library("EGL") or "libEGL.so.1"
        try:
            egl = ctypes.CDLL(name)
            egl.eglGetProcAddress.restype = ctypes.c_void_p
            egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
            fence, wait, delete = (egl.eglGetProcAddress(n) for n in (b"glFenceSync", b"glClientWaitSync",
                                                                      b"glDeleteSync"))
        except (OSError, AttributeError):
            return
        if not (fence and wait and delete):
            return
        self._fence = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)(fence)
        self._wait = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint64)(wait)
        self._delete = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(delete)
        self.available = True

    def wait(self, seconds: float) -> bool:
        """Wait until the GPU has done all the work given so far; False after `seconds`."""
        sync = self._fence(GL_SYNC_GPU_COMMANDS_COMPLETE, 0)
        if not sync:
            return True
        result = self._wait(sync, GL_SYNC_FLUSH_COMMANDS_BIT, int(seconds * 1e9))
        if result == GL_TIMEOUT_EXPIRED:
            return False  # the sync stays: deleting it could wait on the stuck work
        self._delete(sync)
        return result != GL_WAIT_FAILED


def create_context() -> moderngl.Context:
    """A standalone context: EGL (headless) first, then the platform default."""
    try:
        return moderngl.create_standalone_context(require=330, backend="egl")
    except Exception:  # no EGL on this platform: let moderngl pick (GLX, WGL, CGL)
        return moderngl.create_standalone_context(require=330)


class Gpu:
    def __init__(self, ctx: moderngl.Context | None = None):
        self.ctx = ctx or create_context()
        self.programs: dict[str, tuple[moderngl.Program, moderngl.VertexArray]] = {}
        self.textures = 0  # live counts, for leak checks
        self.framebuffers = 0
        renderer = self.ctx.info.get("GL_RENDERER", "").lower()
        self.renderer = self.ctx.info.get("GL_RENDERER", "")
        self.max_texture = int(self.ctx.info.get("GL_MAX_TEXTURE_SIZE", 16384))
        gpu_seen(self.renderer, self.max_texture)  # neural_net's `auto` judges the GPU by it
        # llvmpipe's timer queries do not measure real time: time there with glFinish instead.
        self.timers_trustworthy = not any(s in renderer for s in SOFTWARE_RENDERERS)
        self.fences = Fences()  # one per context: the functions act on the current context
        self.stuck = False  # a frame never finished: the context must not be touched again

    def settle(self, seconds: float | None = None) -> bool:
        """Wait (the GIL released) until the GPU has finished what it was given; False when that
        takes longer than `seconds` (a runaway shader): the context is then stuck for good."""
        if self.stuck:
            return False
        if not self.fences.available:  # no fences: wait the plain way (holding the GIL)
            self.ctx.finish()
            return True
        if not self.fences.wait(FOREVER_S if seconds is None else seconds):
            self.stuck = True
        return not self.stuck

    def make_current(self) -> None:
        """Make this context the calling thread's current one. Creating another context (an
        engine with a Gpu of its own, the editor's window) makes that one current, and every GL
        call of ours would then go to it (GL_INVALID_OPERATION: nothing drawn, textures left
        holding whatever memory they were given). Cheap when it is current already. A stuck
        context is left alone (never touched again)."""
        if not self.stuck:
            self.ctx.mglo.__enter__()

    def program(self, source: str, vertex: str = VERTEX) -> tuple[moderngl.Program, moderngl.VertexArray]:
        key = source if vertex is VERTEX else vertex + source
        cached = self.programs.get(key)
        if cached is None:
            cached = self.programs[key] = self.own_program(source, vertex)
        return cached

    def own_program(self, source: str, vertex: str = VERTEX) -> tuple[moderngl.Program, moderngl.VertexArray]:
        """A program outside the cache, for its caller alone to use and release (release_program)."""
        try:
            prog = self.ctx.program(vertex_shader=vertex, fragment_shader=source)
        except moderngl.Error as exc:
            numbered = "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(source.splitlines()))
            raise ShaderError(f"{exc}\n--- generated source ---\n{numbered}", str(exc), source) from None
        return prog, self.ctx.vertex_array(prog, [])

    @staticmethod
    def release_program(program: tuple[moderngl.Program, moderngl.VertexArray]) -> None:
        program[1].release()
        program[0].release()

    def texture(self, size: tuple[int, int], components: int, dtype: str) -> moderngl.Texture:
        tex = self.ctx.texture(size, components, dtype=DTYPE[dtype])
        tex.repeat_x = tex.repeat_y = False  # clamp to edge, as the numpy references do
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.textures += 1
        return tex

    def framebuffer(self, textures: list[moderngl.Texture]) -> moderngl.Framebuffer:
        self.framebuffers += 1
        return self.ctx.framebuffer(color_attachments=textures)

    def release_texture(self, tex: moderngl.Texture) -> None:
        tex.release()
        self.textures -= 1

    def release_framebuffer(self, fbo: moderngl.Framebuffer) -> None:
        fbo.release()
        self.framebuffers -= 1

    @staticmethod
    def read(tex: moderngl.Texture, dtype: str) -> np.ndarray:
        """Texture -> HxWxC (or HxW for one channel) array; row 0 is the image's top row."""
        data = np.frombuffer(tex.read(alignment=1), dtype=NP_DTYPE[DTYPE[dtype]])
        w, h = tex.size
        return data.reshape(h, w) if tex.components == 1 else data.reshape(h, w, tex.components)

    @staticmethod
    def write(tex: moderngl.Texture, array: np.ndarray) -> None:
        tex.write(np.ascontiguousarray(array), alignment=1)

    def release(self) -> None:
        if self.stuck:  # a runaway draw still runs: releasing would wait for it (holding the GIL)
            return
        self.make_current()
        for prog, vao in self.programs.values():
            vao.release()
            prog.release()
        self.programs.clear()
        self.ctx.release()
