"""`lvd filter` at corpus scale: semantic dedup of 1M embeddings, percentiles over 10M rows.

Makes synthetic clip shards (benchmarks only: no video behind them) and runs the real
`lvd filter` in a child process, whose wall time and peak RSS are measured:

- dedup: N clips with D-dim float16 CLIP-like embeddings (unit Gaussian directions)
  holding planted near-duplicate groups (2-5 clips at `--cosine-planted` to a base
  clip), filtered with `--dedup COSINE`. Reports recall (planted duplicates removed),
  precision (removed clips that were planted duplicates), groups left without a clip,
  unique clips removed, and the time and peak RSS of the whole command and of the
  dedup step (run.json's read_s and dedup_s).
- agreement: on the first `--exact-subset` clips, the keep mask of semantic dedup against
  exact greedy de-duplication (curate.filtering.near_duplicates), in this process.
- percentiles: `--rows` clips of scalar scores through a percentile cut and a threshold,
  in-process and on a local Ray (`--ray-address local`: workers read and write the
  shards), which must keep the same rows; the driver's peak RSS of each.

    python -m benchmarks.filter [--clips 1000000] [--dim 768] [--rows 10000000]
                                [--parts dedup,scores,ray]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.filtering import near_duplicates
from curate.semdedup import semantic_dedup

ROWS_PER_SHARD = 50_000


def planted_groups(n: int, share: float, seed: int) -> np.ndarray:
    """group id per clip (-1: unique); groups of 2-5 clips at random places."""
    rng = np.random.default_rng(seed)
    group = np.full(n, -1, np.int64)
    order = rng.permutation(n)
    at, g = 0, 0
    while at < share * n:
        size = int(rng.integers(2, 6))
        group[order[at : at + size]] = g
        at, g = at + size, g + 1
    return group


def embeddings(rows: np.ndarray, group: np.ndarray, dim: int, cosine: float, seed: int):
    """Unit vectors for `rows`; a group member sits at `cosine` to its group's base."""
    out = np.empty((len(rows), dim), np.float32)
    for i, r in enumerate(rows):
        rng = np.random.default_rng([seed, int(r)])
        noise = rng.standard_normal(dim).astype(np.float32)
        noise /= np.linalg.norm(noise)
        if group[r] < 0:
            out[i] = noise
            continue
        base = np.random.default_rng([seed, 1 << 40, int(group[r])]).standard_normal(dim)
        base = (base / np.linalg.norm(base)).astype(np.float32)
        noise -= (noise @ base) * base
        out[i] = cosine * base + np.sqrt(1 - cosine**2) * noise / np.linalg.norm(noise)
    return out


def fast_embeddings(start: int, n: int, group: np.ndarray, dim: int, cosine: float, seed: int):
    """`embeddings` for rows [start, start + n), vectorised per shard."""
    rng = np.random.default_rng([seed, start])
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    g = group[start : start + n]
    members = np.flatnonzero(g >= 0)
    if len(members):
        bases = np.stack(
            [
                np.random.default_rng([seed, 1 << 40, int(k)]).standard_normal(dim)
                for k in g[members]
            ]
        ).astype(np.float32)
        bases /= np.linalg.norm(bases, axis=1, keepdims=True)
        noise = x[members] - (x[members] * bases).sum(1, keepdims=True) * bases
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        x[members] = cosine * bases + np.sqrt(1 - cosine**2) * noise
    return x


def write_dedup_corpus(folder: Path, n: int, dim: int, group: np.ndarray, cosine: float, seed: int):
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for s, start in enumerate(range(0, n, ROWS_PER_SHARD)):
        path = folder / "clips" / f"part-{s:05d}.parquet"
        count = min(ROWS_PER_SHARD, n - start)
        if path.is_file():
            continue
        x = fast_embeddings(start, count, group, dim, cosine, seed).astype(np.float16)
        values = pa.array(x.reshape(-1), pa.float16())
        offsets = pa.array(np.arange(0, (count + 1) * dim, dim, dtype=np.int32))
        table = pa.table({
            "clip_id": pa.array([f"c{start + i:08d}" for i in range(count)]),
            "aesthetic_score": pa.array(rng.uniform(3, 7, count).astype(np.float32)),
            "clip_embedding": pa.ListArray.from_arrays(offsets, values),
        })  # fmt: skip
        pq.write_table(table, path)
    return folder


def write_scores_corpus(folder: Path, n: int, seed: int) -> Path:
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = 500_000
    for s, start in enumerate(range(0, n, per)):
        path = folder / "clips" / f"part-{s:05d}.parquet"
        count = min(per, n - start)
        if path.is_file():
            continue
        table = pa.table({
            "clip_id": pa.array(np.char.add("c", np.arange(start, start + count).astype(str))),
            "motion_score": pa.array(rng.gamma(2.0, 1.0, count).astype(np.float32)),
            "aesthetic_score": pa.array(rng.uniform(3, 7, count).astype(np.float32)),
            "text_area": pa.array(rng.uniform(0, 0.2, count).astype(np.float32)),
        })  # fmt: skip
        pq.write_table(table, path)
    return folder


