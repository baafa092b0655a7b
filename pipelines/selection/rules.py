"""Filter rules as the commands take them: `lvd filter`'s flags and a stage's `rules`.

The rules themselves (thresholds, percentile cuts) are curate/filtering.py's; this
module parses them from the command line and from training config, and applies them
to a table of clips held whole (the trainer's clip list). `lvd filter` streams shards
through the same `keep_mask`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.filtering import Rule, keep_mask, parse_rule, resolve_thresholds
from pipelines.common.errors import UsageError


def rules_from_args(pairs: list[tuple[str, str]]) -> list[Rule]:
    """(op, 'COL=V') pairs from `lvd filter --min/--max/--drop-bottom/--drop-top`."""
    rules = []
    for op, text in pairs:
        try:
            rules.append(parse_rule(op, text))
        except ValueError as e:
            raise UsageError(str(e)) from None
    return rules


def parse_rules(texts: list[str]) -> list[Rule]:
    """Rules as strings, `OP COL=V` (e.g. 'drop_bottom aesthetic_score=0.25')."""
    rules = []
    for text in texts:
        op, _, spec = text.strip().partition(" ")
        try:
            rules.append(parse_rule(op.replace("-", "_"), spec.strip()))
        except ValueError as e:
            raise UsageError(f"data rule {text!r}: {e}") from None
    return rules


def column_values(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(np.float64)


def apply_rules(table: pa.Table, rules: list[Rule]) -> pa.Table:
    """The rows of `table` that pass `rules`, percentiles taken over the whole table."""
    values = {r.column: column_values(table, r.column) for r in rules}
    try:
        thresholds = resolve_thresholds(rules, values)
    except ValueError as e:
        raise UsageError(str(e)) from None
    keep, _ = keep_mask(rules, thresholds, values, table.num_rows)
    return table.filter(pa.array(keep))
