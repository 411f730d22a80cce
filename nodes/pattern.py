"""pattern: a deterministic animated test scene: a textured wall, a swaying person, a frame code.

Outputs: out (video)
Params:  width, height, fps; frames (0 = endless); seed (texture, hair and motion phases);
         noise (std. dev. of gaussian sensor noise as a fraction of full scale; 0 = clean)
Notes:   Frame i is the same bytes for the same params, whatever order frames are read in.
         The wall (checker, stripes, gradient, fine grain) pans slowly; the person (head, hair
         strands, neck, shirt) sways and tilts with sub-pixel motion. Top left: the frame index
         as 24 binary cells between a white and a black guard cell, readable after lossy
         encoding (extra["decode_index"]); bottom: a marker that steps every frame.
         extra["mask"](params, i) is the person's exact coverage (float32 HxW in [0,1]).
"""
from __future__ import annotations

import functools
import math
from typing import Any

from fusegraph.nodes.lib.lazy import cv2
import numpy as np
from pydantic import Field

from fusegraph.nodes.contract import EndOfStream, NodeSpec, OpenContext, Params, Port, Source, SourceInfo

TAU = 2.0 * math.pi
SHIFT = 4  # cv2 drawing in 1/16 px: the person moves smoothly, not in whole-pixel jumps
ONE = 1 << SHIFT
AA = 16  # cv2.LINE_AA, as a literal: importing the node kind must not load OpenCV
HAIR_FROM, HAIR_TO = 165, 375  # degrees of the hair ellipse (a cap: its chord crosses the brow)
CODE_BITS = 24  # enough for the largest `frames` (1e7 < 2**24)

SKIN = (120, 155, 215)  # BGR
HAIR = (28, 32, 42)
SHIRT = np.array([48, 58, 165], np.float32)  # a warm red: far from the cool wall colours
SHIRT_STRIPE = np.array([205, 200, 215], np.float32)
WALL = np.array([[175, 125, 60], [95, 150, 85], [150, 95, 115]], np.float32)  # blue, green, purple


class PatternParams(Params):
    width: int = Field(1280, ge=16, le=7680)
    height: int = Field(720, ge=16, le=4320)
    fps: float = Field(30.0, ge=1, le=240)
    frames: int = Field(300, ge=0, le=10_000_000, description="0 = endless")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    noise: float = Field(0.0, ge=0.0, le=0.5)


def _params(p: Any) -> PatternParams:
    return p if isinstance(p, PatternParams) else PatternParams.model_validate(p)


def _fill_rows(h: int, w: int, fn, chunk: int = 256) -> np.ndarray:
    """Build an HxWx3 uint8 image from fn(y column, x row, row slice) in row bands (bounded memory at 8K)."""
    out = np.empty((h, w, 3), np.uint8)
    x = np.arange(w, dtype=np.float32)[None, :]
    for y0 in range(0, h, chunk):
        rows = slice(y0, min(h, y0 + chunk))
        y = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
        out[rows] = np.clip(fn(y, x, rows), 0, 255).astype(np.uint8)
    return out


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(pts * ONE).astype(np.int32)


