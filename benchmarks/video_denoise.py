"""Video denoise: PSNR of a noisy pattern before and after, smear on a moving edge, ms/frame at
1280x720 fused vs unfused (measured side by side in one run). `./fg bench --only video_denoise`

The helpers here (frames from arrays, a moving bar, PSNR, edge figures) are shared with
tests/test_video_denoise.py, so tests and benchmark measure the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import median, table, time_frames  # noqa: E402
from fusegraph.nodes.pattern import PatternParams, PatternSource  # noqa: E402
from fusegraph.nodes.spec import EndOfStream, Source, SourceInfo  # noqa: E402
from fusegraph.runtime.engine import Engine  # noqa: E402
from fusegraph.runtime.gpu import Gpu  # noqa: E402
from fusegraph.runtime.graph import parse_graph  # noqa: E402


class ArraySource(Source):
    """Frames given as HxWx3 RGB uint8 arrays (tests, benchmarks)."""

    def __init__(self, frames: list[np.ndarray]):
        self.frames = frames
        h, w = frames[0].shape[:2]
        self.info = SourceInfo((w, h), 30.0, len(frames))

    def read(self, index: int) -> np.ndarray:
        if index >= len(self.frames):
            raise EndOfStream
        return np.ascontiguousarray(self.frames[index][..., ::-1])  # sources give BGR


def denoise_doc(params: dict, size: tuple[int, int], noise: float = 0.0, frames: int = 300) -> dict:
    """pattern -> video_denoise -> preview (the pattern's `noise` simulates a camera's)."""
    w, h = size
    return {"format": 2, "nodes": [
        {"id": "src", "type": "pattern", "params": {"width": w, "height": h, "noise": noise, "frames": frames}},
        {"id": "dn", "type": "video_denoise", "params": params},
        {"id": "view", "type": "preview", "params": {"max_width": 3840}},
    ], "links": [{"from": "src.out", "to": "dn.in"}, {"from": "dn.out", "to": "view.in"}]}


def array_engine(frames: list[np.ndarray], params: dict, gpu: Gpu | None = None, fuse: bool = True) -> Engine:
    """An opened engine running video_denoise on the given RGB frames."""
    h, w = frames[0].shape[:2]
    engine = Engine(parse_graph(denoise_doc(params, (w, h), frames=len(frames))), gpu=gpu, fuse=fuse)
    engine._open_source = lambda node_id: ArraySource(frames)  # the pattern's place, these frames
    engine.open()
    return engine


def run_frames(frames: list[np.ndarray], params: dict, gpu: Gpu | None = None, fuse: bool = True) -> list[np.ndarray]:
    """The denoised frames (HxWx4 RGBA uint8), one per input frame."""
    engine = array_engine(frames, params, gpu, fuse)
    try:
        out = []
        for i in range(len(frames)):
            assert engine.process(i)
            out.append(np.array(engine.sinks["view"].last))
        return out
    finally:
        engine.close()


def pattern_frames(size: tuple[int, int], n: int, noise: float, start: int = 0) -> list[np.ndarray]:
    """Frames of the pattern source (RGB uint8), with its seeded sensor noise."""
    src = PatternSource(PatternParams(width=size[0], height=size[1], noise=noise, frames=0))
    return [np.ascontiguousarray(src.read(start + i)[..., ::-1]) for i in range(n)]


def moving_bar(size: tuple[int, int], n: int, speed: float, sigma: float, seed: int = 0):
    """A bright vertical bar (anti-aliased edges) crossing a mid-grey textured field at `speed`
    px/frame; (clean frames, noisy frames) RGB uint8, noise of std `sigma` (8-bit units)."""
    w, h = size
    rng = np.random.default_rng(seed)
    x = np.arange(w) + 0.5
    field = 90 + 10 * np.sin(x / 9.0)[None, :] + 6 * np.cos(np.arange(h) / 7.0)[:, None]
    clean, noisy = [], []
    for i in range(n):
        left = w * 0.15 + speed * i
        cover = np.clip(x - left + 0.5, 0, 1) * np.clip(left + w * 0.2 - x + 0.5, 0, 1)
        img = field * (1 - cover) + 200 * cover
        img = np.repeat(img[..., None], 3, axis=2) * np.array([1.0, 0.95, 0.9])
        c = np.clip(np.round(img), 0, 255).astype(np.uint8)
        clean.append(c)
        noisy.append(np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8))
    return clean, noisy


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = np.mean((a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(err, 1e-12))


def edges(img: np.ndarray) -> tuple[float, float, float]:
    """Of a moving-bar frame: (left edge x, right edge x, 10-90% width of the left edge), from the
    column profile averaged over rows (noise averages out), subpixel by linear interpolation."""
    prof = img[..., :3].astype(np.float64).mean(axis=(0, 2))
    lo, hi = np.median(prof[: len(prof) // 10]), prof.max()

    def cross(level: float, rising: bool) -> float:
        idx = np.nonzero(prof >= level)[0]
        i = idx[0] if rising else idx[-1]
        j = i - 1 if rising else i + 1
        return i + (level - prof[i]) / (prof[j] - prof[i]) * (j - i) + 0.5 if 0 <= j < len(prof) else float(i)

    mid = (lo + hi) / 2
    left, right = cross(mid, True), cross(mid, False)
    width = cross(lo + 0.9 * (hi - lo), True) - cross(lo + 0.1 * (hi - lo), True)
    return left, right, width


def smear(outs: list[np.ndarray], clean: list[np.ndarray], skip: int = 5) -> dict:
    """Moving-edge figures over the frames after `skip`: the worst edge position error (px), the
    worst widening of the leading edge (px), the mean abs error in a 12 px band around the edges."""
    pos, widen, band = [], [], []
    for o, c in list(zip(outs, clean))[skip:]:
        lo_, ro, wo = edges(o)
        lc, rc, wc = edges(c)
        pos.append(max(abs(lo_ - lc), abs(ro - rc)))
        widen.append(wo - wc)
        cols = np.zeros(c.shape[1], bool)
        for e in (lc, rc):
            cols[max(0, int(e) - 6):int(e) + 6] = True
        band.append(np.abs(o[:, cols, :3].astype(float) - c[:, cols, :3].astype(float)).mean())
    return {"position_px": max(pos), "widening_px": max(widen), "edge_mae": float(np.mean(band))}


def run(size: tuple[int, int] = (1280, 720), rounds: int = 4, frames: int = 8) -> dict:
    sigma = 10.0
    noise = sigma / 255.0
    gpu = Gpu()
    result: dict = {}
    # quality: the pattern (person swaying, wall panning) with sensor noise, against the clean one
    n = 40
    clean = pattern_frames((640, 360), n, 0.0)
    noisy = pattern_frames((640, 360), n, noise)
    rows = [["params", "PSNR noisy dB", "PSNR out dB", "gain dB"]]
    for params in ({"sigma": sigma}, {"sigma": sigma, "spatial": 0.6}):
        outs = run_frames(noisy, params, gpu)
        p_in = np.mean([psnr(a, b) for a, b in zip(noisy[10:], clean[10:])])
        p_out = np.mean([psnr(a, b) for a, b in zip(outs[10:], clean[10:])])
        rows.append([str(params), f"{p_in:.2f}", f"{p_out:.2f}", f"{p_out - p_in:+.2f}"])
        result[f"psnr_gain spatial={params.get('spatial', 0)}"] = p_out - p_in
    print(f"\n== video_denoise: pattern 640x360 + gaussian noise sigma {sigma:.0f}/255, frames 10-{n - 1} ==")
    print(table(rows))
    # smear: a bar moving 6 px/frame
    bclean, bnoisy = moving_bar((320, 96), 24, 6.0, sigma)
    rows = [["params", "edge position err px", "edge widening px", "edge-band MAE", "noisy edge-band MAE"]]
    base = smear(bnoisy, bclean)
    for params in ({"sigma": sigma}, {"sigma": sigma, "spatial": 0.6}):
        s = smear(run_frames(bnoisy, params, gpu), bclean)
        rows.append([str(params), f"{s['position_px']:.2f}", f"{s['widening_px']:+.2f}", f"{s['edge_mae']:.2f}",
                     f"{base['edge_mae']:.2f}"])
        result[f"smear spatial={params.get('spatial', 0)}"] = s
    print("\n== moving edge: a bar crossing at 6 px/frame (320x96), same noise; clean edge 10-90% width "
          f"{edges(bclean[-1])[2]:.2f} px ==")
    print(table(rows))
    # speed at 720p, fused and unfused side by side
    graphs = {}
    for params in ({"sigma": sigma}, {"sigma": sigma, "spatial": 0.6}):
        for fuse in (True, False):
            graphs[(str(params), fuse)] = Engine(parse_graph(denoise_doc(params, size, noise, frames=0)),
                                                 gpu=gpu, fuse=fuse, profile=True)  # glFinish per step
    for e in graphs.values():
        e.open()
    times: dict = {k: [] for k in graphs}
    gpu_ms: dict = {k: [] for k in graphs}
    for r in range(rounds):  # alternating, so all see the same machine load
        for k, e in graphs.items():
            for ms in time_frames(e, frames, warmup=2, start=r * (frames + 2)):
                times[k].append(ms)
                gpu_ms[k].append(sum(e.timings[s.name].ms for s in e.plan.passes))
    rows = [["params", "mode", "passes", "ms/frame", "denoiser GPU passes ms", "vs fused"]]
    for params in ({"sigma": sigma}, {"sigma": sigma, "spatial": 0.6}):
        f = median(gpu_ms[(str(params), True)])
        for fuse in (True, False):
            k = (str(params), fuse)
            rows.append([str(params), "fused" if fuse else "unfused", str(len(graphs[k].plan.passes)),
                         f"{median(times[k]):.1f}", f"{median(gpu_ms[k]):.1f}", f"{median(gpu_ms[k]) / f:.2f}x"])
        result[f"ms spatial={params.get('spatial', 0)}"] = (median(times[(str(params), True)]),
                                                             median(times[(str(params), False)]))
    for e in graphs.values():
        e.close()
    print(f"\n== speed: pattern {size[0]}x{size[1]} (noisy) -> video_denoise -> preview, median of "
          f"{rounds * frames} frames (a frame also holds the pattern's drawing and noise, the upload, "
          f"the read-back) ==")
    print(table(rows))
    gpu.release()
    return result


if __name__ == "__main__":
    run()
