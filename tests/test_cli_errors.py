"""Wrong invocations of every command: each exits 2 with one line and no traceback.

Each case runs the real `lvd` entry point (pipelines.cli.main) in this process, with the
file descriptors captured (the quiet console writes to them directly), on small run
folders and model folders made here. The error must come before any work: nothing here
decodes a video or starts Ray.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.checkpoint import save_model
from model.config import preset
from model.dit import DiT
from model.vae import VAE
from pipelines.cli import main

CLIP_COLUMNS = {
    "clip_id": pa.string(), "video_id": pa.string(), "video_path": pa.string(),
    "start_s": pa.float64(), "end_s": pa.float64(), "fps": pa.float64(),
    "width": pa.int32(), "height": pa.int32(), "caption": pa.string(),
    "motion_score": pa.float32(), "aesthetic_score": pa.float32(),
}  # fmt: skip


def write_run(folder, rows: int = 4, caption: str | None = "a red circle moving left",
              drop: tuple[str, ...] = ()):  # fmt: skip
    """A run folder with one clips shard (and an empty videos one), as curate writes."""
    (folder / "clips").mkdir(parents=True)
    (folder / "videos").mkdir()
    data = {
        "clip_id": [f"v-{i}" for i in range(rows)], "video_id": ["v"] * rows,
        "video_path": ["/nowhere/v.mp4"] * rows, "start_s": [0.0] * rows,
        "end_s": [3.0] * rows, "fps": [8.0] * rows, "width": [64] * rows,
        "height": [64] * rows, "caption": [caption] * rows,
        "motion_score": [0.1 * i for i in range(rows)],
        "aesthetic_score": [5.0] * rows,
    }  # fmt: skip
    schema = pa.schema([(k, t) for k, t in CLIP_COLUMNS.items() if k not in drop])
    table = pa.table({k: data[k] for k in schema.names}, schema=schema)
    pq.write_table(table, folder / "clips" / "part-00000.parquet")
    pq.write_table(pa.table({"video_id": ["v"]}), folder / "videos" / "part-00000.parquet")
    (folder / "run.json").write_text(json.dumps({"command": "curate"}))
    return folder


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    cfg = preset("tiny")
    save_model(root / "model", cfg, vae=VAE(cfg.vae), dit=DiT(cfg.dit))
    save_model(root / "vae-only", cfg, vae=VAE(cfg.vae))
    other = preset("tiny")
    other.dit.depth += 1
    save_model(root / "other-model", other, vae=VAE(other.vae), dit=DiT(other.dit))
    # the weights of a deeper DiT beside the config of the tiny one
    (root / "other-model" / "config.json").write_text((root / "model" / "config.json").read_text())
    write_run(root / "run")
    write_run(root / "uncaptioned", caption=None)
    write_run(root / "no-caption-column", drop=("caption",))
    (root / "empty-dir").mkdir()
    (root / "a-file.mp4").write_bytes(b"not a folder")
    (root / "not-an-image.png").write_text("text, not pixels")
    (root / "prompts-empty.txt").write_text("\n\n")
    (root / "bad.yaml").write_text("shots: [unclosed\n")
    (root / "list.csv").write_text("name,caption\nx.mp4,a cat\n")
    return root


CASES = [
    # (id, argv with {root} for the folder above, a few words the line must hold)
    ("curate: no input", ["curate", "--out", "{root}/o1"], "no INPUT"),
    ("curate: missing input", ["curate", "{root}/missing.mp4", "--out", "{root}/o2"], "not found"),
    ("curate: --out is a file", ["curate", "{root}/empty-dir", "--out", "{root}/a-file.mp4"], "is a file"),
    ("curate: --out under a file", ["curate", "{root}/empty-dir", "--out", "{root}/a-file.mp4/x"], "cannot be created"),
    ("curate: unknown stage", ["curate", "{root}/empty-dir", "--out", "{root}/o3", "--stages", "shots,colour"], "unknown stage"),
    ("curate: unknown key", ["curate", "{root}/empty-dir", "--out", "{root}/o4", "--set", "shots.min_clip_z=3"], "min_clip_z"),
    ("curate: wrong type", ["curate", "{root}/empty-dir", "--out", "{root}/o5", "--set", "decode.threads=many"], "decode.threads"),
    ("curate: invalid value", ["curate", "{root}/empty-dir", "--out", "{root}/o6", "--set", "shots.max_clip_s=0.5"], "max_clip_s"),
    ("curate: unknown preset", ["curate", "{root}/empty-dir", "--out", "{root}/o7", "--preset", "huge"], "unknown preset"),
    ("curate: missing config file", ["curate", "{root}/empty-dir", "--out", "{root}/o8", "--config", "{root}/none.yaml"], "not found"),
    ("curate: malformed config file", ["curate", "{root}/empty-dir", "--out", "{root}/o9", "--config", "{root}/bad.yaml"], "cannot parse"),
    ("curate: list without a path column", ["curate", "{root}/list.csv", "--out", "{root}/o10", "--stages", "shots"], "path"),
    ("curate: bucketless URI", ["curate", "s3://", "--out", "{root}/o11", "--stages", "shots"], "names no bucket"),
    ("curate: bucketless --out", ["curate", "{root}/empty-dir", "--out", "s3://"], "names no bucket"),
    ("curate: uncached caption model", ["curate", "{root}/empty-dir", "--out", "{root}/o12", "--stages", "shots,caption"], "caption.model"),
    ("curate: unknown clip model", ["curate", "{root}/empty-dir", "--out", "{root}/o13", "--stages", "shots,clip", "--set", "clip.model=ViT-Q-99"], "clip.model"),
    ("curate: unknown clip tag", ["curate", "{root}/empty-dir", "--out", "{root}/o14", "--stages", "shots,clip", "--set", "clip.pretrained=nowhere"], "clip.pretrained"),
    ("curate: missing aesthetic head", ["curate", "{root}/empty-dir", "--out", "{root}/o15", "--stages", "shots,clip", "--set", "clip.pretrained=", "--set", "clip.aesthetic_weights={root}/none.pth"], "aesthetic"),
    ("curate: GPU asked, none here", ["curate", "{root}/empty-dir", "--out", "{root}/o16", "--stages", "shots,text", "--set", "text.device=cuda"], "text.device"),
    ("curate: not a number", ["curate", "{root}/empty-dir", "--out", "{root}/o17", "--num-cpus", "two"], "invalid int"),
    ("filter: missing input", ["filter", "{root}/missing", "--out", "{root}/f1"], "not found"),
    ("filter: not a run", ["filter", "{root}/empty-dir", "--out", "{root}/f2"], "not a curated run"),
    ("filter: --out is the input", ["filter", "{root}/run", "--out", "{root}/run"], "must differ"),
    ("filter: unknown column", ["filter", "{root}/run", "--out", "{root}/f3", "--min", "colour_score=1"], "colour_score"),
    ("filter: value not a number", ["filter", "{root}/run", "--out", "{root}/f4", "--min", "motion_score=high"], "not a number"),
    ("filter: fraction out of range", ["filter", "{root}/run", "--out", "{root}/f5", "--drop-bottom", "motion_score=1.5"], "fraction"),
    ("filter: cosine out of range", ["filter", "{root}/run", "--out", "{root}/f6", "--dedup", "2"], "cosine"),
    ("report: missing folder", ["report", "{root}/missing"], "not"),
    ("report: not a run", ["report", "{root}/empty-dir"], "not a curated or filtered run"),
    ("train: no --data", ["train", "--out", "{root}/t1"], "--data"),
    ("train: data not a run", ["train", "--data", "{root}/empty-dir", "--out", "{root}/t2"], "not a curated run"),
    ("train: --out is a file", ["train", "--data", "{root}/run", "--out", "{root}/a-file.mp4"], "is a file"),
    ("train: unknown preset", ["train", "--data", "{root}/run", "--out", "{root}/t3", "--preset", "huge"], "unknown preset"),
    ("train: invalid value", ["train", "--data", "{root}/run", "--out", "{root}/t4", "--preset", "tiny", "--set", "video.steps=-1"], "steps"),
    ("train: bad frame count", ["train", "--data", "{root}/run", "--out", "{root}/t5", "--preset", "tiny", "--set", "video.frames=4"], "frames"),
    ("train: bad data rule", ["train", "--data", "{root}/run", "--out", "{root}/t6", "--preset", "tiny", "--set", "video.rules=[most motion_score=1]"], "data rule"),
    ("train: rule on a missing column", ["train", "--data", "{root}/run", "--out", "{root}/t7", "--preset", "tiny", "--set", "video.rules=[min colour=1]"], "colour"),
    ("train: rules keep nothing", ["train", "--data", "{root}/run", "--out", "{root}/t8", "--preset", "tiny", "--set", "video.rules=[min motion_score=100]"], "no clip"),
    ("train: run missing a column", ["train", "--data", "{root}/no-caption-column", "--out", "{root}/t9", "--preset", "tiny"], "caption"),
    ("train: clips without captions", ["train", "--data", "{root}/uncaptioned", "--out", "{root}/t10", "--preset", "tiny"], "allow_uncaptioned"),
    ("generate: no prompt", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4"], "prompt"),
    ("generate: empty prompts file", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--prompts-file", "{root}/prompts-empty.txt"], "prompt"),
    ("generate: missing prompts file", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g", "--prompts-file", "{root}/none.txt"], "not found"),
    ("generate: not a model", ["generate", "--ckpt", "{root}/empty-dir", "--out", "{root}/g.mp4", "a cat"], "neither a model folder"),
    ("generate: VAE only", ["generate", "--ckpt", "{root}/vae-only", "--out", "{root}/g.mp4", "a cat"], "no DiT"),
    ("generate: weights of another model", ["generate", "--ckpt", "{root}/other-model", "--out", "{root}/g.mp4", "a cat"], "do not match"),
    ("generate: bad frame count", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--frames", "4", "a cat"], "--frames"),
    ("generate: bad size", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--size", "wide", "a cat"], "--size"),
    ("generate: size off the grid", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--size", "30x30", "a cat"], "multiples"),
    ("generate: image that is not an image", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--image", "{root}/not-an-image.png", "a cat"], "cannot read image"),
    ("generate: last image alone", ["generate", "--ckpt", "{root}/model", "--out", "{root}/g.mp4", "--last-image", "{root}/not-an-image.png", "a cat"], "--last-image"),
    ("demo: no videos", ["demo", "--out", "{root}/d1", "--videos-per-combo", "0"], "videos-per-combo"),
    ("demo: unknown preset", ["demo", "--out", "{root}/d2", "--preset", "huge"], "invalid choice"),
    ("lvd: unknown command", ["colour"], "invalid choice"),
]  # fmt: skip


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_invocation_is_one_line_and_exit_2(place, capfd, monkeypatch, argv, words):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LVD_CACHE", str(place / "cache"))  # no aesthetic head cached here
    try:
        code = main([a.format(root=place) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    assert words in lines[0], lines[0]


def test_there_are_at_least_thirty_cases_across_every_command():
    commands = {c[1][0] for c in CASES}
    assert len(CASES) >= 30
    assert commands >= {"curate", "filter", "report", "train", "generate", "demo"}


@pytest.mark.slow
def test_a_stage_failing_inside_ray_is_one_line_with_the_log(tmp_path):
    """A model that passes preflight (a folder with a config.json) but cannot load in its
    Ray actor: the run stops once, on one lvd line naming the model and OUT/logs, with
    Ray's own messages in the log instead of on the console; --verbose shows them."""
    import subprocess
    import sys

    from tests import synth

    video = synth.write(tmp_path / "v.mp4", list(synth.shot_frames(synth.Shot(1, 48, 0.2), 64, 48)))
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")

    def curate(out, *extra):
        cmd = [sys.executable, "-m", "pipelines.cli", "curate", str(video), "--out", str(out),
               "--preset", "tiny", "--stages", "shots,caption", "--set",
               f"caption.model={broken}", *extra]  # fmt: skip
        env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(cmd, capture_output=True, timeout=300, env=env)
        done.stderr = done.stderr.decode()  # bytes first: text mode would turn \r into \n
        return done

    quiet = curate(tmp_path / "quiet")
    assert quiet.returncode == 2, quiet.stderr
    last = quiet.stderr.strip().splitlines()[-1]
    assert "caption model" in last and "caption.model" in last
    assert f"full log: {tmp_path / 'quiet' / 'logs'}" in last
    assert "Traceback" not in quiet.stderr and "pid=" not in quiet.stderr
    # what it does, the progress bar (redrawn with \r), the error
    assert len(quiet.stderr.strip().split("\n")) <= 3
    logs = tmp_path / "quiet" / "logs"
    assert "ModelLoadError" in (logs / "error.log").read_text()
    assert any(logs.glob("workers/*.err"))

    verbose = curate(tmp_path / "verbose", "--verbose")
    assert verbose.returncode == 2
    assert "pid=" in verbose.stderr  # the actor's own log lines, streamed by Ray
