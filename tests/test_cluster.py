"""`lvd curate --ray-address` on a real multi-node Ray cluster (issue 14): three Ray
nodes on this machine (ray.cluster_utils.Cluster), corpus and run in object storage
(moto's S3 server from conftest.py). Analysis runs on every node, run.json counts the
videos each node analysed, and a worker node removed mid-run changes nothing in the
shards."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from pipelines.common import shards, storage
from tests import synth

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = 8


@pytest.fixture(scope="module")
def raw(s3_server, tmp_path_factory):
    """Eight two-shot videos in a bucket."""
    import boto3

    d = tmp_path_factory.mktemp("raw")
    bucket = "lvd-cluster"
    boto3.client("s3").create_bucket(Bucket=bucket)
    fs = fsspec.filesystem("s3")
    for k in range(VIDEOS):
        shots = [synth.Shot(3 * k + 1, 60, 2.0), synth.Shot(3 * k + 2, 60, 0.0)]
        synth.write(d / f"v{k}.mp4", synth.join(shots, 96, 64), fps=24)
        fs.put_file(str(d / f"v{k}.mp4"), f"{bucket}/raw/v{k}.mp4")
    return f"s3://{bucket}/raw"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and two worker nodes, one CPU each, as separate raylets."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


def curate_command(raw: str, out: str, address: str) -> list[str]:
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", raw, "--out", out]
    cmd += ["--preset", "tiny", "--ray-address", address]
    for s in ("pipeline.videos_per_task=1", "pipeline.videos_per_shard=1"):
        cmd += ["--set", s]
    return cmd


def spans(run: str) -> dict:
    """Clip spans and scores per video file: what must not change across runs."""
    table = shards.read_table(storage.location(run) / "clips")
    out: dict = {}
    for c in table.to_pylist():
        key = c["video_path"].rsplit("/", 1)[-1]
        out.setdefault(key, []).append((c["start_frame"], c["end_frame"], c["caption"]))
    return {k: sorted(v) for k, v in out.items()}


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def whole_run(cluster, raw):
    c, _ = cluster
    out = raw.replace("/raw", "/runs/whole")
    done = subprocess.run(
        curate_command(raw, out, c.address), cwd=ROOT, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_analysis_runs_on_every_node(cluster, whole_run):
    c, workers = cluster
    info = json.loads(storage.location(whole_run + "/run.json").read_text())
    nodes = info["runs"][-1]["nodes"]
    assert sum(nodes.values()) == VIDEOS and info["videos_ok"] == VIDEOS
    expected = {c.head_node.node_id, *(w.node_id for w in workers)}
    assert set(nodes) == expected, nodes  # each node analysed some of the videos
    assert len(spans(whole_run)) == VIDEOS


def test_filter_on_the_cluster_equals_filter_in_process(cluster, whole_run):
    # issue 15: `lvd filter --ray-address` reads and writes the shards on the cluster's
    # workers; the kept rows are the same as in one process
    c, _ = cluster
    outs = {}
    for name, extra in (("ray", ["--ray-address", c.address]), ("local", [])):
        out = whole_run.replace("/whole", f"/filtered-{name}")
        cmd = [sys.executable, "-m", "pipelines.cli", "filter", whole_run, "--out", out]
        cmd += ["--drop-bottom", "motion_score=0.5", *extra]
        done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        info = json.loads(storage.location(out + "/run.json").read_text())
        assert info["executor"] == ("ray" if extra else "in-process")
        outs[name] = spans(out)
    assert outs["ray"] == outs["local"] and sum(map(len, outs["ray"].values())) > 0


@pytest.mark.slow
def test_a_worker_node_removed_mid_run_changes_nothing(cluster, raw, whole_run):
    c, workers = cluster
    out = raw.replace("/raw", "/runs/lost-node")
    proc = subprocess.Popen(
        curate_command(raw, out, c.address),
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    videos = storage.location(out) / "videos"
    deadline = time.time() + 240
    while time.time() < deadline and not storage.parts(videos) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before a node could be removed"
    c.remove_node(workers[-1])  # its running tasks and actors die with it
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert spans(out) == spans(whole_run)
    table = shards.read_table(videos)
    assert table.num_rows == VIDEOS and set(table["status"].to_pylist()) == {"ok"}
