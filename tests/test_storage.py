"""Corpora and runs in object storage (issue 14), against a real S3-protocol server on
localhost (moto's server mode, started by conftest.py): curate from s3 to s3, kill -9
and resume there, filter, report, train and generate from s3, and one-line errors at
start-up for a missing bucket, missing credentials and a denied write."""

import http.server
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from pipelines.cli import main
from pipelines.common import shards, storage
from tests import synth

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("raw"))


def write_corpus(d: Path) -> Path:
    """Three videos with cuts (one with a sidecar caption, one in a sub-folder) and two
    bad files, the same on disk and in a bucket."""
    (d / "nested").mkdir()
    for k, name in enumerate(["a.mp4", "nested/b.mp4", "c.mp4"]):
        shots = [synth.Shot(10 * k + 1, 60, 2.0), synth.Shot(10 * k + 2, 60, 0.0)]
        synth.write(d / name, synth.join(shots, 96, 64), fps=24)
    (d / "a.txt").write_text("a sidecar caption\n")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mkv").write_bytes(b"\x00garbage" * 625)  # fixed: random bytes can probe as audio
    return d


@pytest.fixture(scope="module")
def raw_bucket(s3_server, corpus):
    import boto3

    name = "lvd-raw-corpus"
    boto3.client("s3").create_bucket(Bucket=name)
    fs = fsspec.filesystem("s3")
    for p in sorted(corpus.rglob("*")):
        if p.is_file():
            fs.put_file(str(p), f"{name}/raw/{p.relative_to(corpus).as_posix()}")
    return f"s3://{name}/raw"


def curate(inputs, out, *extra) -> int:
    return main(["curate", inputs, "--out", out, "--preset", "tiny", "--num-cpus", "2", *extra])


def by_video(run) -> dict:
    """What curation found per video, by file name: status and clip spans."""
    run = storage.location(run)
    videos = shards.read_table(run / "videos").to_pylist()
    clips = shards.read_table(run / "clips").to_pylist()
    out = {}
    for v in videos:
        spans = sorted(
            (c["start_frame"], c["end_frame"], c["caption_source"])
            for c in clips
            if c["video_id"] == v["video_id"]
        )
        out[v["video_path"].rsplit("/", 1)[-1]] = (v["status"], v["error_kind"], spans)
    return out


@pytest.fixture(scope="module")
def local_run(ray_local, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    assert curate(str(corpus), str(out)) == 0
    return out


@pytest.fixture(scope="module")
def s3_run(ray_local, raw_bucket):
    out = raw_bucket.replace("/raw", "/runs/c1")
    assert curate(raw_bucket, out) == 0
    return out


def test_curate_from_s3_to_s3_equals_a_local_run(s3_run, local_run):
    remote, local = by_video(s3_run), by_video(local_run)
    assert remote == local
    assert remote["a.mp4"][2] and all(src == "sidecar" for *_, src in remote["a.mp4"][2])
    assert remote["empty.mp4"][:2] == ("error", "empty")
    info = json.loads(storage.location(s3_run + "/run.json").read_text())
    assert info["videos"] == 5 and info["videos_ok"] == 3
    assert sum(info["runs"][-1]["nodes"].values()) == 5  # videos analysed per node
    videos = shards.read_table(storage.location(s3_run) / "videos")
    assert {p.split("://")[0] for p in videos["video_path"].to_pylist()} == {"s3"}


def test_rerun_on_s3_skips_everything(s3_run, raw_bucket):
    before = [p.name for p in storage.parts(storage.location(s3_run) / "videos")]
    assert curate(raw_bucket, s3_run) == 0
    assert [p.name for p in storage.parts(storage.location(s3_run) / "videos")] == before
    info = json.loads(storage.location(s3_run + "/run.json").read_text())
    assert info["runs"][-1]["skipped_already_done"] == 5


def test_list_file_and_glob_in_a_bucket(ray_local, raw_bucket, s3_run, tmp_path):
    fs = fsspec.filesystem("s3")
    listing = raw_bucket.split("://")[1].replace("/raw", "/lists/some.txt")
    fs.pipe_file(listing, b"../raw/a.mp4\n../raw/nested/b.mp4\n")
    from pipelines.curation.inputs import list_inputs

    listed = [it.path for it in list_inputs([f"s3://{listing}"]).items]
    assert listed == [f"{raw_bucket}/a.mp4", f"{raw_bucket}/nested/b.mp4"]
    globbed = list_inputs([f"{raw_bucket}/*.mp4"]).items
    assert sorted(it.path.rsplit("/", 1)[1] for it in globbed) == ["a.mp4", "c.mp4", "empty.mp4"]
    assert [it.caption_path for it in globbed if it.path.endswith("a.mp4")] == [
        f"{raw_bucket}/a.txt"
    ]


@pytest.mark.slow
def test_kill_9_on_s3_then_rerun_equals_uninterrupted(raw_bucket, local_run):
    """The driver killed with SIGKILL mid-run: readers see only whole shards, and the
    same command again completes the run."""
    out = raw_bucket.replace("/raw", "/runs/killed")
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", raw_bucket, "--out", out]
    cmd += ["--preset", "tiny", "--num-cpus", "2"]
    for s in ("pipeline.videos_per_shard=1", "pipeline.videos_per_task=1"):
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    videos = storage.location(out) / "videos"
    deadline = time.time() + 240
    while time.time() < deadline and not storage.parts(videos):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    seen = by_video(out)
    assert len(seen) < 5, "the kill landed after the last shard: nothing was resumed"
    assert all(seen[name] == by_video(local_run)[name] for name in seen)  # whole videos only
    assert subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True).returncode == 0
    assert by_video(out) == by_video(local_run)
    names = [p.name for p in storage.parts(storage.location(out) / "clips")]
    assert sorted(names) == sorted(p.name for p in storage.parts(videos))  # no orphan


