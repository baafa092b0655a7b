"""Semantic de-duplication after SemDeDup (Abbas et al. 2023): k-means, then pairs within.

Exact greedy de-duplication compares every pair of clips: N^2 / 2 dot products, hours
at a million clips and never done at a hundred million. SemDeDup clusters the
normalised embeddings with k-means and compares pairs only within each cluster, where
near-duplicates land (they are closer to each other than to anything else, so they
almost always share their nearest centroid). The cost falls to about N x (cluster
size) dot products.

- k-means (faiss, spherical) is trained on a sample of at most `SAMPLE_PER_CLUSTER`
  rows per centroid, as faiss itself subsamples; every row is then assigned to its
  `probes` nearest centroids in chunks, so nothing but the embeddings as given (float16
  from the shards) and a few per-row arrays is held whole. Joining two clusters, a pair
  that lies near the boundary between them is still compared: with one (SemDeDup's
  hard assignment) 4-8% of planted duplicates in random backgrounds were missed, with
  two none (benchmarks/filter.py).
- Within a cluster the rows are ordered by the keep rule (highest `priority`, ties and
  no priority: the earliest row) and de-duplicated greedily, exactly as
  `curate.filtering.near_duplicates` does: a row is dropped when it is within `cosine`
  of a kept row before it. A duplicate group is a kept row and the rows dropped for it.

How it can differ from exact greedy over the whole set: a pair split across two
clusters is never compared (both rows are kept), and inside a cluster the order is the
keep rule's, not the input's. Rows without an embedding are not compared at all: the
caller decides whether they are kept (`lvd filter` keeps them and counts them).
benchmarks/filter.py measures recall on planted duplicate groups and agreement with
exact greedy on a subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_PER_CLUSTER = 256  # k-means training rows per centroid (faiss's own default cap)
SAMPLE_MAX = 1 << 17  # ... and at most this many in all (float32: 400 MB at 768-d)
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
    probes: int = 2,
    seed: int = 0,
    iterations: int = 20,
) -> Dedup:
    """Keep mask and duplicate groups of (N, D) embeddings (any float dtype, any norm).

    priority: (N,) higher is kept first within a group (NaN lowest); None: the earliest.
    clusters: k-means centroids; 0 picks N / ROWS_PER_CLUSTER (at least 1).
    probes: each row joins its this many nearest clusters, so a pair near a boundary
    between two clusters is still compared (1 is SemDeDup's own hard assignment).
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
    label = np.empty((n, probes), np.int64)
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(n, start + CHUNK))
        _, label[rows] = kmeans.index.search(_unit(embeddings, rows, norms), probes)
    row = np.repeat(np.arange(n), probes)
    label = label.reshape(-1)
    order = np.lexsort((_rank(n, priority)[row], label))  # by cluster, then keep rule
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    for members in np.split(row[order], bounds):
        if len(members) > 1:
            _greedy(embeddings, members, norms, cosine, keep, group)
    # a row dropped for one that a later cluster dropped in turn belongs to that one's group
    while True:
        parent = group[group]
        moved = (group >= 0) & ~keep[np.maximum(group, 0)] & (parent != group)
        if not moved.any():
            break
        group[moved] = parent[moved]
    return Dedup(keep, group, k)


def _greedy(embeddings, members, norms, cosine, keep, group) -> None:
    """Greedy de-duplication of one cluster, its members in keep-rule order. Rows are
    compared a block at a time, so a large cluster needs at most SIMS_BYTES at once."""
    e = _unit(embeddings, members, norms)
    m = len(members)
    dup = ~keep[members]  # dropped in another cluster: it drops nothing here
    step = max(1, SIMS_BYTES // (4 * m))
    for start in range(0, m, step):
        close = e[start : start + step] @ e.T >= cosine  # (rows, m)
        # only rows with a later neighbour can drop anything
        for r in np.flatnonzero(np.triu(close, start + 1).any(axis=1)):
            i = start + r
            if dup[i]:
                continue  # a dropped row drops nothing
            later = np.flatnonzero(close[r, i + 1 :] & ~dup[i + 1 :]) + i + 1
            if len(later):
                dup[later] = True
                keep[members[later]] = False
                group[members[later]] = members[i]
                group[members[i]] = members[i]


def _norms(embeddings: np.ndarray) -> np.ndarray:
    out = np.empty(len(embeddings), np.float32)
    for start in range(0, len(embeddings), CHUNK):
        chunk = np.asarray(embeddings[start : start + CHUNK], np.float32)
        out[start : start + CHUNK] = np.linalg.norm(chunk, axis=1)
    return np.maximum(out, 1e-12)


def _unit(embeddings: np.ndarray, rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Rows as contiguous float32 of unit length (what faiss and the dot products take)."""
    x = np.asarray(embeddings[rows], np.float32)
    return np.ascontiguousarray(x / norms[rows, None])


def _rank(n: int, priority: np.ndarray | None) -> np.ndarray:
    """Sort key: the keep rule's order (lower first); ties keep the input order."""
    if priority is None:
        return np.arange(n)
    p = np.nan_to_num(np.asarray(priority, np.float64), nan=-np.inf)
    order = np.lexsort((np.arange(n), -p))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return rank
