"""Export throughput: clips/s of `lvd export` and its share of stream-copied clips, on
the benchmark corpus (benchmarks/corpus.py), beside re-encoding every clip (what a
user would otherwise script with ffmpeg's -ss/-frames).

The corpus is curated once (--stages shots: export needs clip spans only); each format
is then exported into a fresh folder. Figures are ratios within one run.

    python -m benchmarks.export [--corpus DIR] [--workers 2] [--formats clips,webdataset]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from pipelines.cli import main as lvd
from pipelines.common import shards
from pipelines.export.cutter import ClipCutter


def curated(corpus: Path, work: Path) -> Path:
    if not any(corpus.glob("*.mp4")):
        from benchmarks.corpus import generate

        generate(corpus, seed=0)
    run = work / "run"
    assert (
        lvd(["curate", str(corpus), "--out", str(run), "--stages", "shots", "--preset", "tiny"])
        == 0
    )
    return run


def reencode_all_s(run: Path) -> tuple[float, int]:
    """Every clip decoded from its keyframe and re-encoded, in this process."""
    rows = shards.read_table(run / "clips", ["video_path", "start_frame", "end_frame"]).to_pylist()
    t0 = time.perf_counter()
    cutters: dict[str, ClipCutter] = {}
    for r in rows:
        c = cutters.setdefault(r["video_path"], ClipCutter(r["video_path"]))
        c.reencode(r["start_frame"], r["end_frame"])
    return time.perf_counter() - t0, len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/tmp/lvd-shots/seed0")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--formats", default="clips,webdataset,opensora,cogvideox")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lvd-export-bench-"))
    try:
        run = curated(Path(args.corpus), work)
        print(f"{'format':<12} {'clips':>6} {'s':>7} {'clips/s':>8} {'copied':>7}")
        for fmt in args.formats.split(","):
            dest = work / fmt
            t0 = time.perf_counter()
            lvd(
                [
                    "export",
                    str(run),
                    "--format",
                    fmt,
                    "--out",
                    str(dest),
                    "--workers",
                    str(args.workers),
                ]
            )
            wall = time.perf_counter() - t0
            info = json.loads((dest / "run.json").read_text())
            n = info["exported_now"]
            print(f"{fmt:<12} {n:>6} {wall:>7.1f} {n / wall:>8.2f} {info['copied_share']:>7.1%}")
        one = work / "one"
        t0 = time.perf_counter()
        lvd(["export", str(run), "--format", "clips", "--out", str(one), "--workers", "1"])
        ours_1 = time.perf_counter() - t0
        base_s, n = reencode_all_s(run)
        print(
            f"one process: lvd export {n / ours_1:.2f} clips/s, re-encode every clip "
            f"{n / base_s:.2f} clips/s ({base_s / ours_1:.2f}x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
