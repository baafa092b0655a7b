"""Turn `lvd curate` INPUT arguments into a list of videos, each with its sidecar caption.

An INPUT is a video file, a folder (searched recursively by video extension), a glob, or
a list file (.txt: one path per line; .csv/.parquet: a `path` (or `video_path`/`url`)
column and an optional `caption` column; with `start_s` and `end_s` columns too, each
row is one caption span of its video, Panda-70M's and InternVid's layout). Each may be
local or a URI that fsspec opens (s3://, gs://, http(s)://): a bucket prefix lists
recursively like a folder, and list files and globs may live in a bucket. A folder's
video may carry a sidecar caption in a file of the same stem: `clip.txt` (the whole
video; video2dataset's and webdataset's convention) or `clip.srt`, `clip.vtt`,
`clip.json` (captions with timestamps; a clip takes the one it overlaps most and is
split where one starts or ends); a `clip.json` holding an object is metadata, where a
`camera` entry gives the orbit of multi-view footage (curate/camera_path.py). A local sidecar is read here; one in a bucket is read
by the worker that analyses its video, so listing a large prefix costs its listing
requests only.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.config import VIDEO_EXTENSIONS
from curate.timed_captions import TIMED_SUFFIXES, CaptionFileError, CaptionSpan, checked_span
from pipelines.common import storage
from pipelines.common.errors import UsageError
from pipelines.common.uris import check_uri, is_uri

LIST_SUFFIXES = (".txt", ".csv", ".parquet")
SIDECAR_SUFFIXES = (*TIMED_SUFFIXES, ".txt")  # timed captions first: they say more
PATH_COLUMNS = ("path", "video_path", "url", "video")


@dataclass
class InputItem:
    path: str
    caption: str | None = None  # a caption that came with the input (sidecar or list)
    caption_path: str | None = None  # a remote or timed sidecar, read by the worker
    captions: list[CaptionSpan] | None = None  # timed captions from a list file's rows
    meta_path: str | None = None  # a KEY.json metadata sidecar (camera path), read by the worker


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
            _add_uri(check_uri(arg, "INPUT"), out)
        elif os.path.isdir(arg):
            _add_folder(Path(arg), out)
        elif os.path.isfile(arg) and Path(arg).suffix.lower() in LIST_SUFFIXES:
            out.items += _read_list(Path(arg))
        elif os.path.isfile(arg):
            out.items.append(_local_item(Path(arg)))
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise UsageError(f"no file matches {arg!r}")
            for m in matches:
                if os.path.isdir(m):
                    _add_folder(Path(m), out)
                elif Path(m).suffix.lower() in VIDEO_EXTENSIONS:
                    out.items.append(_local_item(Path(m)))
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


def _add_uri(uri: str, out: InputList) -> None:
    """A URI INPUT: a glob, a prefix (listed recursively), a list file or one video."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        protocol = uri.split("://", 1)[0]
        if glob.has_magic(path):
            matches = fs.glob(path, detail=True)
            if not matches:
                raise UsageError(f"no file matches {uri!r}")
            files = sorted(m for m, info in matches.items() if info["type"] != "directory")
            folders = {os.path.dirname(m) for m in files}
            siblings = [k for d in sorted(folders) for k in fs.ls(d, detail=False)]
            _add_listing(fs, protocol, files, out, sidecars=siblings)
            for m in sorted(m for m, info in matches.items() if info["type"] == "directory"):
                _add_listing(fs, protocol, fs.find(m), out)
            return
        kind = _kind(fs, path)
        if kind is None:
            bucket = path.split("/", 1)[0]
            if protocol in ("s3", "gs", "gcs") and not fs.exists(bucket):
                raise UsageError(f"INPUT {uri}: the bucket does not exist")
            raise UsageError(f"input not found: {uri}")
        if kind == "directory":
            _add_listing(fs, protocol, fs.find(path), out)
        elif _suffix(path) in LIST_SUFFIXES:
            out.items += _read_list(uri)
        else:
            stem = os.path.splitext(path)[0]
            found = next((stem + x for x in SIDECAR_SUFFIXES if fs.exists(stem + x)), None)
            meta = _join(protocol, stem + ".json") if fs.exists(stem + ".json") else None
            caption_path = _join(protocol, found) if found else None
            out.items.append(InputItem(uri, caption_path=caption_path, meta_path=meta))
    except UsageError:
        raise
    except Exception as e:  # no credentials, no such bucket, access denied, no endpoint
        raise UsageError(f"INPUT {uri}: {storage.storage_error(e)}") from None


def _kind(fs, path: str) -> str | None:
    try:
        return fs.info(path)["type"]
    except FileNotFoundError:
        return None


