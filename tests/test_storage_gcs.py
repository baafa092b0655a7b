"""Corpora and runs on Google Cloud Storage (gs://), against a GCS emulator on localhost
(gcp-storage-emulator, started by conftest.py): curate from gs to gs equals a local run,
a rerun skips everything, filter, report and train read and write gs://, and a missing
bucket is one line at start-up. The same code path as s3:// (fsspec through UPath), with
gcsfs underneath."""

import json

import fsspec
import pytest

from pipelines.cli import main
from pipelines.common import shards, storage
from tests.test_storage import by_video, curate, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def raw_bucket(gcs_server, corpus):
    fs = fsspec.filesystem("gs")
    fs.mkdir("lvd-gcs-corpus")
    for p in sorted(corpus.rglob("*")):
        if p.is_file():
            fs.put_file(str(p), f"lvd-gcs-corpus/raw/{p.relative_to(corpus).as_posix()}")
    return "gs://lvd-gcs-corpus/raw"


@pytest.fixture(scope="module")
def gs_run(ray_local, raw_bucket):
    out = raw_bucket.replace("/raw", "/runs/c1")
    assert curate(raw_bucket, out) == 0
    return out


def test_curate_from_gs_to_gs_equals_a_local_run(gs_run, ray_local, corpus, tmp_path):
    local = tmp_path / "local"
    assert curate(str(corpus), str(local)) == 0
    remote = by_video(gs_run)
    assert remote == by_video(local)
    assert remote["a.mp4"][2] and all(src == "sidecar" for *_, src in remote["a.mp4"][2])
    videos = shards.read_table(storage.location(gs_run) / "videos")
    assert {p.split("://")[0] for p in videos["video_path"].to_pylist()} == {"gs"}


def test_rerun_on_gs_skips_everything(gs_run, raw_bucket):
    before = [p.name for p in storage.parts(storage.location(gs_run) / "videos")]
    assert curate(raw_bucket, gs_run) == 0
    assert [p.name for p in storage.parts(storage.location(gs_run) / "videos")] == before
    info = json.loads(storage.location(gs_run + "/run.json").read_text())
    assert info["runs"][-1]["skipped_already_done"] == 5


def test_filter_report_and_train_on_gs(gs_run):
    filtered = gs_run.replace("/c1", "/f1")
    assert main(["filter", gs_run, "--out", filtered, "--min", "motion_score=0"]) == 0
    assert shards.read_table(storage.location(filtered) / "clips").num_rows > 0
    assert main(["report", filtered]) == 0
    assert "<h1>lvd report" in storage.location(filtered + "/report.html").read_text()
    run = gs_run.replace("/c1", "/t1")
    steps = ["vae.steps=2", "image.steps=0", "video.steps=2", "hq.steps=0"]
    args = ["train", "--data", filtered, "--out", run, "--preset", "tiny"]
    args += [x for s in (*steps, "allow_uncaptioned=true") for x in ("--set", s)]
    assert main(args) == 0
    assert (storage.location(run) / "final" / "config.json").exists()


def test_a_missing_gs_bucket_is_one_line_at_start_up(gcs_server, raw_bucket, capsys):
    assert curate(raw_bucket, "gs://lvd-no-such-bucket/run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gs://lvd-no-such-bucket/run is not writable" in err[0], err
