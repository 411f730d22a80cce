"""Video denoise against the tools a user would otherwise pick (FFmpeg's bm3d, nlmeans, hqdn3d;
OpenCV's NL-means; a Gaussian blur), on clips made from real photos (a slow pan and zoom, a fast
disc) with Gaussian noise of 10 and 20 levels and sensor noise: PSNR, SSIM, the moving disc's
PSNR, ms/frame at 1280x720; ours with its defaults, the peers tuned per noise level. Then smear
on a moving edge and fused vs unfused. `./fg bench --only video_denoise`

The helpers here (frames from arrays, a moving bar, PSNR, edge figures) are shared with
tests/test_video_denoise.py, so tests and benchmark measure the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import median, table, time_frames  # noqa: E402
from benchmarks.denoise_clips import NOISES, PHOTOS, pan_zoom_clip  # noqa: E402
from benchmarks.denoise_peers import PEERS, available, ms_per_frame, tune  # noqa: E402
from fusegraph.nodes.pattern import PatternParams, PatternSource  # noqa: E402
from fusegraph.nodes.contract import EndOfStream, Source, SourceInfo  # noqa: E402
from fusegraph.runtime.engine import Engine  # noqa: E402
from fusegraph.runtime.gpu import Gpu  # noqa: E402
from fusegraph.runtime.loader import parse_graph  # noqa: E402


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


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a[..., :3], b[..., :3], channel_axis=-1, data_range=255))


def region_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    err = np.mean((a[..., :3][mask].astype(np.float64) - b[..., :3][mask]) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(err, 1e-12))


def scores(outs, clip, skip: int) -> tuple[float, float, float]:
    """Mean PSNR, SSIM and PSNR on the moving disc, over the frames from `skip` on."""
    pairs = list(zip(outs, clip.clean, clip.moving))[skip:]
    return (float(np.mean([psnr(o, c) for o, c, _ in pairs])), float(np.mean([ssim(o, c) for o, c, _ in pairs])),
            float(np.mean([region_psnr(o, c, m) for o, c, m in pairs])))


def compare(gpu: Gpu, n: int = 24, skip: int = 10, size: tuple[int, int] = (640, 360)) -> dict:
    """Ours (defaults) and the peers (tuned on the first clip per noise) on every clip and noise."""
    clips = [pan_zoom_clip(name, size, n) for name in PHOTOS]
    peers = [p for p in PEERS if available(p)]
    missing = [p.name for p in PEERS if not available(p)]
    res: dict = {}  # (method, noise) -> list of (psnr, ssim, moving psnr), one per clip
    tuned: dict = {}
    for noise_name, make in NOISES.items():
        noisy_clips = [make(c.clean) for c in clips]
        level = float(np.std(np.concatenate([(nz.astype(np.float64) - c).ravel()[::7]  # the peers' scale
                                             for noisy, clip in zip(noisy_clips, clips)
                                             for nz, c in zip(noisy, clip.clean)])))
        for clip, noisy in zip(clips, noisy_clips):
            res.setdefault(("noisy input", noise_name), []).append(scores(noisy, clip, skip))
            res.setdefault(("video_denoise (defaults)", noise_name), []).append(scores(run_frames(noisy, {}, gpu), clip, skip))
        probe = slice(skip, skip + 3)
        for peer in peers:
            strength = tune(peer, noisy_clips[0][probe], clips[0].clean[probe], level,
                            lambda o, c: float(np.mean([psnr(a, b) for a, b in zip(o, c)])))
            tuned[(peer.name, noise_name)] = strength
            for clip, noisy in zip(clips, noisy_clips):
                frames = noisy if peer.causal == "yes" else noisy[skip:]  # per-frame peers: only what is scored
                outs = peer.run(frames, strength)
                res.setdefault((peer.name, noise_name), []).append(
                    scores(outs if peer.causal == "yes" else [None] * skip + outs, clip, skip))
        print(f"  {noise_name}: noise deviation {level:.1f} levels; done", flush=True)
    # speed at 1280x720: ours through the engine, the peers on the same frames: the first clip
    # made at 720p, the noise added there (as a camera's: upscaled noise is smooth blobs, which
    # the noise estimate under-reads, and half the blocks then chase the noise)
    big = NOISES["sigma10"](pan_zoom_clip(PHOTOS[0], (1280, 720), 12).clean)
    engine = array_engine(big, {}, gpu)
    try:
        ours_ms = median(time_frames(engine, 8, warmup=3))
    finally:
        engine.close()
    speed = {"video_denoise (defaults)": ours_ms}
    for peer in peers:
        speed[peer.name] = ms_per_frame(peer, big[:3], tuned[(peer.name, "sigma10")])
    methods = ["noisy input", "video_denoise (defaults)"] + [p.name for p in peers]
    rows = [["", *[f"{k} PSNR / SSIM" for k in NOISES], *[f"{k} moving" for k in NOISES], "causal",
             "ms/frame 720p", "vs ours"]]
    for m in methods:
        cells = [f"{np.mean([r[0] for r in res[(m, k)]]):.2f} / {np.mean([r[1] for r in res[(m, k)]]):.3f}"
                 for k in NOISES]
        cells += [f"{np.mean([r[2] for r in res[(m, k)]]):.2f}" for k in NOISES]
        causal = "" if m == "noisy input" else "yes" if m.startswith("video_denoise") else next(
            p.causal for p in peers if p.name == m)
        ms = f"{speed[m]:.0f}" if m in speed else ""
        ratio = f"{speed[m] / ours_ms:.1f}x" if m in speed else ""
        rows.append([m, *cells, causal, ms, ratio])
    print(f"\n== denoisers on {len(clips)} real-photo clips ({', '.join(PHOTOS)}; {size[0]}x{size[1]}, {n} frames, "
          f"slow pan and zoom, a disc crossing at 11 px/frame), frames {skip}-{n - 1}, mean over clips ==")
    print(table(rows))
    print("peers tuned (best PSNR of a few strengths on 3 frames of the first clip): " + "; ".join(
        f"{k[0]} {k[1]} {v:.2f}" for k, v in tuned.items()))
    if missing:
        print(f"not run (no ffmpeg on PATH): {', '.join(missing)}")
    return {"scores": res, "ms": speed}


def run(size: tuple[int, int] = (1280, 720), rounds: int = 4, frames: int = 8) -> dict:
    sigma = 10.0
    noise = sigma / 255.0
    gpu = Gpu()
    result: dict = compare(gpu)
    # smear: a bar moving 6 px/frame
    bclean, bnoisy = moving_bar((320, 96), 24, 6.0, sigma)
    rows = [["params", "edge position err px", "edge widening px", "edge-band MAE", "noisy edge-band MAE"]]
    base = smear(bnoisy, bclean)
    s = smear(run_frames(bnoisy, {}, gpu), bclean)
    rows.append(["defaults", f"{s['position_px']:.2f}", f"{s['widening_px']:+.2f}", f"{s['edge_mae']:.2f}",
                 f"{base['edge_mae']:.2f}"])
    result["smear"] = s
    print("\n== moving edge: a bar crossing at 6 px/frame (320x96), noise 10 levels; clean edge 10-90% width "
          f"{edges(bclean[-1])[2]:.2f} px ==")
    print(table(rows))
    # speed at 720p, fused and unfused side by side
    graphs = {fuse: Engine(parse_graph(denoise_doc({}, size, noise, frames=0)), gpu=gpu, fuse=fuse, profile=True)
              for fuse in (True, False)}  # profile: glFinish per step
    for e in graphs.values():
        e.open()
    times: dict = {k: [] for k in graphs}
    gpu_ms: dict = {k: [] for k in graphs}
    steps: dict = {}
    for r in range(rounds):  # alternating, so both see the same machine load
        for k, e in graphs.items():
            for ms in time_frames(e, frames, warmup=2, start=r * (frames + 2)):
                times[k].append(ms)
                gpu_ms[k].append(sum(e.timings[s.name].ms for s in e.plan.passes))
                if k:
                    for st in e.plan.steps:
                        if st.name in e.timings and not st.name.startswith(("upload", "sink", "state")):
                            steps.setdefault(st.name, []).append(e.timings[st.name].ms)
    rows = [["mode", "passes", "ms/frame", "denoiser GPU passes ms", "vs fused"]]
    f = median(gpu_ms[True])
    for fuse in (True, False):
        rows.append(["fused" if fuse else "unfused", str(len(graphs[fuse].plan.passes)), f"{median(times[fuse]):.1f}",
                     f"{median(gpu_ms[fuse]):.1f}", f"{median(gpu_ms[fuse]) / f:.2f}x"])
    result["ms fused/unfused"] = (median(times[True]), median(times[False]))
    for e in graphs.values():
        e.close()
    print(f"\n== speed: pattern {size[0]}x{size[1]} (noisy) -> video_denoise -> preview, median of "
          f"{rounds * frames} frames (a frame also holds the pattern's drawing and noise, the upload, "
          f"the read-back) ==")
    print(table(rows))
    print("fused, per step (ms, median): " + ", ".join(f"{k} {median(v):.1f}" for k, v in steps.items()))
    gpu.release()
    return result


if __name__ == "__main__":
    run()
