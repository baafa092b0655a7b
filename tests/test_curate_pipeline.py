"""`lvd curate` end to end: local Ray (2 CPUs), tiny models, generated videos.

One Ray for the whole module (ray.init costs seconds); each test curates into its own
folder. Outputs are compared as tables sorted by id, so runs that were stopped and
resumed can be checked row for row against an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipelines.cli import main
from pipelines.common import shards
from pipelines.curation.command import videos_per_task
from tests import synth

ROOT = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = ["analysis_s"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three good videos (cuts inside), one with a sidecar caption, and bad files."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "nested" / "deeper").mkdir(parents=True)
    for k, name in enumerate(["a.mp4", "nested/b.mp4", "nested/deeper/c d é.mp4"]):
        shots = [synth.Shot(10 * k + 1, 60, 2.0), synth.Shot(10 * k + 2, 60, 0.0)]
        synth.write(d / name, synth.join(shots, 96, 64), fps=24)
    (d / "a.txt").write_text("a sidecar caption\n")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mkv").write_bytes(b"\x00garbage" * 625)  # fixed: random bytes can probe as audio
    (d / "readme.md").write_text("not a video")
    return d


def curate(corpus, out, *extra):
    args = ["curate", str(corpus), "--out", str(out), "--preset", "tiny", *extra]
    assert main(args) == 0


def rows(folder, kind):
    table = shards.read_table(Path(folder) / kind)
    key = "clip_id" if kind == "clips" else "video_id"
    table = table.drop_columns([c for c in TIMING_COLUMNS if c in table.column_names])
    return table.sort_by(key).to_pylist()


# Batched inference rounds differently when a clip shares its batch with other clips, so
# model scores of a resumed run may differ from an uninterrupted one in the last bits.
MODEL_FLOATS = {"aesthetic_score", "text_score", "text_area", "clip_embedding"}


def assert_same_rows(a, b):
    assert [r.get("clip_id", r.get("video_id")) for r in a] == [
        r.get("clip_id", r.get("video_id")) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        for k in x:
            if k in MODEL_FLOATS and x[k] is not None and y[k] is not None:
                assert x[k] == pytest.approx(y[k], rel=1e-4, abs=1e-4), k
            else:
                assert x[k] == y[k], (x.get("clip_id"), k)


@pytest.fixture(scope="module")
def full_run(ray_local, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    curate(corpus, out)
    return out


def test_every_input_file_gets_one_video_row(full_run):
    videos = {Path(r["video_path"]).name: r for r in rows(full_run, "videos")}
    assert set(videos) == {"a.mp4", "b.mp4", "c d é.mp4", "empty.mp4", "garbage.mkv"}
    assert videos["empty.mp4"]["error_kind"] == "empty"
    assert videos["garbage.mkv"]["error_kind"] == "unreadable"
    for name in ("a.mp4", "b.mp4", "c d é.mp4"):
        assert videos[name]["status"] == "ok" and videos[name]["num_clips"] >= 2
        assert videos[name]["error"] is None and videos[name]["num_frames"] == 120


def test_clip_rows_carry_every_score(full_run):
    clips = rows(full_run, "clips")
    assert len(clips) == sum(r["num_clips"] for r in rows(full_run, "videos"))
    for clip in clips:
        for col in (
            "motion_score",
            "aesthetic_score",
            "text_score",
            "text_area",
            "caption",
            "caption_source",
            "clip_embedding",
            "keyframes",
        ):
            assert clip[col] is not None, col
        assert clip["keyframes"][0][:2] == b"\xff\xd8"  # JPEG
        assert clip["end_frame"] > clip["start_frame"]
    sources = {Path(c["video_path"]).name: c["caption_source"] for c in clips}
    assert sources["a.mp4"] == "sidecar" and sources["b.mp4"] == "image"
    assert {c["caption"] for c in clips if c["video_path"].endswith("a.mp4")} == {
        "a sidecar caption"
    }


def test_run_json_has_config_counts_and_errors(full_run):
    info = json.loads((full_run / "run.json").read_text())
    assert info["videos"] == 5 and info["videos_ok"] == 3
    assert info["errors_by_kind"] == {"empty": 1, "unreadable": 1}
    assert info["runs"][-1]["skipped_non_video"] == 1  # readme.md
    assert info["config"]["shots"]["min_clip_s"] == 2.0
    assert set(info["runs"][-1]["stage_time_s"]) >= {"analysis", "caption", "clip", "text"}
    assert info["versions"]["ray"]


def test_shards_hold_no_partial_files(full_run):
    names = [p.name for p in (full_run / "clips").iterdir()] + [
        p.name for p in (full_run / "videos").iterdir()
    ]
    assert names and all(n.startswith("part-") and n.endswith(".parquet") for n in names)


def test_rerun_skips_everything_recorded(full_run, corpus):
    before = sorted(p.name for p in (full_run / "videos").iterdir())
    curate(corpus, full_run)
    assert sorted(p.name for p in (full_run / "videos").iterdir()) == before
    info = json.loads((full_run / "run.json").read_text())
    assert info["runs"][-1]["skipped_already_done"] == 5 and info["videos"] == 5


def test_resumed_run_equals_uninterrupted(ray_local, corpus, full_run, tmp_path):
    out = tmp_path / "resumed"
    curate(corpus, out, "--limit", "2", "--set", "pipeline.videos_per_shard=1")
    assert len(rows(out, "videos")) == 2
    curate(corpus, out)
    assert_same_rows(rows(out, "videos"), rows(full_run, "videos"))
    assert_same_rows(rows(out, "clips"), rows(full_run, "clips"))


def test_stage_subset_leaves_other_columns_null(ray_local, corpus, tmp_path):
    curate(corpus, tmp_path / "s", "--stages", "shots")
    clips = shards.read_table(tmp_path / "s" / "clips")
    assert clips.num_rows > 0
    assert pc.all(pc.is_null(clips["clip_embedding"])).as_py()
    assert pc.all(pc.is_nan(clips["motion_score"])).as_py()


def test_bad_stage_name_is_a_one_line_error(corpus, tmp_path, capsys):
    assert main(["curate", str(corpus), "--out", str(tmp_path), "--stages", "shots,ocr"]) == 2
    assert "unknown stage 'ocr'" in capsys.readouterr().err


def curate_command(corpus: Path, out: Path, *settings: str, stages: str = "") -> list[str]:
    """`lvd curate` as a separate process (tiny preset, 2 CPUs, one video per shard)."""
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(corpus), "--out", str(out)]
    cmd += ["--preset", "tiny", "--num-cpus", "2"] + (["--stages", stages] if stages else [])
    for setting in ("pipeline.videos_per_shard=1", *settings):
        cmd += ["--set", setting]
    return cmd


@pytest.mark.slow
def test_kill_9_midway_then_rerun_equals_uninterrupted(corpus, full_run, tmp_path):
    """The driver killed with SIGKILL mid-run; the same command again completes the run."""
    out = tmp_path / "killed"
    # One video per task and per model batch, so rows reach the driver one at a time and
    # the kill lands between shard commits (with batches of 8 they all land at once).
    one_at_a_time = ("pipeline.videos_per_task=1", "caption.batch_size=1", "clip.batch_size=1")
    cmd = curate_command(corpus, out, *one_at_a_time)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "videos").glob("part-*.parquet")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = len(rows(out, "videos"))
    # The premise, checked apart so a failure says which part broke: the driver had
    # committed some videos (none within 240 s: the run hung) and not all of them (the
    # kill came too late to interrupt anything, and the rerun below would test nothing).
    assert recorded >= 1, "no videos row was committed within 240 s"
    assert recorded < 5, "every video was committed before the kill: nothing was interrupted"
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    rerun = json.loads((out / "run.json").read_text())["runs"][-1]
    # the rerun trusts exactly the committed videos rows and analyses only the rest
    assert rerun["skipped_already_done"] == recorded
    assert rerun["videos_processed"] == 5 - recorded
    assert_same_rows(rows(out, "videos"), rows(full_run, "videos"))
    assert_same_rows(rows(out, "clips"), rows(full_run, "clips"))


def test_videos_per_task_auto_takes_4_when_every_cpu_still_gets_4_tasks():
    assert videos_per_task(3, 1000, 2) == 3  # set by the user
    assert videos_per_task(0, 31, 2) == 2
    assert videos_per_task(0, 32, 2) == 4
    assert videos_per_task(0, 1000, 64) == 2  # 64 CPUs: 4 a task would leave 3.9 each
