"""All benchmarks in one run: `./fg bench` (or `python -m benchmarks.run [--soak-frames N]`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (audio_quality, background, batch, editor, fusion, live, nn, shader, soak,  # noqa: E402
                        video_denoise)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=["fusion", "shader", "background", "soak", "video_denoise", "audio", "batch",
                                       "editor", "live", "nn"],
                    help="run one benchmark")
    ap.add_argument("--soak-frames", type=int, default=10_000)
    ap.add_argument("--address", help="batch: a Ray cluster to measure (default: a local one of 2 CPUs)")
    args = ap.parse_args()
    if args.only in (None, "fusion"):
        fusion.run()
    if args.only in (None, "shader"):
        shader.run()
    if args.only in (None, "background"):
        background.run()
    if args.only in (None, "video_denoise"):
        video_denoise.run()
    if args.only in (None, "soak"):
        soak.run(frames=args.soak_frames)
    if args.only in (None, "audio"):
        audio_quality.run()
    if args.only in (None, "batch"):
        batch.run(address=args.address)
    if args.only in (None, "editor"):
        editor.run()
    if args.only in (None, "live"):
        live.run()
    if args.only in (None, "nn"):
        nn.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
