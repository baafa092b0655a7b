"""Semantic de-duplication (SemDeDup): planted duplicate groups among unrelated clips."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.filtering import near_duplicates
from curate.semdedup import semantic_dedup
from pipelines.cli import main
from pipelines.common import shards
from tests.test_filter_report import make_run


def planted(n=6000, dim=96, groups=60, size=4, cosine=0.98, seed=0):
    """Unrelated unit vectors, and `groups` groups of `size` rows at `cosine` to a base row."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    members = rng.choice(n, size=(groups, size), replace=False)
    for rows in members:
        base = x[rows[0]]
        for r in rows[1:]:
            noise = rng.standard_normal(dim).astype(np.float32)
            noise -= (noise @ base) * base
            x[r] = cosine * base + np.sqrt(1 - cosine**2) * noise / np.linalg.norm(noise)
    return x.astype(np.float16), members


def test_planted_groups_keep_one_clip_each_and_nothing_else_is_removed():
    x, members = planted()
    found = semantic_dedup(x, 0.9, clusters=12)
    dropped = set(np.flatnonzero(~found.keep))
    for rows in members:
        assert sum(found.keep[rows]) == 1  # one clip survives per group
        assert len({found.group[r] for r in rows}) == 1  # and the group is one group
    assert dropped == {r for rows in members for r in rows if not found.keep[r]}
    assert len(dropped) == members.shape[0] * (members.shape[1] - 1)


def test_the_keep_rule_keeps_the_highest_priority_and_else_the_earliest():
    x, members = planted(groups=20)
    priority = np.zeros(len(x))
    best = members[:, 2]
    priority[best] = 1.0
    found = semantic_dedup(x, 0.9, priority=priority, clusters=6)
    assert found.keep[best].all()
    ties = semantic_dedup(x, 0.9, clusters=6)
    assert ties.keep[members.min(axis=1)].all()


def test_it_agrees_with_exact_greedy_on_tight_groups():
    x, _ = planted(n=3000, groups=40)
    exact = near_duplicates(x.astype(np.float32), 0.9)
    assert (semantic_dedup(x, 0.9, clusters=8).keep == exact).all()


def test_one_cluster_is_exact_greedy():
    x, _ = planted(n=800, groups=30, cosine=0.93)
    exact = near_duplicates(x.astype(np.float32), 0.85)
    assert (semantic_dedup(x, 0.85, clusters=1).keep == exact).all()


def test_a_wrong_cosine_is_an_error():
    with pytest.raises(ValueError, match="cosine"):
        semantic_dedup(np.zeros((3, 4), np.float16), 1.5)


def _set_embeddings(folder, values):
    """Replace the clip_embedding column of every shard, row by row, in order."""
    k = 0
    for path in sorted((folder / "clips").glob("part-*.parquet")):
        table = pq.read_table(path)
        n = table.num_rows
        column = pa.array(values[k : k + n], pa.list_(pa.float16()))
        table = table.set_column(
            table.schema.get_field_index("clip_embedding"), "clip_embedding", column
        )
        pq.write_table(table, path)
        k += n


def test_filter_writes_the_groups_and_counts_clips_without_an_embedding(tmp_path):
    run = make_run(tmp_path / "c1")
    x, members = planted(n=60, dim=8, groups=3, size=3, cosine=0.999)
    values = [list(map(float, row)) for row in x]
    values[5] = None  # a clip without an embedding: kept, counted
    values[7] = None
    _set_embeddings(run, [v if v is None else np.float16(v) for v in values])
    out = tmp_path / "f1"
    assert main(["filter", str(run), "--out", str(out), "--dedup", "0.99"]) == 0
    groups = pq.read_table(out / "duplicates" / "part-00000.parquet").to_pylist()
    ids = shards.read_table(run / "clips")["clip_id"].to_pylist()
    kept_ids = set(shards.read_table(out / "clips")["clip_id"].to_pylist())
    by_group: dict[int, list] = {}
    for row in groups:
        by_group.setdefault(row["group_id"], []).append(row)
    planted_groups = [sorted(ids[r] for r in rows if r not in (5, 7)) for rows in members]
    assert sorted(sorted(r["clip_id"] for r in g) for g in by_group.values()) == sorted(
        g for g in planted_groups if len(g) > 1
    )
    for g in by_group.values():
        assert sum(r["kept"] for r in g) == 1
        assert all((r["clip_id"] in kept_ids) == r["kept"] for r in g)
    info = json.loads((out / "run.json").read_text())
    dedup = info["rules"][-1]
    assert dedup["null_embeddings"] == 2 and {ids[5], ids[7]} <= kept_ids
    assert dedup["removed"] == sum(len(g) - 1 for g in by_group.values())


def test_embeddings_of_different_lengths_are_a_one_line_error(tmp_path, capsys):
    run = make_run(tmp_path / "c1")
    values = [np.ones(8, np.float16)] * 60
    values[3] = np.ones(12, np.float16)
    _set_embeddings(run, values)
    assert main(["filter", str(run), "--out", str(tmp_path / "f"), "--dedup", "0.9"]) == 2
    err = capsys.readouterr().err
    assert "different lengths (8, 12" in err and err.count("\n") == 1


def test_the_report_shows_duplicate_groups_side_by_side(tmp_path):
    run = make_run(tmp_path / "c1")
    x, _ = planted(n=60, dim=8, groups=2, size=3, cosine=0.999)
    _set_embeddings(run, list(x))
    out = tmp_path / "f1"
    assert main(["filter", str(run), "--out", str(out), "--dedup", "0.99"]) == 0
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Duplicate groups (2; the 2 largest)" in page
    assert page.count("<b>kept</b>") == 2 and page.count("<b>dropped</b>") == 4
