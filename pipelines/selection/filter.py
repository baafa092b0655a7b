"""`lvd filter IN --out OUT`: keep the clips that pass the rules, shard by shard.

Two passes over the clip shards of IN: the first reads only the columns the rules
name (to turn percentile cuts into thresholds over the whole dataset, and to find
near-duplicates by clip_embedding), the second streams each shard through the rules and
writes the kept rows to OUT/clips under the same shard name. OUT/videos is copied for
provenance. OUT/run.json records every rule, its resolved threshold and how many rows
it removed.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.filtering import keep_mask, near_duplicates, resolve_thresholds
from pipelines.common import shards
from pipelines.common.errors import UsageError
from pipelines.common.run_json import read_run_json, write_run_json
from pipelines.selection.rules import column_values, rules_from_args


def clip_files(folder: Path) -> list[Path]:
    files = sorted((folder / "clips").glob("part-*.parquet"))
    if not (folder / "clips").is_dir():
        raise UsageError(f"{folder} is not a curated run folder (no clips/ inside)")
    return files


def check_columns(files: list[Path], columns: set[str]) -> None:
    if not files:
        return
    have = set(pq.read_schema(files[0]).names)
    missing = sorted(columns - have)
    if missing:
        raise UsageError(
            f"column {missing[0]!r} is not in the clip shards (columns: {', '.join(sorted(have))})"
        )


def run(args) -> int:
    started = time.time()
    src, out = Path(args.input), Path(args.out)
    if not src.is_dir():
        raise UsageError(f"input folder not found: {src}")
    if out.resolve() == src.resolve():
        raise UsageError("--out must differ from the input folder")
    rules = rules_from_args(args.rules)
    if args.dedup is not None and not 0.0 < args.dedup <= 1.0:
        raise UsageError(f"--dedup takes a cosine in (0, 1], got {args.dedup}")
    files = clip_files(src)
    needed = {r.column for r in rules} | ({"clip_embedding"} if args.dedup else set())
    check_columns(files, needed)

    # Pass 1: the rule columns over the whole input, for percentiles and de-duplication.
    columns = sorted(needed)
    tables = [pq.read_table(f, columns=columns) for f in files]
    whole = pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})
    values = {c: column_values(whole, c) for c in columns if c != "clip_embedding"}
    try:
        thresholds = resolve_thresholds(rules, values)
    except ValueError as e:
        raise UsageError(str(e)) from None
    keep_all, removed = keep_mask(rules, thresholds, values, whole.num_rows)
    dedup_removed = 0
    if args.dedup:
        emb = whole["clip_embedding"]
        idx = np.flatnonzero(keep_all)
        valid = np.array([emb[int(i)].is_valid for i in idx], dtype=bool)
        rows = idx[valid]
        if len(rows):
            matrix = np.stack([np.asarray(emb[int(i)].as_py(), np.float32) for i in rows])
            dup = ~near_duplicates(matrix, args.dedup)
            keep_all[rows[dup]] = False
            dedup_removed = int(dup.sum())
    del whole, tables

    # Pass 2: stream every shard through the mask.
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for old in (out / "clips").glob("part-*.parquet"):
        old.unlink()  # a rerun with new rules replaces the previous output
    offset = 0
    for f in files:
        table = pq.read_table(f)
        mask = keep_all[offset : offset + table.num_rows]
        offset += table.num_rows
        shards.write_atomic(table.filter(pa.array(mask)), out / "clips" / f.name)
    if (src / "videos").is_dir():
        if (out / "videos").exists():
            shutil.rmtree(out / "videos")
        shutil.copytree(src / "videos", out / "videos")

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
    if args.dedup:
        report.append(
            {
                "rule": f"dedup cosine>={args.dedup:g}",
                "op": "dedup",
                "column": "clip_embedding",
                "value": args.dedup,
                "removed": dedup_removed,
            }
        )
    write_run_json(
        out,
        {
            "command": "filter",
            "input": str(src),
            "clips_in": n_in,
            "clips_kept": n_kept,
            "rules": report,
            "wall_s": round(time.time() - started, 3),
            "source_run": read_run_json(src),
        },
    )
    for r in report:
        print(f"  {r['rule']:<36s} removed {r['removed']:>8d}", file=sys.stderr)
    print(f"lvd filter: kept {n_kept} of {n_in} clips -> {out / 'clips'}", file=sys.stderr)
    return 0
