"""Stable identifiers: the same input gives the same ids on every run and machine."""

from __future__ import annotations

import hashlib


def video_id(path: str, size_bytes: int) -> str:
    """16 hex digits of sha1(path, size): stable across reruns, changes if the file does."""
    return hashlib.sha1(f"{path}\0{size_bytes}".encode()).hexdigest()[:16]


def clip_id(video_id: str, start_frame: int, end_frame: int) -> str:
    """`<video_id>-<start>-<end>`: readable, sortable, unique within a run."""
    return f"{video_id}-{start_frame:07d}-{end_frame:07d}"
