"""`lvd filter` on Ray Data (issue 15): the same output as in-process, from local disk and
from object storage (moto's S3 server), with percentiles over the whole input."""

import json

import fsspec
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.common import shards, storage
from pipelines.selection import streaming
from tests.test_filter_report import make_run

RULES = ["--drop-bottom", "motion_score=0.3", "--max", "text_area=0.5"]


def outputs(folder) -> tuple[dict, list]:
    root = storage.location(str(folder))
    parts = {p.name: pq.read_table(p.open("rb")).to_pylist() for p in storage.parts(root / "clips")}
    info = json.loads((root / "run.json").read_text())
    return parts, [(r["rule"], r["threshold"], r["removed"]) for r in info["rules"]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("c") / "c1", n_shards=5, per_shard=12)


def test_ray_filter_equals_in_process(ray_local, run_dir, tmp_path):
    here, there = tmp_path / "in_process", tmp_path / "ray"
    assert main(["filter", str(run_dir), "--out", str(here), *RULES]) == 0
    assert (
        main(["filter", str(run_dir), "--out", str(there), *RULES, "--ray-address", "local"]) == 0
    )
    assert outputs(there) == outputs(here)
    assert json.loads((there / "run.json").read_text())["executor"] == "ray"
    assert json.loads((here / "run.json").read_text())["executor"] == "in-process"
    # the percentile cut is taken over all five shards: 30% of 60 clips
    assert outputs(there)[1][0][2] == 18


def test_many_shards_go_to_ray_without_asking(ray_local, run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "RAY_SHARDS", 5)
    out = tmp_path / "auto"
    assert main(["filter", str(run_dir), "--out", str(out), *RULES]) == 0
    assert json.loads((out / "run.json").read_text())["executor"] == "ray"


def test_ray_filter_in_object_storage(ray_local, bucket, run_dir, tmp_path):
    fs = fsspec.filesystem("s3")
    for sub in ("clips", "videos"):
        for p in sorted((run_dir / sub).iterdir()):
            fs.put_file(str(p), f"{bucket}/c1/{sub}/{p.name}")
    src, out = f"s3://{bucket}/c1", f"s3://{bucket}/f1"
    assert main(["filter", src, "--out", out, *RULES, "--ray-address", "local"]) == 0
    local = tmp_path / "local"
    assert main(["filter", str(run_dir), "--out", str(local), *RULES]) == 0
    assert outputs(out) == outputs(local)
    assert shards.read_table(storage.location(out) / "videos").num_rows == 10