def lvd_filter(src: Path, out: Path, *args: str) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (GB) of the child (as its run.json records it: getrusage's
    figure for a child would count this process's pages at the fork), and its run.json."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipelines.cli", "filter", str(src), "--out", str(out), *args]
    child = subprocess.Popen(cmd)
    if child.wait():
        raise SystemExit(f"lvd filter failed ({child.returncode})")
    wall = time.perf_counter() - t0
    info = json.loads((out / "run.json").read_text())
    return wall, info["peak_rss_mb"] / 1024, info  # the child's own VmHWM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--share", type=float, default=0.05, help="clips in planted groups")
    ap.add_argument("--cosine-planted", type=float, default=0.98)
    ap.add_argument("--cosine", type=float, default=0.95, help="--dedup threshold")
    ap.add_argument("--exact-subset", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/tmp/lvd-filter-bench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", default="dedup,scores,ray", help="which measures to run")
    args = ap.parse_args()
    work = Path(args.work)
    parts = set(args.parts.split(","))
    if "dedup" in parts:
        dedup_part(args, work)
    if parts & {"scores", "ray"}:
        scores_part(args, work, parts)


def dedup_part(args, work: Path) -> None:
    n = args.clips
    group = planted_groups(n, args.share, args.seed)
    t0 = time.perf_counter()
    src = write_dedup_corpus(
        work / f"dedup-{n}-{args.dim}", n, args.dim, group, args.cosine_planted, args.seed
    )
    print(f"corpus: {n} clips x {args.dim} float16, {int(group.max()) + 1} planted groups "
          f"({(group >= 0).sum()} clips), made in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    out = work / "dedup-out"
    wall, peak, info = lvd_filter(src, out, "--dedup", str(args.cosine))
    dedup = info["rules"][-1]
    kept = set(pq.read_table(out / "clips", columns=["clip_id"])["clip_id"].to_pylist())
    kept_mask = np.array([f"c{i:08d}" in kept for i in range(n)])
    planted_dups = sum(int((group == g).sum()) - 1 for g in range(int(group.max()) + 1))
    removed = ~kept_mask
    in_group = group >= 0
    removed_planted = int((removed & in_group).sum())
    empty_groups = int(
        np.sum(np.bincount(group[in_group & kept_mask], minlength=int(group.max()) + 1) == 0)
    )
    print(f"dedup (lvd filter --dedup {args.cosine}): {wall:.1f} s in all, read {dedup['read_s']:.1f} s, "
          f"dedup {dedup['dedup_s']:.1f} s, peak RSS {peak:.2f} GB, {dedup['clusters']} clusters")  # fmt: skip
    print(f"  recall {removed_planted / planted_dups:.4f} ({removed_planted}/{planted_dups} planted duplicates removed), "
          f"precision {removed_planted / max(1, removed.sum()):.4f}, groups left without a clip {empty_groups}, "
          f"unique clips removed {int((removed & ~in_group).sum())} ({(removed & ~in_group).sum() / max(1, (~in_group).sum()):.4%})")  # fmt: skip

    m = min(args.exact_subset, n)
    x = np.concatenate([fast_embeddings(s, min(ROWS_PER_SHARD, m - s), group, args.dim, args.cosine_planted, args.seed) for s in range(0, m, ROWS_PER_SHARD)])  # fmt: skip
    t0 = time.perf_counter()
    exact = near_duplicates(x, args.cosine)
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    semantic = semantic_dedup(x.astype(np.float16), args.cosine).keep
    semantic_s = time.perf_counter() - t0
    print(f"agreement on {m} clips: {np.mean(exact == semantic):.5f} of keep decisions equal "
          f"({int((exact != semantic).sum())} differ); exact greedy {exact_s:.1f} s, semantic {semantic_s:.1f} s")  # fmt: skip
    del x


def scores_part(args, work: Path, parts: set[str]) -> None:
    """The percentile and threshold filter over args.rows rows, in-process and (with
    "ray" in parts) on a local Ray, which must keep the same rows; the driver's peak RSS
    of each."""
    scores = write_scores_corpus(work / f"scores-{args.rows}", args.rows, args.seed)
    rules = [
        "--drop-bottom",
        "motion_score=0.25",
        "--min",
        "aesthetic_score=4",
        "--max",
        "text_area=0.15",
    ]
    kept = None
    for executor in ("in-process", "ray"):
        if (executor == "in-process" and "scores" not in parts) or (
            executor == "ray" and "ray" not in parts
        ):
            continue
        extra = ["--ray-address", "local"] if executor == "ray" else []
        wall, peak, info = lvd_filter(scores, work / f"scores-out-{executor}", *rules, *extra)
        assert info["executor"] == executor
        assert kept is None or kept == info["clips_kept"], "Ray kept other rows"
        kept = info["clips_kept"]
        print(f"percentile + threshold filter over {args.rows} rows ({executor}): {wall:.1f} s, "
              f"driver peak RSS {peak:.2f} GB, kept {kept}")  # fmt: skip


if __name__ == "__main__":
    main()
