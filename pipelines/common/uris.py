"""URIs on the command line (s3://bucket/key, gs://, http(s)://): what they name."""

from __future__ import annotations

import urllib.parse

from pipelines.common.errors import UsageError


def is_uri(path: str) -> bool:
    return "://" in str(path)


def check_uri(uri: str, what: str) -> str:
    """`uri` itself, or a one-line UsageError when it names no bucket or host."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        kind = "bucket" if parts.scheme in ("s3", "gs", "gcs", "az", "abfs") else "host"
        raise UsageError(f"{what} {uri!r} names no {kind}")
    return uri
