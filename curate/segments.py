"""What shot detection hands over: boundaries between shots, clean segments of shots,
and the clips a segment becomes (dropped below min_clip_s, cut into equal parts of at
most max_clip_s)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from curate.config import ShotConfig


@dataclass(frozen=True)
class Boundary:
    """Frames [start, end) that belong to no shot; a cut has start == end (its new shot's
    first frame)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Segment:
    """A clean stretch [start, end) of one shot, after trimming; what bounds it."""

    start: int
    end: int
    shot_index: int
    kind_in: str  # cut | fade | dissolve | black | start | split | caption
    kind_out: str  # cut | fade | dissolve | black | end | split | caption


def clip_spans(seg: Segment, times_s: np.ndarray, fps: float, cfg: ShotConfig) -> list[Segment]:
    """Clips of a segment: none when shorter than min_clip_s, else equal parts of at most
    max_clip_s. times_s[i] is frame i's time (len > seg.end - 1)."""
    duration = _span_s(seg.start, seg.end, times_s, fps)
    if duration + 1e-6 < cfg.min_clip_s:
        return []
    parts = max(1, math.ceil(duration / cfg.max_clip_s - 1e-9))
    edges = np.linspace(seg.start, seg.end, parts + 1).round().astype(int)
    out = []
    for k in range(parts):
        kind_in = seg.kind_in if k == 0 else "split"
        kind_out = seg.kind_out if k == parts - 1 else "split"
        out.append(Segment(int(edges[k]), int(edges[k + 1]), seg.shot_index, kind_in, kind_out))
    return out


def _span_s(start: int, end: int, times_s: np.ndarray, fps: float) -> float:
    end_t = times_s[end] if end < len(times_s) else times_s[end - 1] + 1.0 / fps
    return float(end_t - times_s[start])


def split_at_times(seg: Segment, times: list[float], times_s) -> list[Segment]:
    """`seg` split at each of `times` (seconds, sorted) that falls inside it: the piece
    after a split starts at the first frame shown at or after that time. The pieces'
    new edges have kind "caption" (timed captions change there)."""
    edges = [seg.start]
    for t in times:
        frame = bisect.bisect_left(times_s, t - 1e-6)
        if edges[-1] < frame < seg.end:
            edges.append(frame)
    if len(edges) == 1:
        return [seg]
    edges.append(seg.end)
    last = len(edges) - 2
    return [
        Segment(
            edges[k],
            edges[k + 1],
            seg.shot_index,
            seg.kind_in if k == 0 else "caption",
            seg.kind_out if k == last else "caption",
        )
        for k in range(last + 1)
    ]
