"""The GL objects of a compiled plan and the drawing of its passes.

Pooled textures (one per slot; a value of several textures has several slots), the passes'
framebuffers, each stateful node's two ping-ponged textures, the stages' constant textures, and
uniforms (cached per pass, so an unchanged value is not set again). The engine (runtime/engine.py)
decides what runs when; this module only owns and uses the GPU objects.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fusegraph.runtime.codegen import constant_name, specialise_class, uniform_name
from fusegraph.runtime.gpu import Gpu
from fusegraph.runtime.plan import Pass, Plan, Value


class PlanGL:
    def __init__(self, gpu: Gpu):
        self.gpu = gpu
        self.textures: list = []  # by pool slot
        self.fbos: dict[str, tuple] = {}  # pass -> its framebuffer for even and for odd frames
        self.states: dict[str, tuple[Any, list]] = {}  # node -> (shape, [two textures]): feedback state
        self.constants: dict[tuple, Any] = {}  # (node, Constant.key) -> texture, kept while plans use it
        self.parity = 0  # state textures: frame parity p writes states[n][1][p], reads the other
        self._uniforms: dict[tuple[str, str], Any] = {}
        self._raw: dict[tuple[str, str], Any] = {}  # the objects those values came from
        self._names: dict[str, tuple] = {}  # pass -> its uniforms' generated names (_set_uniforms)
        # Tiled passes: draw each class of sure tiles with a program of its own, the values of the
        # uniforms after the head compiled in (codegen.specialise_class). Off in live runs, where a
        # dragged slider would compile a program per value.
        self.specialise = True
        self._classes: dict[str, tuple] = {}  # "pass:classN" -> (values, fragment, program) drawn last

    # ---- building for a plan -------------------------------------------------------------
    def build(self, plan: Plan) -> None:
        """The objects `plan` needs; states and constants it shares with the last plan stay."""
        self.release_targets()
        self.textures = [self.gpu.texture(size, comps, dtype) for size, comps, dtype in plan.slots]
        self._sync_states(plan)
        self._sync_constants(plan)
        for p in plan.passes:
            targets = lambda parity: [self.tex(v, parity, k) for v in p.outputs for k in range(v.textures)]  # noqa: E731
            if any(v.state for v in p.outputs):  # writes a state: one target per frame parity
                self.fbos[p.name] = tuple(self.gpu.framebuffer(targets(parity)) for parity in (0, 1))
            else:
                self.fbos[p.name] = (self.gpu.framebuffer(targets(0)),) * 2
        self._uniforms.clear()
        self._raw.clear()
        self._names.clear()

    def _sync_states(self, plan: Plan) -> None:
        """Each node's state: two textures (read last frame's, write this frame's, swap), kept
        across recompiles and uniform edits while its shape and format stay; a new one starts
        fresh (-1; 0 in an 8-bit state)."""
        wanted = {node: (out.size, out.components, out.dtype) for node, (_, out) in plan.states.items()}
        for node_id in list(self.states):
            if self.states[node_id][0] != wanted.get(node_id):
                self._release_state(node_id)
        for node_id, (size, comps, dtype) in wanted.items():
            if node_id not in self.states:
                pair = [self.gpu.texture(size, comps, dtype) for _ in range(2)]
                for tex in pair:
                    fbo = self.gpu.framebuffer([tex])
                    fbo.clear(-1.0, -1.0, -1.0, -1.0)
                    self.gpu.release_framebuffer(fbo)
                self.states[node_id] = ((size, comps, dtype), pair)

    def _sync_constants(self, plan: Plan) -> None:
        """Constant textures: uploaded when a plan first needs them, kept while plans do."""
        wanted = {(m.node, c.key): c for p in plan.passes for m, c in p.constants}
        for key in [k for k in self.constants if k not in wanted]:
            self.gpu.release_texture(self.constants.pop(key))
        for key, c in wanted.items():
            if key not in self.constants:
                tex = self.gpu.texture(c.size, c.components, "f4")
                self.gpu.write(tex, c.data)
                self.constants[key] = tex

    # ---- values ----------------------------------------------------------------------------
    def tex(self, v: Value, parity: int | None = None, k: int = 0):
        """The texture holding value v (its k-th, for a value of several); a state's pair is
        ping-ponged by frame parity."""
        if not v.state:
            return self.textures[v.slots[k]]
        pair = self.states[v.node][1]
        parity = self.parity if parity is None else parity
        return pair[parity] if v.state == "out" else pair[1 - parity]

    def write(self, v: Value, array: np.ndarray) -> None:
        """Upload a value (uint8; a value of several textures: its channels in order)."""
        n = v.components
        for k in range(v.textures):
            self.gpu.write(self.tex(v, k=k), array if v.textures == 1 else array[..., k * n:(k + 1) * n])

    def read(self, v: Value) -> np.ndarray:
        """Read a value back (HxW, HxWxC; a value of several textures: their channels in order)."""
        if v.textures == 1:
            return self.gpu.read(self.tex(v), v.dtype)
        parts = [self.gpu.read(self.tex(v, k=k), v.dtype) for k in range(v.textures)]
        return np.concatenate([p[..., None] if p.ndim == 2 else p for p in parts], axis=-1)

    # ---- drawing ---------------------------------------------------------------------------
    def draw(self, p: Pass, values: Callable[[str, object], dict], clock: tuple[float, int]) -> None:
        """Draw pass p: its samplers and constants bound, its uniforms set (values(node, stage)
        gives a stage's uniform values), into its framebuffer for this frame's parity."""
        self.fbos[p.name][self.parity].use()
        unit = 0
        for v in p.samplers:
            for k in range(v.textures):
                self.tex(v, k=k).use(location=unit)
                unit += 1
        for unit, (m, c) in enumerate(p.constants, start=p.value_units):
            self.constants[(m.node, c.key)].use(location=unit)
        if p.tiles is None:  # one triangle over everything
            prog, vao = self.gpu.program(p.source)
            self._set_uniforms(prog, p, p.name, values, clock)
            vao.render(vertices=3)
            return
        w, h = p.tiles.size  # a quad per tile: the sure tiles' cheap path, then the border tiles' full one
        if self.specialise and len(p.members) > 1:  # each class of sure tiles with its own folded program
            # (with the head alone a sure tile is a constant already: a third draw would only cost)
            sure = [(f"{p.name}:class{c}", self._class_program(p, c, values)) for c in (0, 1)]
        else:
            sure = [(p.name, self.gpu.program(p.source, p.sure_vertex))]
        for key, (prog, vao) in (*sure, (p.name + ":border", self.gpu.program(p.border_source, p.border_vertex))):
            self._set_uniforms(prog, p, key, values, clock)
            vao.render(vertices=6 * w * h)

    def _class_program(self, p: Pass, cls: int, values) -> tuple:
        """The program of a tiled pass's class-`cls` sure tiles for the uniform values now, this
        object's own (not the GPU's shared cache): an edit of those values makes a new one and
        frees the one before, so edits do not pile programs up."""
        key = f"{p.name}:class{cls}"
        given = [values(m.node, m.stage) for m in p.members[1:]]
        last = self._classes.get(key)
        if last is not None and all(a is b for a, b in zip(last[0], given)):  # the same values (Engine memoises)
            return last[2]
        fragment = specialise_class(p, cls, values)
        if last is not None and last[1] == fragment:
            self._classes[key] = (given, fragment, last[2])
            return last[2]
        program = self.gpu.own_program(fragment, p.class_vertices[cls])
        if last is not None:
            self.gpu.release_program(last[2])
            # a new program starts with its uniforms unset
            self._uniforms = {k: v for k, v in self._uniforms.items() if k[0] != key}
            self._raw = {k: v for k, v in self._raw.items() if k[0] != key}
        self._classes[key] = (given, fragment, program)
        return program

    def _set_uniforms(self, prog, p: Pass, key: str, values, clock: tuple[float, int]) -> None:
        names = self._names.get(p.name)
        if names is None:  # the generated names, once per plan (not a regex a uniform a frame)
            fixed = [(f"t{unit}", unit) for unit in range(p.value_units)]
            fixed += [(constant_name(m, c.name), unit) for unit, (m, c) in enumerate(p.constants, start=p.value_units)]
            fixed.append(("fg_size", (float(p.size[0]), float(p.size[1]))))
            names = self._names[p.name] = (fixed, [(m, [(uniform_name(m, u.name), u.name) for u in m.stage.uniforms])
                                                   for m in p.members])
        fixed, members = names
        for name, value in fixed:
            self._set(prog, key, name, value)
        self._set(prog, key, "fg_time", clock[0])
        self._set(prog, key, "fg_frame", clock[1])
        for m, uniforms in members:
            given = values(m.node, m.stage)
            for name, u in uniforms:
                self._set(prog, key, name, given[u])

    def _set(self, prog, pass_name: str, name: str, value: Any) -> None:
        key = (pass_name, name)
        if self._raw.get(key) is value:  # the very object set last time (values memoised by params)
            return
        self._raw[key] = value
        if isinstance(value, np.ndarray):
            value = tuple(value.tolist())
        if self._uniforms.get(key) == value:
            return
        self._uniforms[key] = value
        member = prog.get(name, None)
        if member is None:  # optimised away by the GLSL compiler
            return
        if member.array_length > 1:
            data = np.zeros(member.array_length, np.float32)
            data[: len(value)] = value[: member.array_length]
            member.write(data.tobytes())
        else:
            member.value = value

    # ---- release -----------------------------------------------------------------------------
    def release_targets(self) -> None:
        """The plan's own textures and framebuffers (states and constants stay)."""
        if self.gpu.stuck:  # a runaway draw holds the context: leave its objects to it
            self.fbos, self.textures = {}, []
            return
        for _, _, program in self._classes.values():
            self.gpu.release_program(program)
        self._classes.clear()
        for fbo in {id(f): f for pair in self.fbos.values() for f in pair}.values():
            self.gpu.release_framebuffer(fbo)
        for tex in self.textures:
            self.gpu.release_texture(tex)
        self.fbos, self.textures = {}, []

    def release(self) -> None:
        """Everything, states and constants too."""
        self.release_targets()
        if self.gpu.stuck:
            return
        for node_id in list(self.states):
            self._release_state(node_id)
        for key in list(self.constants):
            self.gpu.release_texture(self.constants.pop(key))

    def _release_state(self, node_id: str) -> None:
        for tex in self.states.pop(node_id)[1]:
            self.gpu.release_texture(tex)