def _add_listing(fs, protocol: str, keys: list[str], out: InputList, sidecars=None) -> None:
    """Videos among listed object keys, each with its sidecar caption when listed too."""
    listed = sidecars if sidecars is not None else keys
    texts = {k for k in listed if _suffix(k) in SIDECAR_SUFFIXES}
    videos = [k for k in sorted(keys) if _suffix(k) in VIDEO_EXTENSIONS]
    stems = {os.path.splitext(k)[0] for k in videos}
    for key in videos:
        stem = os.path.splitext(key)[0]
        found = next((stem + x for x in SIDECAR_SUFFIXES if stem + x in texts), None)
        caption_path = _join(protocol, found) if found else None
        meta = _join(protocol, stem + ".json") if stem + ".json" in texts else None
        out.items.append(InputItem(_join(protocol, key), caption_path=caption_path, meta_path=meta))
    out.skipped_non_video += sum(
        1
        for k in keys
        if _suffix(k) not in VIDEO_EXTENSIONS
        and not (k in texts and os.path.splitext(k)[0] in stems)
        and not os.path.basename(k).startswith(".")
    )


def _join(protocol: str, key: str) -> str:
    return key if "://" in key else f"{protocol}://{key}"


def _suffix(key: str) -> str:
    return os.path.splitext(key)[1].lower()


def _add_folder(root: Path, out: InputList) -> None:
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() in VIDEO_EXTENSIONS:
            out.items.append(_local_item(p))
        elif not (p.suffix.lower() in SIDECAR_SUFFIXES and _has_video_sibling(p)):
            out.skipped_non_video += 1


def _has_video_sibling(txt: Path) -> bool:
    return any(txt.with_suffix(ext).exists() for ext in VIDEO_EXTENSIONS)


def _local_item(video: Path) -> InputItem:
    """A local video with its sidecar: a timed one (.srt, .vtt, .json) is parsed by the
    worker; a .txt (the whole video's caption) is read here."""
    path = str(video.resolve())
    meta = video.with_suffix(".json")
    meta_path = str(meta.resolve()) if meta.is_file() and not _is_list_json(meta) else None
    for suffix in TIMED_SUFFIXES:
        timed = video.with_suffix(suffix)
        if timed.is_file() and (suffix != ".json" or _is_list_json(timed)):
            return InputItem(path, caption_path=str(timed.resolve()), meta_path=meta_path)
    txt = video.with_suffix(".txt")
    if txt.is_file():
        caption = txt.read_text(errors="replace").strip() or None
        return InputItem(path, caption, meta_path=meta_path)
    return InputItem(path, meta_path=meta_path)


def _is_list_json(path: Path) -> bool:
    """A .json sidecar holds timed captions when it is a list; a dict is metadata
    (video2dataset writes KEY.json beside KEY.mp4 and KEY.txt)."""
    with open(path, "rb") as f:
        return f.read(4096).lstrip().startswith(b"[")


def _read_list(path: Path | str) -> list[InputItem]:
    """A list file on disk or in a bucket; its relative entries are relative to it."""
    text_path = str(path)
    base = text_path.rsplit("/", 1)[0] if is_uri(text_path) else str(Path(path).parent)
    suffix = _suffix(text_path)
    if suffix == ".txt":
        lines = [
            ln.strip() for ln in storage.location(text_path).read_bytes().decode().splitlines()
        ]
        return [InputItem(_resolve(ln, base)) for ln in lines if ln and not ln.startswith("#")]
    if suffix == ".csv":
        rows = list(
            csv.DictReader(
                io.StringIO(storage.location(text_path).read_bytes().decode(), newline="")
            )
        )
        columns = list(rows[0].keys()) if rows else []
    else:
        table = pq.read_table(pa.BufferReader(storage.location(text_path).read_bytes()))
        columns = table.column_names
        rows = table.to_pylist()
    col = next((c for c in PATH_COLUMNS if c in columns), None)
    if col is None:
        raise UsageError(
            f"{path}: no path column (expected one of {', '.join(PATH_COLUMNS)}; "
            f"found {', '.join(columns) or 'none'})"
        )
    timed = "start_s" in columns or "end_s" in columns
    if timed and not {"start_s", "end_s", "caption"} <= set(columns):
        raise UsageError(f"{path}: timed captions need start_s, end_s and caption columns")
    items: dict[str, InputItem] = {}
    for k, row in enumerate(rows):
        if not row.get(col):
            continue
        caption = row.get("caption")
        caption = str(caption).strip() if caption not in (None, "") else None
        video = _resolve(str(row[col]), base)
        item = items.setdefault(video, InputItem(video))
        if timed and (_given(row["start_s"]) or _given(row["end_s"])):
            # one row per caption span: a video's rows together are its timed captions
            where = f"{path}: line {k + 2}" if suffix == ".csv" else f"{path}: row {k}"
            try:
                span = checked_span(where, row["start_s"], row["end_s"], caption)
            except CaptionFileError as e:
                raise UsageError(str(e)) from None
            item.captions = item.captions or []  # timed even if every caption is empty
            if span:
                item.captions.append(span)
        elif caption and item.caption is None:
            item.caption = caption
    return list(items.values())


def _given(value) -> bool:
    return value is not None and str(value).strip() != ""


def _resolve(p: str, base: str) -> str:
    """List entries are relative to the list file's folder, like paths in a playlist."""
    if is_uri(p) or os.path.isabs(p):
        return p
    if is_uri(base):
        scheme, key = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(f'{key}/{p}')}"
    return str((Path(base) / p).resolve())