def test_filter_report_train_and_generate_from_s3(s3_run, tmp_path):
    filtered = s3_run.replace("/c1", "/f1")
    assert main(["filter", s3_run, "--out", filtered, "--min", "motion_score=0"]) == 0
    kept = shards.read_table(storage.location(filtered) / "clips")
    assert 0 < kept.num_rows <= shards.read_table(storage.location(s3_run) / "clips").num_rows
    assert json.loads(storage.location(filtered + "/run.json").read_text())["command"] == "filter"

    assert main(["report", filtered]) == 0
    page = storage.location(filtered + "/report.html").read_text()
    assert "<h1>lvd report" in page and "data:image/png" in page

    run = s3_run.replace("/c1", "/t1")
    steps = [
        "vae.steps=2",
        "image.steps=0",
        "video.steps=2",
        "hq.steps=0",
        "allow_uncaptioned=true",
    ]
    args = ["train", "--data", filtered, "--out", run, "--preset", "tiny"]
    args += [x for s in (*steps, "checkpoint_every=2", "sample_every=0") for x in ("--set", s)]
    assert main(args) == 0
    remote = storage.location(run)
    assert (remote / "final" / "config.json").exists() and (remote / "metrics.jsonl").exists()
    checkpoints = storage.parts(remote / "checkpoints", "step-*")
    assert checkpoints and all((c / "COMPLETE.json").exists() for c in checkpoints)

    video = tmp_path / "gen.mp4"
    assert main(["generate", "a red square", "--ckpt", run, "--out", str(video),
                 "--steps", "2"]) == 0  # fmt: skip
    assert video.stat().st_size > 0


def test_missing_bucket_is_one_line_at_start_up(s3_server, raw_bucket, capsys):
    assert curate(raw_bucket, "s3://lvd-no-such-bucket/run") == 2
    assert "--out s3://lvd-no-such-bucket/run is not writable: the bucket does not exist" in (
        capsys.readouterr().err
    )
    assert curate("s3://lvd-no-such-bucket/raw", "s3://lvd-raw-corpus/x") == 2
    assert "the bucket does not exist" in capsys.readouterr().err


def test_missing_credentials_are_one_line_at_start_up(s3_server, raw_bucket, tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_ENDPOINT_URL"
    }
    env.update(
        PYTHONPATH=str(ROOT), AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
    )  # fmt: skip
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(tmp_path), "--out", raw_bucket]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no credentials" in lines[0], done.stderr


def test_a_denied_write_is_one_line_at_start_up(tmp_path):
    """A second S3 server that checks credentials (moto's IAM mode): ours are unknown."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "1"}  # the bucket's creation
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lvd-locked")
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(tmp_path)]
        cmd += ["--out", "s3://lvd-locked/run"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.kill()
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not writable: access denied" in lines[0], done.stderr


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that answers Range requests (as object stores and CDNs do;
    http.server alone sends whole files)."""

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            first, _, last = self.headers["Range"][6:].partition("-")
            start = int(first) if first else max(0, size - int(last))
            end = min(int(last), size - 1) if first and last else end
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        f = open(path, "rb")  # noqa: SIM115 (http.server closes it once copied)
        f.seek(start)
        self.left = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        while self.left > 0:
            chunk = source.read(min(self.left, 1 << 16))
            if not chunk:
                break
            outputfile.write(chunk)
            self.left -= len(chunk)

    def log_message(self, *args):
        """No line per request on the test's stderr."""


@pytest.fixture(scope="module")
def http_root(corpus, tmp_path_factory):
    """The corpus and a list file of two of its videos, served over http on localhost
    with ranged reads."""
    import functools
    import shutil
    import threading

    root = tmp_path_factory.mktemp("served") / "site"
    shutil.copytree(corpus, root)
    (root / "list.txt").write_text("nested/b.mp4\nc.mp4\n")
    handler = functools.partial(RangeHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_curate_from_a_url_and_a_list_file_served_over_http(http_root, local_run, tmp_path):
    out = tmp_path / "run"
    inputs = [f"{http_root}/a.mp4", f"{http_root}/list.txt"]
    assert main(["curate", *inputs, "--out", str(out), "--preset", "tiny", "--num-cpus", "2"]) == 0
    got, local = by_video(out), by_video(local_run)
    assert got == {name: local[name] for name in ("a.mp4", "b.mp4", "c.mp4")}
    assert {src for *_, src in got["a.mp4"][2]} == {"sidecar"}  # a.txt found beside a.mp4 over http
    paths = {v["video_path"] for v in shards.read_table(out / "videos").to_pylist()}
    assert paths == {f"{http_root}/{p}" for p in ("a.mp4", "nested/b.mp4", "c.mp4")}
