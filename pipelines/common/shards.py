"""Parquet shards of a run: schemas, atomic writes, and what a rerun may skip.

A run folder (local or in object storage) holds OUT/videos/part-*.parquet (one row per
input file) and OUT/clips/part-*.parquet (one row per clip). Each file lands whole
(pipelines/common/storage.py): renamed into place on disk, one PUT in a bucket. The
clips shard of a batch of videos is written first, by the worker that made it; its
videos shard, of the same name, second, by the driver: a videos row is the commit
record of that video. A rerun skips exactly the videos that have one and deletes any
clips shard whose videos shard never landed (the run died between the two writes).
Readers take only clips shards that have their videos shard. Nothing is lost and
nothing is written twice.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.common import storage

VIDEO_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("video_path", pa.string()),
        ("size_bytes", pa.int64()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("codec", pa.string()),
        ("num_frames", pa.int64()),
        ("rotation", pa.int32()),
        ("has_audio", pa.bool_()),
        ("is_vfr", pa.bool_()),
        ("status", pa.string()),  # 'ok' | 'error'
        ("error", pa.string()),  # null or a one-line reason
        ("error_kind", pa.string()),  # VideoError kind, 'timeout', 'crashed' or 'internal'
        ("num_clips", pa.int32()),
        ("analysis_s", pa.float64()),  # wall time of decode + shots + motion
    ]
)

CLIP_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("video_path", pa.string()),
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),  # exclusive
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("fps", pa.float64()),
        ("num_frames", pa.int64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("shot_index", pa.int32()),
        ("transition_in", pa.string()),
        ("transition_out", pa.string()),
        ("motion_score", pa.float32()),
        ("motion_p90", pa.float32()),
        ("aesthetic_score", pa.float32()),
        ("text_score", pa.float32()),
        ("text_area", pa.float32()),
        ("caption", pa.string()),
        ("caption_source", pa.string()),
        ("camera_elevation_deg", pa.float32()),  # the orbit of a KEY.json sidecar, or null
        ("camera_azimuth_deg_per_s", pa.float32()),
        ("clip_embedding", pa.list_(pa.float16())),
        ("keyframe_frames", pa.list_(pa.int64())),
        ("keyframes", pa.list_(pa.binary())),  # encoded images: first, middle, last
    ]
)


def shard_dirs(out: Path) -> tuple[Path, Path]:
    return out / "videos", out / "clips"


def write_atomic(table: pa.Table, path: Path) -> None:
    """Readers see the whole file or none of it (local rename or one PUT)."""
    storage.write_parquet(table, path)


def write_shard(out: Path, name: str, videos: pa.Table, clips: pa.Table) -> None:
    """One shard: clips first, then the videos rows that commit them."""
    videos_dir, clips_dir = shard_dirs(out)
    write_atomic(clips.cast(CLIP_SCHEMA), clips_dir / f"{name}.parquet")
    write_atomic(videos.cast(VIDEO_SCHEMA), videos_dir / f"{name}.parquet")


def prepare(out: Path) -> set[str]:
    """Make the run folder and clean what a killed run left; return recorded video ids."""
    videos_dir, clips_dir = shard_dirs(out)
    if storage.is_local(out):
        videos_dir.mkdir(parents=True, exist_ok=True)
        clips_dir.mkdir(parents=True, exist_ok=True)
        for d in (videos_dir, clips_dir):
            for tmp in d.glob(".*.tmp"):
                tmp.unlink()
    committed = {p.name for p in storage.parts(videos_dir)}
    for p in storage.parts(clips_dir):
        if p.name not in committed:
            p.unlink()  # its videos shard never landed: those videos will be redone
    recorded: set[str] = set()
    for p in storage.parts(videos_dir):
        recorded.update(storage.read_parquet(p, ["video_id"])["video_id"].to_pylist())
    return recorded


def clip_files(out: Path) -> list[Path]:
    """The committed clips shards of a run: those whose videos shard has landed (a
    filtered run, which has no videos/ of its own making, commits all of its clips)."""
    videos_dir, clips_dir = shard_dirs(out)
    files = storage.parts(clips_dir)
    committed = {p.name for p in storage.parts(videos_dir)}
    if not committed:
        return files
    return [p for p in files if p.name in committed]


def read_table(folder: Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of one kind (videos/ or clips/) as one table, in shard order."""
    files = clip_files(folder.parent) if folder.name == "clips" else storage.parts(folder)
    if not files:
        return pa.table({})
    return pa.concat_tables(storage.read_parquet(f, columns) for f in files)
