"""What each export format writes besides the clip files: its manifest.

- clips: DEST/clips/<clip_id>.mp4 and DEST/clips.parquet (the clips' rows without
  keyframes, a `file` column added: the mp4's path relative to DEST).
- opensora: DEST/clips/<clip_id>.mp4 and DEST/opensora.csv, the columns Open-Sora's
  data tools read (path, text, num_frames, height, width, aspect_ratio, fps,
  resolution) and its score columns (aes, flow, match, ocr).
- cogvideox: DEST/videos/<clip_id>.mp4, DEST/videos.txt and DEST/prompts.txt, a line
  each in the same order (the layout of CogVideoX's finetuning scripts and finetrainers).
- webdataset: DEST/NNNNN.tar of KEY.mp4, KEY.json (the clip's row without keyframes) and
  KEY.txt (the caption), shard-size clips each (video2dataset's and Cosmos-Curate's
  output). The tars are the manifest.
"""

from __future__ import annotations

import csv
import io
import json
import math

import pyarrow as pa

from pipelines.common import storage

FORMATS = ("clips", "webdataset", "opensora", "cogvideox")
DROPPED = ("keyframes",)  # encoded images: the clip file holds the frames


def clip_folder(fmt: str) -> str | None:
    """Where a format's clip files go under DEST (webdataset: inside the tars)."""
    return {"clips": "clips", "opensora": "clips", "cogvideox": "videos"}.get(fmt)


def shard_name(index: int) -> str:
    return f"{index:05d}.tar"


def row_json(row: dict) -> bytes:
    """A clip's row as JSON (NaN scores as null, as JSON has no NaN)."""
    clean = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in row.items()
        if k not in DROPPED
    }
    return json.dumps(clean, default=float).encode()


def one_line_caption(row: dict) -> str:
    return " ".join((row.get("caption") or "").split())


def write_manifest(fmt: str, dest, rows: list[dict]) -> list[str]:
    """Write the manifest of `rows` (exported clips, in export order); its file names."""
    folder = clip_folder(fmt)
    if fmt == "clips":
        table = pa.Table.from_pylist(
            [
                {**{k: v for k, v in r.items() if k not in DROPPED}, "file": _rel(folder, r)}
                for r in rows
            ]
        )
        storage.write_parquet(table, dest / "clips.parquet")
        return ["clips.parquet"]
    if fmt == "opensora":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(OPENSORA_COLUMNS)
        for r in rows:
            writer.writerow(_opensora_row(_absolute(dest, folder, r), r))
        storage.write_bytes(dest / "opensora.csv", text.getvalue().encode())
        return ["opensora.csv"]
    if fmt == "cogvideox":
        videos = "".join(f"{_rel(folder, r)}\n" for r in rows)
        prompts = "".join(f"{one_line_caption(r)}\n" for r in rows)
        storage.write_bytes(dest / "prompts.txt", prompts.encode())
        storage.write_bytes(dest / "videos.txt", videos.encode())
        return ["prompts.txt", "videos.txt"]
    return []


OPENSORA_COLUMNS = (
    "path", "text", "num_frames", "height", "width", "aspect_ratio", "fps", "resolution",
    "aes", "flow", "match", "ocr", "id",
)  # fmt: skip


def _opensora_row(path: str, r: dict) -> list:
    h, w = r["height"], r["width"]
    return [
        path,
        one_line_caption(r),
        r["num_frames"],
        h,
        w,
        round(h / w, 6) if w else None,
        r["fps"],
        h * w,
        _number(r.get("aesthetic_score")),
        _number(r.get("motion_score")),
        _number(r.get("text_score")),
        _number(r.get("text_area")),
        r["clip_id"],
    ]


def _number(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _rel(folder: str, r: dict) -> str:
    return f"{folder}/{r['clip_id']}.mp4"


def _absolute(dest, folder: str, r: dict) -> str:
    path = dest / folder / f"{r['clip_id']}.mp4"
    return str(path.resolve()) if storage.is_local(path) else str(path)
