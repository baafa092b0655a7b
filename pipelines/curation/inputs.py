"""Turn `lvd curate` INPUT arguments into a list of videos, each with its sidecar caption.

An INPUT is a video file, a folder (searched recursively by video extension), a glob, or
a list file (.txt: one path per line; .csv/.parquet: a `path` (or `video_path`/`url`)
column and an optional `caption` column). Paths may be local or URIs. A folder's video
may carry a sidecar caption in a text file of the same stem (`clip.mp4` + `clip.txt`),
the convention of video2dataset and webdataset.
"""

from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from curate.config import VIDEO_EXTENSIONS
from pipelines.common.errors import UsageError
from pipelines.common.uris import check_uri, is_uri

LIST_SUFFIXES = (".txt", ".csv", ".parquet")
PATH_COLUMNS = ("path", "video_path", "url", "video")


@dataclass
class InputItem:
    path: str
    caption: str | None = None  # a caption that came with the input (sidecar or list)


@dataclass
class InputList:
    items: list[InputItem] = field(default_factory=list)
    skipped_non_video: int = 0  # files in folders that are not videos (by extension)


def list_inputs(args: list[str]) -> InputList:
    """Expand INPUT arguments in order; duplicates (same path) are kept once."""
    if not args:
        raise UsageError("no INPUT given: pass video files, folders, globs or a list file")
    out = InputList()
    for arg in args:
        if is_uri(arg):
            out.items.append(InputItem(check_uri(arg, "INPUT")))
        elif os.path.isdir(arg):
            _add_folder(Path(arg), out)
        elif os.path.isfile(arg) and Path(arg).suffix.lower() in LIST_SUFFIXES:
            out.items += _read_list(Path(arg))
        elif os.path.isfile(arg):
            out.items.append(InputItem(str(Path(arg).resolve()), _sidecar(Path(arg))))
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise UsageError(f"no file matches {arg!r}")
            for m in matches:
                if os.path.isdir(m):
                    _add_folder(Path(m), out)
                elif Path(m).suffix.lower() in VIDEO_EXTENSIONS:
                    out.items.append(InputItem(str(Path(m).resolve()), _sidecar(Path(m))))
                else:
                    out.skipped_non_video += 1
        else:
            raise UsageError(f"input not found: {arg}")
    seen: set[str] = set()
    unique = []
    for item in out.items:
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    out.items = unique
    return out


def _add_folder(root: Path, out: InputList) -> None:
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() in VIDEO_EXTENSIONS:
            out.items.append(InputItem(str(p.resolve()), _sidecar(p)))
        elif not (p.suffix.lower() == ".txt" and _has_video_sibling(p)):
            out.skipped_non_video += 1


def _has_video_sibling(txt: Path) -> bool:
    return any(txt.with_suffix(ext).exists() for ext in VIDEO_EXTENSIONS)


def _sidecar(video: Path) -> str | None:
    txt = video.with_suffix(".txt")
    if txt.is_file():
        text = txt.read_text(errors="replace").strip()
        return text or None
    return None


def _read_list(path: Path) -> list[InputItem]:
    base = path.parent
    if path.suffix.lower() == ".txt":
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        return [InputItem(_resolve(ln, base)) for ln in lines if ln and not ln.startswith("#")]
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        columns = list(rows[0].keys()) if rows else []
    else:
        table = pq.read_table(path)
        columns = table.column_names
        rows = table.to_pylist()
    col = next((c for c in PATH_COLUMNS if c in columns), None)
    if col is None:
        raise UsageError(
            f"{path}: no path column (expected one of {', '.join(PATH_COLUMNS)}; "
            f"found {', '.join(columns) or 'none'})"
        )
    items = []
    for row in rows:
        if not row.get(col):
            continue
        caption = row.get("caption")
        caption = str(caption).strip() if caption not in (None, "") else None
        items.append(InputItem(_resolve(str(row[col]), base), caption))
    return items


def _resolve(p: str, base: Path) -> str:
    """List entries are relative to the list file's folder, like paths in a playlist."""
    if is_uri(p) or os.path.isabs(p):
        return p
    return str((base / p).resolve())
