"""Captions with timestamps that come with a corpus: .srt, .vtt and .json sidecars.

Panda-70M and InternVid give a caption per time span, and subtitles come as SubRip
(.srt) or WebVTT (.vtt). A .json sidecar is a list of {start_s, end_s, caption}; a
CSV or Parquet list file may carry the same three columns (`checked_span`). Each
parser returns the spans in file order; a malformed file raises CaptionFileError, whose
message names the file and the line. A clip takes the caption its span overlaps most
(`caption_for`); caption boundaries inside a clip are where it is split (`boundaries`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TIMED_SUFFIXES = (".srt", ".vtt", ".json")
_TAG = re.compile(r"<[^>]*>")
_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})$")


@dataclass(frozen=True)
class CaptionSpan:
    start_s: float
    end_s: float
    caption: str


class CaptionFileError(ValueError):
    """A malformed caption file: "NAME: line N: what is wrong"."""


def parse(name: str, text: str) -> list[CaptionSpan]:
    """The spans of a caption file named `name` (its suffix picks the format)."""
    suffix = name[name.rfind(".") :].lower()
    if suffix == ".json":
        return _parse_json(name, text)
    if suffix in (".srt", ".vtt"):
        return _parse_cues(name, text, vtt=suffix == ".vtt")
    raise CaptionFileError(f"{name}: not a timed caption file (expected .srt, .vtt or .json)")


def _seconds(stamp: str) -> float | None:
    m = _TIME.match(stamp.strip())
    if not m:
        return None
    h, mi, s, ms = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _parse_cues(name: str, text: str, vtt: bool) -> list[CaptionSpan]:
    lines = text.lstrip("\ufeff").splitlines()
    if vtt and (not lines or not lines[0].startswith("WEBVTT")):
        raise CaptionFileError(f"{name}: line 1: a WebVTT file starts with 'WEBVTT'")
    spans, i = [], 1 if vtt else 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        if vtt and block[0].split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        timing = next((k for k, ln in enumerate(block) if "-->" in ln), None)
        if timing is None or timing > 1:
            raise CaptionFileError(f"{name}: line {block_start + 1}: no 'START --> END' timing")
        line_no = block_start + timing + 1
        left, right = block[timing].split("-->", 1)
        start = _seconds(left)
        end = _seconds(right.split()[0] if right.split() else "")
        if start is None or end is None:
            raise CaptionFileError(f"{name}: line {line_no}: bad timestamp {block[timing]!r}")
        if end <= start:
            raise CaptionFileError(f"{name}: line {line_no}: the cue ends before it starts")
        caption = " ".join(_TAG.sub("", ln).strip() for ln in block[timing + 1 :]).strip()
        if caption:
            spans.append(CaptionSpan(start, end, caption))
    return spans


def _parse_json(name: str, text: str) -> list[CaptionSpan]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptionFileError(f"{name}: line {e.lineno}: {e.msg}") from None
    if not isinstance(data, list):
        raise CaptionFileError(f"{name}: line 1: expected a list of {{start_s, end_s, caption}}")
    spans = []
    for k, entry in enumerate(data):
        where = f"{name}: line {_line_of(text, k)}: entry {k}"
        if not isinstance(entry, dict) or not {"start_s", "end_s", "caption"} <= entry.keys():
            raise CaptionFileError(f"{where}: needs start_s, end_s and caption")
        span = checked_span(where, entry["start_s"], entry["end_s"], entry["caption"])
        if span:
            spans.append(span)
    return spans


def checked_span(where: str, start, end, caption) -> CaptionSpan | None:
    """One {start_s, end_s, caption} entry as a span (None for an empty caption); a bad
    one raises CaptionFileError prefixed by `where` ("NAME: line N")."""
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise CaptionFileError(f"{where}: start_s and end_s must be numbers") from None
    if not 0 <= start < end:
        raise CaptionFileError(f"{where}: needs 0 <= start_s < end_s")
    caption = " ".join(str(caption or "").split())
    return CaptionSpan(start, end, caption) if caption else None


def _line_of(text: str, k: int) -> int:
    """The line where the k-th top-level list entry starts (for error messages)."""
    depth, count = 0, -1
    for pos, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth == 2 and ch == "{":
                count += 1
                if count == k:
                    return text.count("\n", 0, pos) + 1
        elif ch in "]}":
            depth -= 1
    return 1


def caption_for(spans: list[CaptionSpan], start_s: float, end_s: float) -> str | None:
    """The caption whose span overlaps [start_s, end_s) most; None when none does
    (ties: the earlier span)."""
    best, best_overlap = None, 0.0
    for span in spans:
        overlap = min(end_s, span.end_s) - max(start_s, span.start_s)
        if overlap > best_overlap + 1e-9:
            best, best_overlap = span.caption, overlap
    return best


def boundaries(spans: list[CaptionSpan]) -> list[float]:
    """Every time a caption starts or ends, sorted: where a clip crossing it is split."""
    return sorted({t for s in spans for t in (s.start_s, s.end_s)})
