"""The curate driver is not the data path: its peak RSS as the corpus grows.

Lists N inputs in a list file and runs the real `lvd curate` over them in a child
process (local Ray, --stages shots), then reads the driver's own peak RSS (VmHWM) from
run.json. The inputs are paths that do not exist, so every video becomes an error row
in a few milliseconds: what grows with N is what the driver holds per input (the list,
the resume set, the commit records), not decoding. Clip rows never reach the driver
(workers write the clips shards), so this measures everything that does.

    python -m benchmarks.driver_memory [--sizes 1000,100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(n: int, folder: Path) -> dict:
    listing = folder / f"list-{n}.txt"
    listing.write_text("".join(f"/nonexistent/corpus/video-{i:07d}.mp4\n" for i in range(n)))
    out = folder / f"run-{n}"
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(listing), "--out", str(out)]
    cmd += ["--stages", "shots", "--num-cpus", "2"]
    cmd += ["--set", "pipeline.videos_per_task=250", "--set", "pipeline.videos_per_shard=1000"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    info = json.loads((out / "run.json").read_text())
    assert info["videos"] == n, info["videos"]
    return {
        "inputs": n,
        "wall_s": round(wall, 1),
        "driver_peak_rss_mb": info["runs"][-1]["driver_peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(n, Path(tmp)) for n in sizes]
    for r in results:
        print(f"{r['inputs']:>9,d} inputs: driver peak RSS {r['driver_peak_rss_mb']:7.1f} MB, "
              f"wall {r['wall_s']:.1f} s")  # fmt: skip
    first, last = results[0], results[-1]
    ratio = last["driver_peak_rss_mb"] / first["driver_peak_rss_mb"]
    print(f"driver peak RSS x{ratio:.2f} for x{last['inputs'] / first['inputs']:.0f} inputs")


if __name__ == "__main__":
    main()
