"""Where a Ray run's time goes: the CPU seconds of every process `lvd curate` on a local
Ray uses, grouped by what it is, against the same analysis in one plain process.

Runs `analyze_video` over the corpus in one process (one decode thread: one core), then
`lvd curate --num-cpus 2 --stages shots,motion` on the same files while sampling
/proc every 0.2 s (CPU time of every process, start-up included). Groups:

  analysis helpers   the isolation helpers (pipelines.curation.isolate): the real work
  task workers       Ray worker processes running lvd's tasks (start-up, imports,
                     waiting on the helper, building rows, writing shards)
  ray data actors    Ray Data's own actors (stats, autoscaling coordinator)
  ray system         raylet, GCS, dashboard and agents, log monitor
  driver             the lvd process (Ray Data's executor loop, commits, progress)

    python -m benchmarks.ray_cpu [--videos 96] [--seconds 10] [--size 640x360] [--cpus 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.curate import PLAIN, make_corpus, run_child  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SYSTEM = ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py", "runtime_env",
          "ray::DashboardAgent", "ray::RuntimeEnvAgent")  # fmt: skip


def group(cmdline: str, driver_pid: int, pid: int) -> str | None:
    if pid == driver_pid:
        return "driver"
    if "pipelines.curation.isolate" in cmdline:
        return "analysis helpers"
    if any(s in cmdline for s in SYSTEM):
        return "ray system"
    if cmdline.startswith("ray::_"):
        return "ray data actors"
    if cmdline.startswith("ray::"):
        return "task workers"
    return None  # not part of the run


def cpu_times() -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, start time) -> (command line, CPU seconds) for every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[(int(name), int(fields[19]))] = (cmdline, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def sampled_run(cmd: list[str]) -> tuple[float, dict[str, float], int]:
    """Wall time, CPU seconds per group, and how many task worker processes ran."""
    before = cpu_times()
    seen: dict[tuple[int, int], tuple[str, float]] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    while proc.poll() is None:
        for key, (cmdline, cpu) in cpu_times().items():
            if cmdline:  # a zombie has lost its command line: keep the last sample
                seen[key] = (cmdline, cpu)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"lvd curate failed (exit {proc.returncode})")
    groups: dict[str, float] = collections.Counter()
    workers = 0
    for key, (cmdline, cpu) in seen.items():
        name = group(cmdline, proc.pid, key[0])
        if name:
            groups[name] += cpu - before.get(key, ("", 0.0))[1]
            workers += name == "task workers"
    return wall, groups, workers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=96)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="lvd-ray-cpu-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    make_corpus(corpus, args.videos, args.seconds, width, height)
    print(f"corpus: {args.videos} videos of {args.seconds:g} s at {args.size}")
    plain = run_child(PLAIN.format(folder=str(corpus), threads=1))["wall_s"]
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(corpus), "--out"]
    cmd += [str(tmp / "run"), "--stages", "shots,motion", "--num-cpus", str(args.cpus)]
    wall, groups, workers = sampled_run(cmd)
    total = sum(groups.values())
    print(f"plain process: {plain:.1f} s (one core); ideal on {args.cpus} CPUs: "
          f"{plain / args.cpus:.1f} s")  # fmt: skip
    print(f"lvd curate on {args.cpus} CPUs: {wall:.1f} s wall ({plain / wall:.2f}x plain; "
          f"Ray's start and the driver's imports included)")  # fmt: skip
    print(f"{'group':<18} {'CPU s':>7} {'share':>7}")
    for name in ("analysis helpers", "task workers", "ray data actors", "ray system", "driver"):
        print(f"{name:<18} {groups[name]:>7.1f} {groups[name] / total:>7.1%}")
    idle = args.cpus * wall - total
    print(f"{'idle cores':<18} {idle:>7.1f}   ({args.cpus} x wall - CPU used)")
    print(f"task worker processes started: {workers}; analysis CPU in helpers vs plain: "
          f"{groups['analysis helpers'] / plain:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
