"""`lvd export RUN --format clips|webdataset|opensora|cogvideox --out DEST`.

Every kept clip of a curated or filtered run becomes its own mp4 (exactly frames
[start_frame, end_frame): stream-copied where that is exact, else re-encoded; see
cutter.py), laid out the way another trainer reads it (formats.py). DEST may be local or
object storage. Work is split into units, the missing clips of one video (clip files)
or one missing tar (webdataset), run on a pool of processes; each file lands whole
(storage.write_bytes), so a rerun exports only what is missing and a killed run leaves
no half file. The manifest is written last, from the clips that exist.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from pipelines.common import shards, storage
from pipelines.common.errors import UsageError
from pipelines.common.out_dir import prepare_out
from pipelines.common.progress import progress_bar
from pipelines.common.run_json import read_run_json, write_run_json
from pipelines.export import formats

CLIP_COLUMNS_SKIPPED = ("keyframes",)


def run(args) -> int:
    started = time.perf_counter()
    if args.format not in formats.FORMATS:
        raise UsageError(f"--format {args.format!r}: choose one of {', '.join(formats.FORMATS)}")
    if args.shard_size < 1 or (args.max_clips is not None and args.max_clips < 0):
        raise UsageError("--shard-size must be >= 1 and --max-clips >= 0")
    source = storage.location(args.input, "RUN")
    storage.check_readable(source, "RUN")
    rows = read_clips(source)[: args.max_clips]
    dest = prepare_out(args.out)
    _check_same_layout(dest, args)
    units = plan(args.format, dest, rows, args.shard_size)
    todo = sum(len(u["rows"]) for u in units)
    print(f"lvd export: {len(rows)} clips, {todo} to export as {args.format} -> {dest}")
    totals = {"copied": 0, "reencoded": 0, "errors": []}
    t0 = time.perf_counter()
    settings = {"format": args.format, "dest": str(dest), "crf": args.crf, "preset": args.preset}
    with progress_bar(total=todo, unit="clip", desc="export") as bar:
        for result in _run_units(units, settings, args.workers):
            for key in ("copied", "reencoded"):
                totals[key] += result[key]
            totals["errors"] += result["errors"]
            bar.update(result["copied"] + result["reencoded"] + len(result["errors"]))
    export_s = time.perf_counter() - t0
    failed = {e["clip_id"] for e in totals["errors"]}
    exported = [r for r in rows if r["clip_id"] not in failed]
    manifest = formats.write_manifest(args.format, dest, exported)
    done = totals["copied"] + totals["reencoded"]
    write_run_json(
        dest,
        {
            "command": "export",
            "input": str(source),
            "format": args.format,
            "shard_size": args.shard_size if args.format == "webdataset" else None,
            "clips": len(exported),
            "exported_now": done,
            "stream_copied": totals["copied"],
            "reencoded": totals["reencoded"],
            "copied_share": round(totals["copied"] / done, 4) if done else None,
            "clips_per_s": round(done / export_s, 3) if done and export_s > 0 else None,
            "errors": totals["errors"],
            "manifest": manifest,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    print(
        f"lvd export: {done} exported now ({totals['copied']} stream-copied), "
        f"{len(totals['errors'])} errors; {len(exported)} clips in {dest}"
    )
    return 1 if totals["errors"] else 0


def read_clips(source) -> list[dict]:
    """The run's committed clips, keyframes left out, in export order: by video, then
    by start frame (a video's clips are cut together, and the order is the same on a
    rerun, so webdataset tars keep their contents)."""
    files = shards.clip_files(source)
    if not files:
        raise UsageError(f"RUN {source}: no clips shards (is it a curated or filtered run?)")
    names = storage.parquet_file(files[0]).schema_arrow.names
    columns = [c for c in names if c not in CLIP_COLUMNS_SKIPPED]
    rows = shards.read_table(source / "clips", columns).to_pylist()
    return sorted(rows, key=lambda r: (r["video_path"], r["start_frame"], r["end_frame"]))


def plan(fmt: str, dest, rows: list[dict], shard_size: int) -> list[dict]:
    """Units of work for what DEST lacks."""
    if fmt == "webdataset":
        have = {p.name for p in storage.parts(dest, "*.tar")}
        units = []
        for i in range(0, len(rows), shard_size):
            name = formats.shard_name(i // shard_size)
            if name not in have:
                units.append({"tar": name, "rows": rows[i : i + shard_size]})
        return units
    folder = dest / formats.clip_folder(fmt)
    have = {p.name for p in storage.parts(folder, "*.mp4")}
    by_video: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if f"{r['clip_id']}.mp4" not in have:
            by_video[r["video_path"]].append(r)
    return [{"rows": v} for v in by_video.values()]


def _check_same_layout(dest, args) -> None:
    before = read_run_json(dest)  # a Path or a UPath: the same calls
    if not before:
        return
    if before.get("format") != args.format:
        raise UsageError(f"--out {dest} holds a {before.get('format')} export, not {args.format}")
    if args.format == "webdataset" and before.get("shard_size") != args.shard_size:
        raise UsageError(
            f"--out {dest} was exported with --shard-size {before.get('shard_size')}: "
            "a rerun must use the same one"
        )


def _run_units(units: list[dict], settings: dict, workers: int):
    if workers <= 1 or len(units) <= 1:
        for unit in units:
            yield export_unit(unit, settings)
        return
    # spawn: a fresh interpreter per worker, not a fork of a process with threads
    with ProcessPoolExecutor(min(workers, len(units)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(export_unit, unit, settings) for unit in units]
        for future in as_completed(futures):
            yield future.result()


def export_unit(unit: dict, settings: dict) -> dict:
    """Cut a unit's clips and write them (files, or one tar). Never raises for a bad
    video: its clips become error entries."""
    from pipelines.export.cutter import ClipCutter

    dest = storage.location(settings["dest"])
    fmt = settings["format"]
    result = {"copied": 0, "reencoded": 0, "errors": []}
    cuts: list[tuple[dict, bytes]] = []
    by_video: dict[str, list[dict]] = defaultdict(list)
    for r in unit["rows"]:
        by_video[r["video_path"]].append(r)
    for path, rows in by_video.items():
        try:
            cutter = ClipCutter(path, crf=settings["crf"], preset=settings["preset"])
        except Exception as e:  # a missing or broken source: its clips are errors
            result["errors"] += [_error(r, e) for r in rows]
            continue
        for r in rows:
            try:
                cut = cutter.cut(r["start_frame"], r["end_frame"])
            except Exception as e:
                result["errors"].append(_error(r, e))
                continue
            result["copied" if cut.copied else "reencoded"] += 1
            if fmt == "webdataset":
                cuts.append((r, cut.data))
            else:
                name = f"{formats.clip_folder(fmt)}/{r['clip_id']}.mp4"
                storage.write_bytes(dest / name, cut.data)
    if fmt == "webdataset" and cuts:
        _write_tar(dest / unit["tar"], cuts)
    return result


def _write_tar(path, cuts: list[tuple[dict, bytes]]) -> None:
    """A tar of KEY.mp4, KEY.json, KEY.txt per clip, built in a local temporary file
    (a shard can be large) and then moved or uploaded whole."""
    local = path.parent if storage.is_local(path) else None
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tar.tmp", prefix=".", dir=local)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as tar:
            for row, data in cuts:
                key = row["clip_id"]
                caption = formats.one_line_caption(row).encode()
                for ext, payload in (
                    ("mp4", data),
                    ("json", formats.row_json(row)),
                    ("txt", caption),
                ):
                    _add(tar, f"{key}.{ext}", payload)
        if local is not None:
            os.replace(tmp, path)
        else:
            path.fs.put_file(tmp, path.path)  # one PUT: the object appears whole
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), 0, 0o644
    tar.addfile(info, io.BytesIO(payload))


def _error(row: dict, e: BaseException) -> dict:
    reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
    return {"clip_id": row["clip_id"], "video_path": row["video_path"], "error": reason}