class _Scene:
    """The person's geometry over time; cheap to build (no image layers), shared by read and mask."""

    def __init__(self, p: PatternParams):
        self.w, self.h, self.fps = p.width, p.height, p.fps
        s = self.s = float(p.height)  # geometry is in units of the frame height
        rng = np.random.default_rng([p.seed, 1])
        self.phase = rng.uniform(0, TAU, 6)
        self.sway = 0.08 * self.w  # main sway amplitude; a second, faster sway adds half of it
        self.bob = 0.01 * s
        # Torso outline around the shoulder centre: rounded shoulders, sides going below the frame.
        a = np.linspace(math.pi, 1.5 * math.pi, 10)
        arc = np.stack([-0.17 + 0.085 * np.cos(a), 0.08 + 0.085 * np.sin(a)], 1)
        left = np.vstack([[-0.27, 1.2], arc, [-0.05, -0.035]])
        self.torso = np.vstack([left, left[::-1] * [-1, 1]]) * s
        self.neck = np.array([[-0.045, 0.0], [0.045, 0.0], [0.042, -0.13], [-0.042, -0.13]]) * s
        # Hair strands: angle on the hair outline, length, curl and sway phase, fixed by the seed.
        n = 28 if s >= 96 else 0  # below ~96 px strands would be sub-pixel mush
        self.strands = np.stack([rng.uniform(math.radians(175), math.radians(365), n),
                                 rng.uniform(0.02, 0.07, n) * s, rng.uniform(-0.03, 0.03, n) * s,
                                 rng.uniform(0, TAU, n)], 1)

    def offset(self, index: int) -> tuple[float, float]:
        t = index / self.fps
        ph = self.phase
        dx = self.sway * (math.sin(TAU * t / 5.0 + ph[0]) + 0.5 * math.sin(TAU * t / 2.3 + ph[1]))
        return dx, self.bob * math.sin(TAU * t / 2.5 + ph[2])

    def shapes(self, index: int, origin: tuple[int, int]) -> dict[str, Any]:
        """All primitives of frame `index` in 1/16-px fixed point, relative to `origin` (x, y)."""
        t = index / self.fps
        ph, s, h = self.phase, self.s, self.h
        dx, dy = self.offset(index)
        lean = 0.05 * math.sin(TAU * t / 5.0 + ph[0] - 0.6)  # the upper body follows the sway late
        tilt = math.radians(6.0) * math.sin(TAU * t / 3.1 + ph[3])
        sx, sy = 0.5 * self.w + dx, 0.70 * h + dy  # shoulder centre
        ox, oy = origin

        def place(pts):  # local -> frame (with lean: x shifts more the higher the point) -> origin
            pts = np.asarray(pts, np.float64) + [sx, sy]
            pts[:, 0] += lean * (h - pts[:, 1]) - ox
            pts[:, 1] -= oy
            return pts

        c, si = math.cos(tilt), math.sin(tilt)
        rot = np.array([[c, -si], [si, c]])
        pivot = np.array([0.0, -0.10 * s])  # top of the neck: the head turns about it
        neck = self.neck.copy()
        neck[2:] = (neck[2:] - pivot) @ rot.T + pivot
        head_c = pivot + rot @ [0.0, -0.10 * s]
        hair_c = head_c + rot @ [0.0, -0.03 * s]
        head_ax, hair_ax = (0.085 * s, 0.115 * s), (0.093 * s, 0.125 * s)
        ang = math.degrees(tilt)

        # strands grow out of the hair outline along its normal, curling with a lagged sway
        phi, length, curl, sph = (self.strands[:, i] for i in range(4))
        base = np.stack([hair_ax[0] * np.cos(phi), hair_ax[1] * np.sin(phi)], 1)
        normal = np.stack([np.cos(phi) / hair_ax[0], np.sin(phi) / hair_ax[1]], 1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        k = np.linspace(0, 1, 6)[None, :, None]
        wave = (curl * (1 + 0.6 * np.sin(TAU * t / 1.7 + sph)))[:, None, None]
        perp = np.stack([-normal[:, 1], normal[:, 0]], 1)[:, None, :]
        strands = base[:, None, :] + normal[:, None, :] * length[:, None, None] * k + perp * wave * k ** 2
        strands = strands @ rot.T + hair_c

        heads = place(np.array([head_c, hair_c]))
        return {
            "torso": _fixed(place(self.torso)), "neck": _fixed(place(neck)),
            "head": (tuple(_fixed(heads[0])), tuple(_fixed(np.array(head_ax))), ang),
            "hair": (tuple(_fixed(heads[1])), tuple(_fixed(np.array(hair_ax))), ang),
            "strands": [_fixed(place(st)) for st in strands],
        }

    def roi(self, index: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the frame region the person can touch in frame `index`, clipped."""
        dx, dy = self.offset(index)
        s = self.s
        cx, top = 0.5 * self.w + dx, 0.70 * s + dy - 0.52 * s  # hair + strands reach ~0.46 s up
        half = 0.36 * s  # shoulders 0.27 s + lean; the head with strands is narrower
        return (max(0, int(cx - half)), max(0, int(top)), min(self.w, int(cx + half) + 2), self.h)

    def draw_mask(self, index: int, roi) -> tuple[np.ndarray, dict[str, Any]]:
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        sh = self.shapes(index, (x0, y0))
        for poly in (sh["torso"], sh["neck"]):  # one call per shape: fillPoly XORs overlaps
            cv2.fillPoly(mask, [poly], 255, AA, SHIFT)
        c, ax, ang = sh["head"]
        cv2.ellipse(mask, c, ax, ang, 0, 360, 255, -1, AA, SHIFT)
        c, ax, ang = sh["hair"]
        cv2.ellipse(mask, c, ax, ang, HAIR_FROM, HAIR_TO, 255, -1, AA, SHIFT)
        cv2.polylines(mask, sh["strands"], False, 255, 1, AA, SHIFT)
        return mask, sh

    def mask(self, index: int) -> np.ndarray:
        out = np.zeros((self.h, self.w), np.float32)
        x0, y0, x1, y1 = roi = self.roi(index)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = self.draw_mask(index, roi)[0] * np.float32(1 / 255)
        return out


class PatternSource(Source):
    def __init__(self, p: PatternParams):
        self.p = p
        self.scene = _Scene(p)
        w, h = p.width, p.height
        self.info = SourceInfo(size=(w, h), fps=float(p.fps), frame_count=p.frames or None)
        rng = np.random.default_rng([p.seed, 2])
        # Static layers, built once: the wall (larger than the frame, it pans) and the shirt fabric
        # (offset so that it moves with the person).
        self.mx, self.my = max(2, round(0.04 * w)), max(2, round(0.04 * h))
        self.wall = self._wall(h + 2 * self.my, w + 2 * self.mx, rng)
        self.fx = math.ceil(1.5 * self.scene.sway) + 2
        self.fy = math.ceil(self.scene.bob) + 2
        self.fabric = self._fabric(h + 2 * self.fy, w + 2 * self.fx, rng)
        self.noise = None
        if p.noise > 0:
            # Fresh gaussian noise costs ~40 ms per 720p frame; instead draw each frame's noise
            # from a precomputed gaussian field at a per-frame offset.
            self.npad = 128
            field = rng.standard_normal((h + self.npad, w + self.npad, 3), dtype=np.float32)
            noise = np.clip(np.round(field * (p.noise * 255)), -255, 255)
            # its positive and negative parts as uint8: two saturating 8-bit adds (SIMD) give the
            # same bytes as one signed add through int16, about six times sooner
            self.noise = (noise.clip(0, 255).astype(np.uint8), (-noise).clip(0, 255).astype(np.uint8))
        self.cell = max(2, round(h / 60))

    def _wall(self, h: int, w: int, rng) -> np.ndarray:
        s = float(self.p.height)
        grain = cv2.GaussianBlur(rng.integers(0, 256, (h, w), np.uint8), (0, 0), 0.8)

        def fn(y, x, rows):
            u = (x / max(1, w - 1))[..., None]
            colour = np.where(u < 0.5, WALL[0] + (WALL[1] - WALL[0]) * (2 * u),
                              WALL[1] + (WALL[2] - WALL[1]) * (2 * u - 1))
            light = (1.1 - 0.45 * (y / h))[..., None]  # lit from above
            checker = (np.floor(x * 6 / s) + np.floor(y * 6 / s)) % 2
            stripes = np.sin(TAU * (x + y) * 24 / s)
            shade = 0.84 + 0.16 * checker + 0.08 * stripes
            g = grain[rows, :, None] * np.float32(1 / 255) - 0.5
            return colour * (light * shade[..., None]) + g * 36

        img = _fill_rows(h, w, fn)
        # a few round "lamps" and thin grid lines: sharp, high-contrast detail
        for _ in range(6):
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, 0.6 * h)))
            r = max(2, int(rng.uniform(0.02, 0.06) * s))
            cv2.circle(img, c, r, (200, 235, 245), -1, AA)
            cv2.circle(img, c, r, (40, 60, 70), max(1, r // 8), AA)
        step = max(4, round(s / 6))
        for x in range(0, w, step):
            cv2.line(img, (x, 0), (x, h), (35, 35, 35), 1)
        return img

    def _fabric(self, h: int, w: int, rng) -> np.ndarray:
        s = float(self.p.height)
        period = max(6.0, 0.05 * s)
        weave = rng.integers(0, 256, (h, w), np.uint8)

        def fn(y, x, rows):
            stripe = ((x % period) < 0.25 * period)[..., None]
            knit = (0.92 + 0.08 * np.sin(TAU * y / 4.0))[..., None]  # fine horizontal ribs
            g = weave[rows, :, None] * np.float32(1 / 255) - 0.5
            return np.where(stripe, SHIRT_STRIPE, SHIRT) * knit + g * 24

        return _fill_rows(h, w, fn)

    def read(self, index: int) -> np.ndarray:
        p, sc = self.p, self.scene
        if p.frames and index >= p.frames:
            raise EndOfStream
        w, h = p.width, p.height
        t = index / p.fps
        ox = self.mx + round(self.mx * math.sin(TAU * t / 14.0 + sc.phase[4]))
        oy = self.my + round(self.my * math.sin(TAU * t / 9.0 + sc.phase[5]))
        out = self.wall[oy:oy + h, ox:ox + w].copy()  # a fresh array per frame: the caller may keep it

        x0, y0, x1, y1 = roi = sc.roi(index)
        if x1 > x0 and y1 > y0:
            mask, sh = sc.draw_mask(index, roi)
            dx, dy = sc.offset(index)
            fx, fy = self.fx - round(dx), self.fy - round(dy)
            colour = self.fabric[fy + y0:fy + y1, fx + x0:fx + x1].copy()
            # Skin and hair are drawn 1-2 px wider than the mask so that the mask's soft edge
            # blends pure skin/hair with the wall, not a fringe of shirt fabric.
            cv2.fillPoly(colour, [sh["neck"]], SKIN, AA, SHIFT)
            cv2.polylines(colour, [sh["neck"]], True, SKIN, 3, AA, SHIFT)
            c, ax, ang = sh["head"]
            cv2.ellipse(colour, c, ax, ang, 0, 360, SKIN, -1, AA, SHIFT)
            cv2.ellipse(colour, c, ax, ang, 0, 360, SKIN, 3, AA, SHIFT)
            c, ax, ang = sh["hair"]
            cv2.ellipse(colour, c, ax, ang, HAIR_FROM, HAIR_TO, HAIR, -1, AA, SHIFT)
            cv2.ellipse(colour, c, ax, ang, HAIR_FROM, HAIR_TO, HAIR, 3, AA, SHIFT)
            cv2.polylines(colour, sh["strands"], False, HAIR, 3, AA, SHIFT)
            _blend(colour, out[y0:y1, x0:x1], mask)

        self._draw_marks(out, index)
        if self.noise is not None:
            rng = np.random.default_rng([p.seed, 3, index])
            ny, nx = rng.integers(0, self.npad + 1, 2)  # 129^2 different noise frames
            up, down = (n[ny:ny + h, nx:nx + w] for n in self.noise)
            out = cv2.subtract(cv2.add(out, up), down)  # each pixel has one of the two, the other is 0
        return out

    def _draw_marks(self, out: np.ndarray, index: int) -> None:
        h, w = out.shape[:2]
        c = self.cell
        if _code_fits(w, h, c):
            cv2.rectangle(out, (c // 2, c // 2), (c * (CODE_BITS + 3) - c // 2, 2 * c + c // 2),
                          (128, 128, 128), -1)
            for k, bit in enumerate(_code_bits(index)):
                cv2.rectangle(out, (c * (k + 1), c), (c * (k + 2) - 1, 2 * c - 1),
                              (255, 255, 255) if bit else (0, 0, 0), -1)
        if h >= 120:
            scale, thick = h / 720 * 0.9, max(1, round(h / 360))
            org = (c, 4 * c)
            text = f"{index:06d}"
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, AA)
        # a marker stepping one cell per frame along the bottom edge
        steps = max(1, (w - 2 * c) // c)
        x = c * (index % steps) + c // 2
        cv2.rectangle(out, (x, h - 2 * c), (x + c - 1, h - c - 1), (0, 230, 255), -1)


def _blend(colour: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> None:
    """dst = colour over dst through mask (uint8 0..255), in place: copied where the mask is full,
    blended in float only on its soft edge (a few thousand pixels, not the whole person)."""
    cv2.copyTo(colour, cv2.compare(mask, 254, cv2.CMP_GT), dst)
    ys, xs = np.nonzero((mask > 0) & (mask < 255))
    a = (mask[ys, xs].astype(np.float32) * np.float32(1 / 255))[:, None]
    dst[ys, xs] = np.rint(colour[ys, xs] * a + dst[ys, xs] * (1 - a)).astype(np.uint8)


def _code_fits(w: int, h: int, c: int) -> bool:
    return c >= 3 and c * (CODE_BITS + 3) <= w and 3 * c <= h


def _code_bits(index: int) -> list[int]:
    """White guard, 24 bits of the index (most significant first), black guard."""
    return [1] + [(index >> (CODE_BITS - 1 - k)) & 1 for k in range(CODE_BITS)] + [0]


def decode_index(params: Any, frame: np.ndarray) -> int | None:
    """The frame index written in the code cells of `frame` (BGR, RGB(A) or grey), None if unreadable."""
    p = _params(params)
    c = max(2, round(p.height / 60))
    h, w = frame.shape[:2]
    if (w, h) != (p.width, p.height) or not _code_fits(w, h, c):
        return None
    grey = frame if frame.ndim == 2 else frame[..., :3].mean(axis=2)
    m = max(1, c // 4)  # sample cell centres: lossy codecs smear the cell edges
    values = [grey[c + m:2 * c - m, c * (k + 1) + m:c * (k + 2) - m].mean() for k in range(CODE_BITS + 2)]
    bits = [int(v > 127.5) for v in values]
    if bits[0] != 1 or bits[-1] != 0:
        return None
    return int("".join(map(str, bits[1:-1])), 2)


@functools.lru_cache(maxsize=4)
def _scene(key: str) -> _Scene:
    return _Scene(PatternParams.model_validate_json(key))


def mask(params: Any, index: int) -> np.ndarray:
    """Ground-truth person coverage of frame `index`: HxW float32 in [0,1] (soft at edges and hair)."""
    return _scene(_params(params).model_dump_json()).mask(index)


def open_pattern(p: PatternParams, ctx: OpenContext) -> PatternSource:
    return PatternSource(p)


SPEC = NodeSpec(
    type="pattern", category="source", role="source", Params=PatternParams, doc=__doc__,
    outputs=(Port("out", "video"),), open=open_pattern,
    extra={"mask": mask, "decode_index": decode_index},
)
