"""Memory of one video's analysis against the video's length: 1 minute vs 60 minutes.

    .venv/bin/python benchmarks/long_video.py [--minutes 1 60] [--size 320x180]

Generates H.264 videos of the given lengths (textured pans and still takes, cut every
2-40 s, some takes longer than max_clip_s so they are split), then analyses each in a
fresh process (decode once; shots, motion, keyframes; what `lvd curate` runs per video)
and prints the process's peak RSS, its wall time and the clips found. Target (issue 9):
the 60-minute video within 1.5x the peak RSS of the 1-minute one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.encode import write_video  # noqa: E402

FPS = 24


def make_video(path: Path, minutes: float, width: int, height: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * FPS)

    def frames():
        n = 0
        while n < total:
            length = min(total - n, int(rng.uniform(2, 40) * FPS))
            tex = cv2.resize(
                (rng.random((height // 6, width // 3, 3)) * 255).astype(np.uint8),
                (width * 3, height),
                interpolation=cv2.INTER_CUBIC,
            )
            speed = rng.choice([0.0, 0.5, 2.0])
            for i in range(length):
                x = int(i * speed) % (2 * width)
                yield tex[:, x : x + width]
            n += length

    write_video(path, frames(), FPS, crf=28)


CHILD = """
import json, resource, sys, time
from curate.analyze import analyze_video
from curate.config import CurateConfig
t = time.perf_counter()
a = analyze_video(sys.argv[1], CurateConfig())
print(json.dumps({"wall_s": time.perf_counter() - t, "frames": a.frames_decoded,
                  "clips": len(a.clips),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 60])
    ap.add_argument("--size", default="320x180")
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="lvd-long-"))
    rows = []
    for minutes in args.minutes:
        path = tmp / f"long_{minutes:g}min.mp4"
        t = time.perf_counter()
        make_video(path, minutes, width, height)
        made = time.perf_counter() - t
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((minutes, r))
        print(
            f"{minutes:6g} min  {r['frames']:8d} frames  {r['clips']:5d} clips  "
            f"peak RSS {r['peak_rss_mib']:7.1f} MiB  analysis {r['wall_s']:7.1f} s  "
            f"(generated in {made:.0f} s)",
            flush=True,
        )
    base = rows[0][1]["peak_rss_mib"]
    for minutes, r in rows[1:]:
        print(f"peak RSS {minutes:g} min / {rows[0][0]:g} min: {r['peak_rss_mib'] / base:.2f}x")


if __name__ == "__main__":
    main()
