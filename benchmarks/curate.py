"""Curation throughput: `lvd curate --stages shots,motion` on 1 and 2 CPUs against the
analysis functions in one plain process, on the same files.

    .venv/bin/python benchmarks/curate.py [--videos 16] [--seconds 60] [--size 640x360]

Generates a corpus of textured, panning H.264 videos with cuts, then times:

  plain       curate.analyze.analyze_video over every file, sequentially, in one process
              (FFmpeg decode threads: automatic, so the decoder alone uses both cores)
  plain-1thr  the same with one decode thread (one process on one core)
  ray-1cpu    the Ray Data pipeline (isolated child per video, shards written) on 1 CPU
  ray-2cpu    the same on 2 CPUs
  ray-2cpu-vN the same with pipeline.videos_per_task = N (--videos-per-task N,...)

Each Ray run starts its own local Ray in a fresh process and warms it up on a video
per CPU first; the timed figure excludes that start-up (Ray, its worker processes and
their analysis helpers: printed separately), which a corpus of any real size amortises. Prints
videos/s, the realtime factor (video seconds analysed per wall second) and each run's
throughput over the plain process's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.encode import write_video  # noqa: E402


def make_corpus(folder: Path, videos: int, seconds: float, width: int, height: int) -> float:
    """Videos of 3 shots each (a texture panned at different speeds), cut together."""
    rng = np.random.default_rng(0)
    fps = 24
    for v in range(videos):
        frames = []
        for shot in range(3):
            tex = cv2.resize(
                (rng.random((height // 6, width // 3, 3)) * 255).astype(np.uint8),
                (width * 2, height),
                interpolation=cv2.INTER_CUBIC,
            )
            speed = [0.0, 1.5, 4.0][(v + shot) % 3]
            n = int(seconds * fps / 3)
            for i in range(n):
                x = int(i * speed) % width
                frames.append(tex[:, x : x + width])
        write_video(folder / f"v{v:03d}.mp4", frames, fps, crf=23)
    return videos * seconds


def run_child(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


PLAIN = """
import json, sys, time
from pathlib import Path
from curate.analyze import analyze_video
from curate.config import CurateConfig
files = sorted(Path({folder!r}).glob("*.mp4"))
cfg = CurateConfig()
cfg.decode.threads = {threads}
t = time.perf_counter()
clips = sum(len(analyze_video(str(f), cfg).clips) for f in files)
print(json.dumps({{"wall_s": time.perf_counter() - t, "clips": clips}}))
"""

RAY = """
import json, time
from pathlib import Path
from curate.config import CurateConfig
from pipelines.curation.command import curate_videos
from pipelines.curation.inputs import list_inputs
from pipelines.common.ray_start import start_ray
from pipelines.common import shards
cfg = CurateConfig()
if {per_task}:
    cfg.pipeline.videos_per_task = {per_task}
t0 = time.perf_counter()
start_ray(None, {cpus}, 0)
items = list_inputs([{folder!r}]).items
# Warm up: Ray's first dataset starts worker processes (~2 s) and each worker its
# analysis helper; a corpus of real size pays that once, so it is timed apart.
warm = Path({out!r} + "-warmup")
shards.prepare(warm)
curate_videos(items[: 4 * {cpus}], cfg, ["shots", "motion"], warm, progress=False)
startup = time.perf_counter() - t0
out = Path({out!r})
shards.prepare(out)
t = time.perf_counter()
stats = curate_videos(items, cfg, ["shots", "motion"], out, progress=False)
print(json.dumps({{"wall_s": time.perf_counter() - t, "startup_s": startup,
                  "clips": stats.clips}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument(
        "--videos-per-task", default="", help="extra 2-CPU runs at these values (e.g. 4,8)"
    )
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="lvd-curate-bench-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    video_s = make_corpus(corpus, args.videos, args.seconds, width, height)
    print(f"corpus: {args.videos} videos, {video_s:.0f} s of {args.size} H.264 at 24 fps")

    results = {
        "plain": run_child(PLAIN.format(folder=str(corpus), threads=0)),
        "plain-1thr": run_child(PLAIN.format(folder=str(corpus), threads=1)),
    }
    runs = [(f"ray-{cpus}cpu", cpus, 0) for cpus in (1, 2)]
    runs += [(f"ray-2cpu-v{n}", 2, int(n)) for n in args.videos_per_task.split(",") if n]
    for name, cpus, per_task in runs:
        results[name] = run_child(
            RAY.format(folder=str(corpus), out=str(tmp / name), cpus=cpus, per_task=per_task)
        )
    base = results["plain"]["wall_s"]
    print(
        f"{'run':12s} {'wall s':>8s} {'videos/s':>9s} {'realtime x':>11s} {'vs plain':>9s}"
        f" {'clips':>6s} {'start-up s':>11s}"
    )
    for name, r in results.items():
        print(
            f"{name:12s} {r['wall_s']:8.2f} {args.videos / r['wall_s']:9.2f} "
            f"{video_s / r['wall_s']:11.1f} {base / r['wall_s']:9.2f} {r['clips']:6d} "
            f"{r.get('startup_s', 0):11.1f}"
        )


if __name__ == "__main__":
    main()
