"""Semantic de-duplication after SemDeDup (Abbas et al. 2023): k-means, then pairs within.

Exact greedy de-duplication compares every pair of clips: N^2 / 2 dot products, hours
at a million clips and never done at a hundred million. SemDeDup clusters the
normalised embeddings with k-means and compares pairs only within each cluster, where
near-duplicates land (they are closer to each other than to anything else, so they
almost always share their nearest centroid). The cost falls to about N x (cluster
size) dot products.

- k-means (faiss, spherical) is trained on a sample of at most `SAMPLE_PER_CLUSTER`
  rows per centroid, as faiss itself subsamples; every row is then assigned to its
  nearest centroids in chunks, so nothing but the embeddings as given (float16 from the
  shards) and a few per-row arrays is held whole.
- A row belongs to its nearest cluster and is compared with the members of its
  `probes` nearest clusters (an inverted file searched with nprobe, as faiss's IVF
  does), so a pair that lies near the boundary between two clusters is still found.
  SemDeDup's hard assignment (probes=1) missed 4-8% of planted duplicates in random
  backgrounds; the recall at each setting is in benchmarks/README.md.
- The close pairs found are then de-duplicated by exact greedy in the keep rule's
  order (highest `priority`, ties and no priority: the earliest row), exactly as
  `curate.filtering.near_duplicates` does over all pairs: a row is dropped when it is
  within `cosine` of a kept row before it. A duplicate group is a kept row and the rows
  dropped for it.

How it can differ from exact greedy over the whole set: a close pair whose rows are in
none of each other's probed clusters is never compared (both rows are kept, and a row
the missed pair would have dropped may then drop others); with a priority the order is
the keep rule's, not the input's. Rows without an embedding are not compared at all: the
caller decides whether they are kept (`lvd filter` keeps them and counts them).
benchmarks/filter.py measures recall on planted duplicate groups and agreement with
exact greedy on a subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_PER_CLUSTER = 256  # k-means training rows per centroid (faiss's own default cap)
SAMPLE_MAX = 1 << 16  # ... and at most this many in all (float32: 200 MB at 768-d)
ROWS_PER_CLUSTER = 1000  # the automatic cluster count aims at this many rows each
CHUNK = 65536  # rows converted to float32 at a time
SIMS_BYTES = 1 << 27  # a cluster's similarities are computed this much at a time


@dataclass
class Dedup:
    keep: np.ndarray  # (N,) bool
    group: np.ndarray  # (N,) int64: the kept row a row is in a group with, -1 alone
    clusters: int


def semantic_dedup(
    embeddings: np.ndarray,
    cosine: float,
    priority: np.ndarray | None = None,
    clusters: int = 0,
    probes: int = 8,
    seed: int = 0,
    iterations: int = 20,
) -> Dedup:
    """Keep mask and duplicate groups of (N, D) embeddings (any float dtype, any norm).

    priority: (N,) higher is kept first within a group (NaN lowest); None: the earliest.
    clusters: k-means centroids; 0 picks N / ROWS_PER_CLUSTER (at least 1).
    probes: each row is compared with the members of its this many nearest clusters, so
    a pair near a boundary between two clusters is still compared (1 is SemDeDup's own
    hard assignment).
    """
    import faiss

    if not 0.0 < cosine <= 1.0:
        raise ValueError(f"cosine must be in (0, 1], got {cosine}")
    n = len(embeddings)
    keep, group = np.ones(n, bool), np.full(n, -1, np.int64)
    if n == 0:
        return Dedup(keep, group, 0)
    norms = _norms(embeddings)
    k = clusters or max(1, n // ROWS_PER_CLUSTER)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, k * SAMPLE_PER_CLUSTER, SAMPLE_MAX), replace=False))
    kmeans = faiss.Kmeans(
        embeddings.shape[1], k, niter=iterations, seed=seed, spherical=True,
        min_points_per_centroid=1, max_points_per_centroid=SAMPLE_PER_CLUSTER,
    )  # fmt: skip
    kmeans.train(_unit(embeddings, sample, norms))
    probes = max(1, min(probes, k))
    nearest = np.empty((n, probes), np.int64)
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(n, start + CHUNK))
        _, nearest[rows] = kmeans.index.search(_unit(embeddings, rows, norms), probes)
    pairs = _close_pairs(embeddings, norms, nearest, cosine)
    _greedy(pairs, _rank(n, priority), keep, group)
    return Dedup(keep, group, k)


def _close_pairs(embeddings, norms, nearest: np.ndarray, cosine: float) -> np.ndarray:
    """(P, 2) pairs of rows at `cosine` or closer, each pair once. A row belongs to its
    nearest cluster and is compared with the members of its `probes` nearest ones."""
    label = nearest[:, 0]
    order = np.argsort(label, kind="stable")
    starts = np.searchsorted(label[order], np.arange(nearest.max() + 2))
    probe_row = np.repeat(np.arange(len(nearest)), nearest.shape[1])
    probe_cluster = nearest.reshape(-1)
    by_cluster = np.argsort(probe_cluster, kind="stable")
    probe_starts = np.searchsorted(probe_cluster[by_cluster], np.arange(nearest.max() + 2))
    found = []
    for c in range(len(starts) - 1):
        members = order[starts[c] : starts[c + 1]]
        queries = probe_row[by_cluster[probe_starts[c] : probe_starts[c + 1]]]
        if len(members) == 0 or len(queries) == 0:
            continue
        targets = _unit(embeddings, members, norms)
        step = max(1, SIMS_BYTES // (4 * len(members)))
        for q in range(0, len(queries), step):
            rows = queries[q : q + step]
            qi, ti = np.nonzero(_unit(embeddings, rows, norms) @ targets.T >= cosine)
            a, b = rows[qi], members[ti]
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[a != b])
    if not found:
        return np.zeros((0, 2), np.int64)
    return np.unique(np.concatenate(found), axis=0)  # a pair met in two clusters once


def _greedy(pairs: np.ndarray, rank: np.ndarray, keep: np.ndarray, group: np.ndarray) -> None:
    """Exact greedy de-duplication over the close pairs: rows in keep-rule order, a row
    not dropped yet keeps itself and drops its close rows that come after it."""
    if len(pairs) == 0:
        return
    first = np.where(rank[pairs[:, 0]] < rank[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    second = pairs[:, 0] + pairs[:, 1] - first
    order = np.argsort(rank[first], kind="stable")
    first, second = first[order], second[order]
    bounds = np.flatnonzero(np.diff(first)) + 1
    for heads, tails in zip(np.split(first, bounds), np.split(second, bounds), strict=True):
        i = heads[0]
        if not keep[i]:
            continue  # a dropped row drops nothing
        tails = tails[keep[tails]]
        if len(tails):
            keep[tails] = False
            group[tails] = i
            group[i] = i


def _norms(embeddings: np.ndarray) -> np.ndarray:
    out = np.empty(len(embeddings), np.float32)
    for start in range(0, len(embeddings), CHUNK):
        chunk = np.asarray(embeddings[start : start + CHUNK], np.float32)
        out[start : start + CHUNK] = np.linalg.norm(chunk, axis=1)
    return np.maximum(out, 1e-12)


def _unit(embeddings: np.ndarray, rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Rows as contiguous float32 of unit length (what faiss and the dot products take)."""
    x = np.asarray(embeddings[rows], np.float32)
    x /= norms[rows, None]  # in place: the sample for k-means is the largest of these
    return np.ascontiguousarray(x)


def keep_order(priority: np.ndarray) -> np.ndarray:
    """Rows in the keep rule's order: highest priority first (NaN last), ties earliest."""
    p = np.nan_to_num(np.asarray(priority, np.float64), nan=-np.inf)
    return np.lexsort((np.arange(len(p)), -p))


def _rank(n: int, priority: np.ndarray | None) -> np.ndarray:
    """Each row's place in keep_order (the input order without a priority)."""
    if priority is None:
        return np.arange(n)
    rank = np.empty(n, np.int64)
    rank[keep_order(priority)] = np.arange(n)
    return rank
