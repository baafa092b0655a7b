"""Under bad inputs and faults nothing is lost (issue 9): awkward corpora, killed workers."""

import json
import os
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.cli import main
from tests import synth
from tests.test_curate_pipeline import ROOT, assert_same_rows, curate_command, rows

pytestmark = pytest.mark.slow


def _write_ffv1(path, frames, fps=24):
    """ffv1 in Matroska: the one lossless codec here that takes odd frame sizes."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _write_audio_mp4(path):
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        for i in range(20):
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """One folder of every kind of awkward and broken file, and what each must become."""
    d = tmp_path_factory.mktemp("awkward")
    pan = synth.join([synth.Shot(1, 72, 2.0)], 96, 64)
    expect = {}
    synth.write(d / "good.mp4", pan, fps=24)
    expect["good.mp4"] = ("ok", "clips")
    (d / "zero bytes.mp4").write_bytes(b"")
    expect["zero bytes.mp4"] = ("error", "empty")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    expect["random.mp4"] = ("error", "unreadable")
    data = (d / "good.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    expect["truncated.mp4"] = ("error", "unreadable")
    (d / "text.mp4").write_text("this is a text file, renamed\n" * 100)
    expect["text.mp4"] = ("error", "unreadable")
    _write_audio_mp4(d / "audio only.mp4")
    expect["audio only.mp4"] = ("error", "no_video")
    (d / "codec.mp4").write_bytes(data.replace(b"avc1", b"zzz1").replace(b"avcC", b"zzzC"))
    expect["codec.mp4"] = ("error", "unsupported_codec")
    synth.write(d / "three_frames.mp4", pan[:3], fps=24)
    expect["three_frames.mp4"] = ("ok", "none")
    synth.write(d / "black.mp4", [np.zeros((64, 96, 3), np.uint8)] * 96, fps=24)
    expect["black.mp4"] = ("ok", "none")
    _write_ffv1(
        d / "odd 33x17.mkv", [f[:17, :33] for f in synth.join([synth.Shot(2, 72, 1.0)], 48, 24)]
    )
    expect["odd 33x17.mkv"] = ("ok", "clips")
    synth.write(d / "portrait.mp4", pan, fps=24, rotation=90)
    expect["portrait.mp4"] = ("ok", "clips")
    synth.write(d / "hd.mp4", synth.join([synth.Shot(3, 60, 8.0)], 1920, 1080), fps=24)
    expect["hd.mp4"] = ("ok", "clips")
    nested = d / "sub dir" / "ñandú" / "deeper"
    nested.mkdir(parents=True)
    synth.write(nested / "été à la plage.mp4", pan, fps=24)
    expect["été à la plage.mp4"] = ("ok", "clips")
    (d / "notes.pdf").write_bytes(b"%PDF-1.4")
    (nested / "data.json").write_text("{}")
    return d, expect


def test_awkward_corpus_finishes_with_one_row_per_file(awkward, tmp_path):
    folder, expect = awkward
    out = tmp_path / "out"
    assert (
        main(
            [
                "curate",
                str(folder),
                "--out",
                str(out),
                "--preset",
                "tiny",
                "--stages",
                "shots,motion",
                "--num-cpus",
                "2",
            ]
        )
        == 0
    )
    videos = {Path(r["video_path"]).name: r for r in rows(out, "videos")}
    assert set(videos) == set(expect)
    for name, (status, what) in expect.items():
        row = videos[name]
        assert row["status"] == status, (name, row["error"])
        if status == "error":
            assert row["error_kind"] == what, (name, row["error"])
            assert row["error"].startswith(what) and "\n" not in row["error"]
        elif what == "clips":
            assert row["num_clips"] >= 1, name
        else:
            assert row["num_clips"] == 0, name
    assert (videos["portrait.mp4"]["width"], videos["portrait.mp4"]["height"]) == (64, 96)
    assert (videos["odd 33x17.mkv"]["width"], videos["odd 33x17.mkv"]["height"]) == (33, 17)
    info = json.loads((out / "run.json").read_text())
    assert info["runs"][-1]["skipped_non_video"] == 2
    assert info["videos"] == len(expect)


@pytest.fixture(scope="module")
def slow_corpus(tmp_path_factory):
    """Videos that take a couple of seconds each, so a worker can be killed mid-task."""
    d = tmp_path_factory.mktemp("slow")
    for k in range(6):
        shots = [synth.Shot(k * 3 + 1, 150, 2.0), synth.Shot(k * 3 + 2, 150, 0.5)]
        synth.write(d / f"v{k}.mp4", synth.join(shots, 480, 320), fps=24)
    return d


def _curate_cmd(corpus, out):
    return curate_command(corpus, out, "pipeline.videos_per_task=1", stages="shots,motion")


def _analysis_workers() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "analyze_batch" in line]


def test_a_killed_ray_worker_is_retried_and_changes_nothing(slow_corpus, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reference = tmp_path / "reference"
    subprocess.run(
        _curate_cmd(slow_corpus, reference),
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _curate_cmd(slow_corpus, out),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, killed = time.time() + 300, None
    while time.time() < deadline and killed is None and proc.poll() is None:
        workers = _analysis_workers()
        if workers and list((out / "videos").glob("part-*.parquet")):
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, "no analysis worker was caught mid-run"
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert_same_rows(rows(out, "videos"), rows(reference, "videos"))
    assert_same_rows(rows(out, "clips"), rows(reference, "clips"))
