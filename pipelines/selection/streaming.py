"""`lvd filter`'s two passes on Ray Data, for large inputs and clusters.

The passes are the same as in-process (pipelines/selection/filter.py); only where the
shards are read changes:

- pass 1: a Ray Data row per shard; a worker reads that shard's rule columns (nothing
  else) and hands them back as raw float64 bytes; the driver joins them in shard
  order. Percentiles stay exact over the whole input; the driver holds 8 bytes per row
  and rule column (160 MB for 10M rows and two columns), never a shard;
- pass 2: a row per shard with its slice of the keep mask (packed bits); a worker reads
  the whole shard, keeps the masked rows and writes OUT/clips/<same name>: atomically on
  local disk, one PUT in object storage. Each worker holds one shard at a time.

Workers reach object storage with the credentials the driver has (ray_start forwards
AWS_*, GOOGLE_APPLICATION_CREDENTIALS and FSSPEC_* to them). On a cluster the input and
--out must be URIs or paths every node sees.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.common import shards, storage
from pipelines.selection.rules import column_values

# An input with at least this many shards is filtered on Ray even without --ray-address.
RAY_SHARDS = 64


def use_ray(address: str | None, shard_count: int) -> bool:
    return address is not None or shard_count >= RAY_SHARDS


def _read_columns(row: dict, columns: list[str]) -> dict:
    table = storage.read_parquet(storage.location(row["path"]), columns)
    out = {"index": row["index"]}
    for c in columns:
        out[c] = column_values(table, c).tobytes()
    return out


def _write_kept(row: dict, out_dir: str) -> dict:
    src = storage.location(row["path"])
    table = storage.read_parquet(src)
    mask = np.unpackbits(np.frombuffer(row["mask"], np.uint8), count=table.num_rows).astype(bool)
    shards.write_atomic(table.filter(pa.array(mask)), storage.location(out_dir) / src.name)
    return {"index": row["index"], "kept": int(mask.sum())}


def _dataset(ray, items: list[dict]):
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    return ray.data.from_items(items, override_num_blocks=max(1, len(items)))


def rule_columns(ray, files: list, columns: list[str]) -> dict[str, np.ndarray]:
    """Every row's value of each rule column, in shard order (pass 1)."""
    items = [{"index": i, "path": str(f)} for i, f in enumerate(files)]
    got = _dataset(ray, items).map(_read_columns, fn_kwargs={"columns": columns}).take_all()
    got.sort(key=lambda r: r["index"])
    return {
        c: np.concatenate([np.frombuffer(r[c], np.float64) for r in got] or [np.zeros(0)])
        for c in columns
    }


def write_kept(ray, files: list, counts: list[int], keep: np.ndarray, out_clips) -> int:
    """Write each shard's kept rows under out_clips (pass 2); counts: each shard's rows.
    Returns the rows kept."""
    items, offset = [], 0
    for i, (f, n) in enumerate(zip(files, counts, strict=True)):
        items.append(
            {"index": i, "path": str(f), "mask": np.packbits(keep[offset : offset + n]).tobytes()}
        )
        offset += n
    done = _dataset(ray, items).map(_write_kept, fn_kwargs={"out_dir": str(out_clips)}).take_all()
    return sum(r["kept"] for r in done)
