"""Filter rules on known data: thresholds, percentiles, counts per rule, near-duplicates."""

import numpy as np
import pytest

from curate.filtering import Rule, keep_mask, near_duplicates, parse_rule, resolve_thresholds


def test_parse_rule():
    assert parse_rule("min", "motion_score=0.5") == Rule("min", "motion_score", 0.5)
    with pytest.raises(ValueError, match="expects COL=VALUE"):
        parse_rule("min", "motion_score")
    with pytest.raises(ValueError, match="'high' is not a number"):
        parse_rule("max", "text_area=high")
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
        parse_rule("drop_bottom", "aesthetic_score=1.5")


def test_percentile_cuts_drop_the_requested_share():
    values = {"a": np.arange(100, dtype=float), "t": np.arange(100, dtype=float)[::-1]}
    rules = [Rule("drop_bottom", "a", 0.25), Rule("drop_top", "t", 0.10)]
    thresholds = resolve_thresholds(rules, values)
    assert thresholds == pytest.approx([24.75, 89.1])
    keep, removed = keep_mask(rules, thresholds, values, 100)
    # a >= 24.75 keeps 25..99 (75 rows); t <= 89.1 keeps t in 0..89, i.e. a in 10..99
    assert keep.sum() == 75 and removed == [25, 0]
    assert np.flatnonzero(keep).min() == 25


def test_each_rule_counts_only_rows_that_reached_it():
    values = {"m": np.array([0.1, 0.5, 0.9, np.nan]), "x": np.array([5.0, 1.0, 9.0, 1.0])}
    rules = [Rule("min", "m", 0.3), Rule("max", "x", 6.0)]
    keep, removed = keep_mask(rules, resolve_thresholds(rules, values), values, 4)
    assert keep.tolist() == [False, True, False, False]
    assert removed == [2, 1]  # NaN fails the first rule; row 2 fails the second
    assert sum(removed) == 4 - keep.sum()


def test_percentile_of_an_empty_column_is_an_error():
    with pytest.raises(ValueError, match="has no values"):
        resolve_thresholds([Rule("drop_bottom", "m", 0.5)], {"m": np.array([np.nan])})


def test_near_duplicates_keep_the_first_of_each_group():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 16))
    noisy = base[[0, 0, 1, 2, 2, 2, 3, 4]] + rng.normal(scale=0.01, size=(8, 16))
    keep = near_duplicates(noisy, cosine=0.99)
    assert keep.tolist() == [True, False, True, True, False, False, True, True]


def test_near_duplicates_do_not_depend_on_block_size():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(50, 8))
    e = np.concatenate([e, e[::3] + 1e-3])
    assert np.array_equal(near_duplicates(e, 0.999, block=7), near_duplicates(e, 0.999))
    assert near_duplicates(e, 0.999).sum() == 50
