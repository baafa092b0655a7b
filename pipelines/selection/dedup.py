"""`lvd filter --dedup`: embeddings read in bulk, duplicate groups found and written.

The clip_embedding column (list<float16>) goes from each shard's Arrow buffers straight
into one preallocated (N, D) float16 matrix: no per-row Python. Rows without an
embedding (null, or holding a NaN) cannot be compared; they are kept, and counted in
run.json. Duplicate groups go to OUT/duplicates/part-00000.parquet as (group_id,
clip_id, kept), one row per member, so a user can look at what was dropped for what.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.filtering import near_duplicates
from curate.semdedup import keep_order, semantic_dedup
from pipelines.common import shards, storage
from pipelines.common.errors import UsageError

COLUMN = "clip_embedding"


def read_embeddings(
    files: list[Path], columns: list[str]
) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """(N, D) float16 embeddings of every clip in shard order, which rows have one, and
    the other `columns` of every clip, read in the same pass over the shards."""
    total = sum(storage.parquet_file(f).metadata.num_rows for f in files)
    others = []
    matrix: np.ndarray | None = None
    valid = np.zeros(total, bool)
    offset = 0
    for f in files:
        table = storage.read_parquet(f, [COLUMN, *columns])
        others.append(table.select(columns))
        column = table[COLUMN].combine_chunks()
        del table
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        present = column.is_valid().to_numpy(zero_copy_only=False) & (lengths > 0)
        sizes = np.unique(lengths[present])
        if len(sizes) > 1 or (matrix is not None and len(sizes) and sizes[0] != matrix.shape[1]):
            seen = sorted({*sizes.tolist(), *([] if matrix is None else [matrix.shape[1]])})
            raise UsageError(
                f"{COLUMN} holds embeddings of different lengths ({', '.join(map(str, seen))}; "
                f"{f.name}): the clips were scored by different CLIP models"
            )
        if matrix is None and len(sizes):
            matrix = np.zeros((total, int(sizes[0])), np.float16)
        flat = None
        if present.any():
            flat = pc.list_flatten(column.filter(pa.array(present)))
            rows = np.flatnonzero(present) + offset
            matrix[rows] = flat.to_numpy(zero_copy_only=False).reshape(len(rows), -1)
        valid[offset : offset + len(column)] = present
        offset += len(column)
        del column, flat
        pa.default_memory_pool().release_unused()  # the shard's buffers, not kept cached
    if matrix is None:
        matrix = np.zeros((total, 0), np.float16)
    for start in range(0, total, 1 << 16):  # a NaN anywhere: no embedding (in chunks)
        valid[start : start + (1 << 16)] &= np.isfinite(matrix[start : start + (1 << 16)]).all(1)
    rest = pa.concat_tables(others) if others else pa.table({c: [] for c in columns})
    return matrix, valid, rest


def find_duplicates(
    matrix: np.ndarray, rows: np.ndarray, cosine: float, method: str,
    priority: np.ndarray | None, clusters: int, probes: int,
) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """(dropped rows, group of every row in `rows` or -1, clusters used) among `rows`.
    The matrix is compacted in place to `rows` (no second copy of the embeddings)."""
    subset = compact(matrix, rows)
    if method == "exact":
        order = np.arange(len(rows)) if priority is None else keep_order(priority[rows])
        keep = np.empty(len(rows), bool)
        keep[order] = near_duplicates(subset[order], cosine)
        return rows[~keep], np.full(len(rows), -1), 0
    found = semantic_dedup(
        subset,
        cosine,
        None if priority is None else priority[rows],
        clusters=clusters,
        probes=probes,
    )
    group = np.where(found.group >= 0, rows[np.maximum(found.group, 0)], -1)
    return rows[~found.keep], group, found.clusters


def compact(matrix: np.ndarray, rows: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """matrix[rows] for ascending `rows`, written over the matrix's own first rows."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        if part[0] != start or part[-1] != start + len(part) - 1:  # else already in place
            matrix[start : start + len(part)] = matrix[part]
    return matrix[: len(rows)]


def write_groups(out: Path, clip_ids: pa.ChunkedArray, rows: np.ndarray, group: np.ndarray,
                 dropped: np.ndarray) -> int:  # fmt: skip
    """OUT/duplicates/part-00000.parquet: one row per member of a group; returns how
    many groups there are."""
    folder = out / "duplicates"
    members = group >= 0
    keeper = group[members]
    ids, group_id = np.unique(keeper, return_inverse=True)
    member_rows = rows[members]
    is_dropped = np.isin(member_rows, dropped)
    order = np.lexsort((is_dropped, group_id))
    take = pa.array(member_rows[order])
    table = pa.table({
        "group_id": pa.array(group_id[order], pa.int64()),
        "clip_id": clip_ids.take(take),
        "kept": pa.array(~is_dropped[order]),
    })  # fmt: skip
    shards.write_atomic(table, folder / "part-00000.parquet")
    return len(ids)
