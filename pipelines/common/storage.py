"""Run folders and inputs on local disk or in object storage (s3://, gs://, ...).

A location is a pathlib.Path for a local path and a universal_pathlib UPath (the pathlib
API over fsspec) for a URI, so the code that reads and writes a run folder is the same
for both. What differs is how a file lands whole: on local disk a hidden temporary file
is renamed into place; in object storage a PUT is atomic by itself and a rename is a
copy, so the object is written under its final name in one request.

Start-up checks (`check_readable`, `check_writable`) turn a missing bucket, missing
credentials or a denied write into one line before any work starts.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.common.errors import UsageError
from pipelines.common.uris import check_uri, is_uri


def location(path: str | os.PathLike, what: str = "path") -> Path:
    """Path for a local path, UPath for a URI (checked to name a bucket or host)."""
    text = str(path)
    if not is_uri(text):
        return Path(text)
    from upath import UPath

    return UPath(check_uri(text, what))


def is_local(path: Path) -> bool:
    return not is_uri(str(path))


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` so that readers see the whole file or none of it."""
    if not is_local(path):
        path.write_bytes(data)  # one PUT: the object appears whole or not at all
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_parquet(table: pa.Table, path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_bytes(path, buffer.getvalue())


def read_parquet(path: Path, columns: list[str] | None = None, filters=None) -> pa.Table:
    if is_local(path):
        return pq.read_table(path, columns=columns, filters=filters)
    return pq.read_table(path.path, columns=columns, filters=filters, filesystem=path.fs)


def parquet_file(path: Path) -> pq.ParquetFile:
    """The footer of one file (schema, row counts) without reading its data."""
    if is_local(path):
        return pq.ParquetFile(path)
    return pq.ParquetFile(path.path, filesystem=path.fs)


def parts(folder: Path, pattern: str = "part-*.parquet") -> list[Path]:
    """The files of `folder` matching `pattern`, by name; none when it does not exist."""
    if is_local(folder):
        return sorted(folder.glob(pattern)) if folder.is_dir() else []
    # Workers write into the same folder from other processes: list afresh.
    folder.fs.invalidate_cache(folder.path)
    try:
        return sorted(folder.glob(pattern), key=lambda p: p.name)
    except FileNotFoundError:
        return []


def fingerprint(path: Path) -> list:
    """[name, size, version] of a file: what changes when it is rewritten (the
    modification time on disk, the ETag in object storage)."""
    if is_local(path):
        st = path.stat()
        return [path.name, st.st_size, st.st_mtime_ns]
    info = path.fs.info(path.path)
    return [path.name, info.get("size"), str(info.get("ETag") or info.get("LastModified"))]


def upload(local: Path, remote: Path, newer_than: float = 0.0) -> None:
    """Copy a local file or folder tree to `remote` (an object per file), only the files
    modified after `newer_than` (a time.time())."""
    files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
    files = [f for f in files if f.stat().st_mtime >= newer_than]
    for f in files:
        rel = f.relative_to(local).as_posix() if local.is_dir() else ""
        remote.fs.put_file(str(f), f"{remote.path}/{rel}" if rel else remote.path)


def download(remote: Path, local: Path) -> None:
    """Copy a remote folder tree (or one file) to `local`."""
    local.parent.mkdir(parents=True, exist_ok=True)
    if remote.fs.isdir(remote.path):
        local.mkdir(parents=True, exist_ok=True)
        for item in remote.fs.find(remote.path):
            rel = os.path.relpath(item, remote.path)
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            remote.fs.get_file(item, str(local / rel))
    else:
        remote.fs.get_file(remote.path, str(local))


def check_readable(path: Path, what: str) -> None:
    """A one-line UsageError when `path` (a URI) cannot be read: no such bucket or
    object, no credentials, access denied."""
    if is_local(path):
        return
    try:
        found = path.exists()
    except Exception as e:
        raise UsageError(f"{what} {path}: {storage_error(e)}") from None
    if not found:
        raise UsageError(f"{what} {path}: not found")


def check_writable(path: Path, what: str = "--out") -> None:
    """Write and delete a probe object under `path`: a missing bucket, missing
    credentials or a denied write fail here, in one line, before any work."""
    if is_local(path):
        return
    probe = path / f".lvd-write-check-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except Exception as e:
        raise UsageError(f"{what} {path} is not writable: {storage_error(e)}") from None


def storage_error(e: BaseException) -> str:
    """What went wrong with a storage request, in a few words."""
    text = " ".join(str(e).split())
    name = type(e).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError") or "credentials" in text.lower():
        return (
            "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE; AWS_ENDPOINT_URL for an S3-compatible store)"
        )
    denied = ("AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    if isinstance(e, PermissionError) or any(word in text for word in denied):
        return f"access denied ({text[:120]})"
    if isinstance(e, FileNotFoundError) or "NoSuchBucket" in text:
        return "the bucket does not exist"
    if "Could not connect" in text or "Connect" in name:
        return f"cannot reach the storage endpoint ({text[:160]})"
    return f"{name}: {text[:200]}"
