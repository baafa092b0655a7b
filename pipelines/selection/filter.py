"""`lvd filter IN --out OUT`: keep the clips that pass the rules, shard by shard.

Two passes over the clip shards of IN: the first reads only the columns the rules
name (to turn percentile cuts into thresholds over the whole dataset, and to find
near-duplicates by clip_embedding), the second streams each shard through the rules and
writes the kept rows to OUT/clips under the same shard name. With --ray-address, or an
input of streaming.RAY_SHARDS shards or more, Ray Data workers read and write the shards
(pipelines/selection/streaming.py); de-duplication stays in this process. OUT/videos is copied for
provenance. OUT/run.json records every rule, its resolved threshold and how many rows
it removed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.filtering import keep_mask, resolve_thresholds
from pipelines.common import shards, storage
from pipelines.common.errors import UsageError
from pipelines.common.run_json import peak_rss_mb, read_run_json, write_run_json
from pipelines.selection import streaming
from pipelines.selection.dedup import find_duplicates, read_embeddings, write_groups
from pipelines.selection.rules import column_values, rules_from_args


def clip_files(folder: Path) -> list[Path]:
    storage.check_readable(folder, "input folder")
    if not (folder / "clips").is_dir():
        raise UsageError(f"{folder} is not a curated run folder (no clips/ inside)")
    return shards.clip_files(folder)


def check_columns(files: list[Path], columns: set[str]) -> None:
    if not files:
        return
    have = set(storage.parquet_file(files[0]).schema_arrow.names)
    missing = sorted(columns - have)
    if missing:
        raise UsageError(
            f"column {missing[0]!r} is not in the clip shards (columns: {', '.join(sorted(have))})"
        )


def _dedup(args, files: list[Path], keep: np.ndarray, out: Path) -> dict:
    """Drop near-duplicates among the rows the rules kept (in place in `keep`); the
    report's entry. Rows without an embedding are kept and counted."""
    by_score = args.dedup_keep != "first"
    columns = ["clip_id", *([args.dedup_keep] if by_score else [])]
    check_columns(files, set(columns))
    started = time.perf_counter()
    matrix, valid, table = read_embeddings(files, columns)
    read_s = time.perf_counter() - started
    rows = np.flatnonzero(keep & valid)
    priority = column_values(table, args.dedup_keep) if by_score else None
    dropped, group, clusters = find_duplicates(
        matrix,
        rows,
        args.dedup,
        args.dedup_method,
        priority,
        args.dedup_clusters,
        args.dedup_probes,
    )
    keep[dropped] = False
    groups = write_groups(out, table["clip_id"], rows, group, dropped)
    return {
        "rule": f"dedup cosine>={args.dedup:g}", "op": "dedup", "column": "clip_embedding",
        "value": args.dedup, "removed": len(dropped), "method": args.dedup_method,
        "keep": args.dedup_keep, "clusters": clusters, "probes": args.dedup_probes,
        "groups": groups,
        "null_embeddings": int((keep & ~valid).sum()),
        "read_s": round(read_s, 3), "dedup_s": round(time.perf_counter() - started - read_s, 3),
    }  # fmt: skip


def run(args) -> int:
    started = time.time()
    src, out = storage.location(args.input, "IN"), storage.location(args.out, "--out")
    if storage.is_local(src) and not src.is_dir():
        raise UsageError(f"input folder not found: {src}")
    if str(out).rstrip("/") == str(src).rstrip("/") or (
        storage.is_local(out) and storage.is_local(src) and out.resolve() == src.resolve()
    ):
        raise UsageError("--out must differ from the input folder")
    storage.check_writable(out)
    rules = rules_from_args(args.rules)
    if args.dedup is not None and not 0.0 < args.dedup <= 1.0:
        raise UsageError(f"--dedup takes a cosine in (0, 1], got {args.dedup}")
    if args.dedup_clusters < 0 or args.dedup_probes < 1:
        raise UsageError("--dedup-clusters must be >= 0 and --dedup-probes >= 1")
    files = clip_files(src)
    needed = {r.column for r in rules} | ({"clip_embedding"} if args.dedup else set())
    check_columns(files, needed)

    ray = None
    if streaming.use_ray(args.ray_address, len(files)):
        from pipelines.common.ray_start import start_ray

        ray = start_ray(
            None if args.ray_address in (None, "local") else args.ray_address, None, None
        )

    # Pass 1: the rule columns over the whole input, for percentiles and de-duplication.
    columns = sorted(needed - {"clip_embedding"})
    if ray is not None:
        values = streaming.rule_columns(ray, files, columns)
    else:
        tables = [storage.read_parquet(f, columns) for f in files]
        whole = pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})
        values = {c: column_values(whole, c) for c in columns}
        del whole, tables
    try:
        thresholds = resolve_thresholds(rules, values)
    except ValueError as e:
        raise UsageError(str(e)) from None
    counts = [storage.parquet_file(f).metadata.num_rows for f in files]  # footers only
    keep_all, removed = keep_mask(rules, thresholds, values, sum(counts))
    dedup = None
    if args.dedup:
        dedup = _dedup(args, files, keep_all, out)

    # Pass 2: stream every shard through the mask.
    for old in storage.parts(out / "clips"):
        old.unlink()  # a rerun with new rules replaces the previous output
    if ray is not None:
        streaming.write_kept(ray, files, counts, keep_all, out / "clips")
    offset = 0
    for f in files if ray is None else []:
        table = storage.read_parquet(f)
        mask = keep_all[offset : offset + table.num_rows]
        offset += table.num_rows
        shards.write_atomic(table.filter(pa.array(mask)), out / "clips" / f.name)
    for old in storage.parts(out / "videos"):
        old.unlink()
    for f in storage.parts(src / "videos"):  # provenance, and the commit records of clips/
        storage.write_bytes(out / "videos" / f.name, f.read_bytes())

    n_in, n_kept = len(keep_all), int(keep_all.sum())
    report = [
        {
            "rule": r.name,
            "op": r.op,
            "column": r.column,
            "value": r.value,
            "threshold": t,
            "removed": k,
        }
        for r, t, k in zip(rules, thresholds, removed, strict=True)
    ]
    if dedup is not None:
        report.append(dedup)
    write_run_json(
        out,
        {
            "command": "filter",
            "input": str(src),
            "executor": "ray" if ray is not None else "in-process",
            "clips_in": n_in,
            "clips_kept": n_kept,
            "rules": report,
            "wall_s": round(time.time() - started, 3),
            "peak_rss_mb": peak_rss_mb(),
            "source_run": read_run_json(src),
        },
    )
    for r in report:
        print(f"  {r['rule']:<36s} removed {r['removed']:>8d}", file=sys.stderr)
    print(f"lvd filter: kept {n_kept} of {n_in} clips -> {out / 'clips'}", file=sys.stderr)
    return 0
