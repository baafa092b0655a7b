"""Filter rules over clip scores: absolute thresholds, percentile cuts, near-duplicates.

Stable Video Diffusion curated its pretraining set by cutting percentiles of each score
(bottom 25% motion, 25% aesthetic, 50% CLIP text score; top 25% text area). Scores are
columns and rules are applied afterwards, so thresholds can be re-tuned without
re-running curation. `lvd filter` and the trainer's data rules both use this module.

Percentile cuts are resolved to absolute thresholds over the whole input first
(`resolve_thresholds`), then every shard is filtered with the same numbers
(`keep_mask`), so a dataset larger than memory streams through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OPS = ("min", "max", "drop_bottom", "drop_top")


@dataclass(frozen=True)
class Rule:
    """One filter rule: `min`/`max` take a value; `drop_bottom`/`drop_top` a fraction."""

    op: str
    column: str
    value: float

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        if self.op.startswith("drop") and not 0.0 <= self.value < 1.0:
            raise ValueError(
                f"{self.op} {self.column}: fraction must be in [0, 1), got {self.value}"
            )

    @property
    def name(self) -> str:
        return f"{self.op.replace('_', '-')} {self.column}={self.value:g}"


def parse_rule(op: str, text: str) -> Rule:
    """`COL=VALUE` -> Rule; ValueError with a one-line reason otherwise."""
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise ValueError(f"--{op.replace('_', '-')} expects COL=VALUE, got {text!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--{op.replace('_', '-')} {column}: {value!r} is not a number") from None
    return Rule(op, column.strip(), number)


def resolve_thresholds(rules: Sequence[Rule], values: Mapping[str, np.ndarray]) -> list[float]:
    """Absolute threshold per rule; percentile cuts use the non-NaN values of their column.

    drop_bottom f keeps values >= the f-quantile; drop_top f keeps values <= the
    (1-f)-quantile.
    """
    out = []
    for rule in rules:
        if rule.op in ("min", "max"):
            out.append(rule.value)
            continue
        v = np.asarray(values[rule.column], dtype=np.float64)
        v = v[~np.isnan(v)]
        if v.size == 0:
            raise ValueError(f"{rule.name}: column {rule.column} has no values (stage not run?)")
        q = rule.value if rule.op == "drop_bottom" else 1.0 - rule.value
        out.append(float(np.quantile(v, q)))
    return out


def keep_mask(
    rules: Sequence[Rule], thresholds: Sequence[float], values: Mapping[str, np.ndarray], n: int
) -> tuple[np.ndarray, list[int]]:
    """Rows that pass every rule, and how many rows each rule removed, in order.

    A rule removes a row that reached it (passed the rules before it) and fails it; a
    missing (NaN) score fails. So the counts add up to the rows dropped.
    """
    keep = np.ones(n, dtype=bool)
    removed = []
    for rule, t in zip(rules, thresholds, strict=True):
        v = np.asarray(values[rule.column], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            ok = v >= t if rule.op in ("min", "drop_bottom") else v <= t
        ok &= ~np.isnan(v)
        removed.append(int(np.sum(keep & ~ok)))
        keep &= ok
    return keep, removed


def near_duplicates(embeddings: np.ndarray, cosine: float, block: int = 4096) -> np.ndarray:
    """Greedy de-duplication: keep a row unless it is within `cosine` of a kept earlier row.

    embeddings: (N, D); rows are L2-normalised here. Returns a boolean keep mask. Exact,
    blockwise (memory O(block * N)); the earlier of two duplicates wins, so the result
    does not depend on the block size.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    n = e.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    kept_rows: list[np.ndarray] = []
    for start in range(0, n, block):
        chunk = e[start : start + block]
        dup = np.zeros(len(chunk), dtype=bool)
        if kept_rows:
            kept = np.concatenate(kept_rows)
            dup = (chunk @ kept.T).max(axis=1) >= cosine
        sims = chunk @ chunk.T
        for i in range(len(chunk)):
            if dup[i]:
                continue
            keep[start + i] = True
            later = sims[i, i + 1 :] >= cosine
            dup[i + 1 :] |= later
        kept_rows.append(chunk[keep[start : start + len(chunk)]])
    return keep
