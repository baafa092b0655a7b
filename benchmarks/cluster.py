"""A 2-node Ray cluster against one node with the same CPUs: `lvd curate --ray-address`
on the same corpus, timed from the command's start to its end.

Both clusters run on this machine (ray.cluster_utils.Cluster: a raylet per node, as on
real hosts): `1 node` is a head with 2 CPUs; `2 nodes` is a head and a worker node with
1 CPU each, so tasks are spread over two raylets and two object stores. Each cluster is
warmed up by a short run first (worker processes, their analysis helpers), then the two
are timed in turn, --repeats times, interleaved (the machine is shared).

    python -m benchmarks.cluster [--videos 48] [--seconds 10] [--size 640x360] [--repeats 2]

Prints each run's wall time and the 2-node throughput over the 1-node one (issue 14's
target: within 15%).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.curate import make_corpus  # noqa: E402
from benchmarks.storage import curate  # noqa: E402

LAYOUTS = {"1 node": [2], "2 nodes": [1, 1]}  # CPUs per node, head first
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def start(cpus: list[int]):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus[0]})
    for n in cpus[1:]:
        cluster.add_node(num_cpus=n)
    cluster.wait_for_nodes()
    return cluster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="lvd-cluster-bench-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    make_corpus(corpus, args.videos, args.seconds, width, height)
    files = sorted(str(p) for p in corpus.glob("*.mp4"))
    print(f"corpus: {args.videos} videos of {args.seconds:g} s at {args.size}, local disk")
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for k in range(args.repeats):
        for name, cpus in LAYOUTS.items():
            # one cluster at a time: two would share the machine's cores
            cluster = start(cpus)
            try:
                address = ["--ray-address", cluster.address]
                curate(files[:4], str(tmp / f"warm-{name}-{k}"), ENV, *address)
                times[name].append(curate(files, str(tmp / f"run-{name}-{k}"), ENV, *address))
            finally:
                cluster.shutdown()
            print(f"  run {k}: {name}: {times[name][-1]:.1f} s")
    one, two = min(times["1 node"]), min(times["2 nodes"])
    print(
        f"best of {args.repeats}: 1 node {one:.1f} s, 2 nodes {two:.1f} s; "
        f"2-node throughput = {one / two:.2f}x of 1 node's"
    )


if __name__ == "__main__":
    main()
