"""`lvd train` on tiny presets: every stage, checkpoints, exact resume, NaN stop, errors.

The data is a run folder that `lvd curate` makes from small synthetic videos (coloured
shapes moving in named directions, two shots joined by a hard cut, a sidecar caption
each).
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from curate.container import probe
from curate.encode import write_video
from model.checkpoint import load_model
from pipelines.cli import main
from pipelines.demo.corpus import caption, shot_frames
from pipelines.training import checkpoints as ckpt

SUBJECTS = [
    ("red", "circle", "left"),
    ("blue", "square", "right"),
    ("green", "triangle", "up"),
    ("yellow", "circle", "down"),
]
FPS = 12


def write_corpus(folder: Path) -> None:
    """Videos of two shots joined by a hard cut, each with a sidecar caption."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k, subject in enumerate(SUBJECTS):
        frames = []
        for _ in range(2):
            n = int(rng.integers(36, 48))  # 3-4 s shots, longer than curation's 2 s minimum
            frames += shot_frames(rng, 64, n, *subject)
        path = folder / f"{'_'.join(subject)}_{k}.mp4"
        write_video(path, frames, FPS)
        path.with_suffix(".txt").write_text(caption(*subject) + "\n")


def make_curated(base: Path) -> Path:
    """A run folder made by `lvd curate --preset tiny --stages shots,motion` (once per
    test session, under `base`): 8 clips, one per shot."""
    out = base / "curated"
    if (out / "clips").is_dir():
        return out
    write_corpus(base / "raw")
    tmp = base / "curated-tmp"
    args = ["curate", str(base / "raw"), "--out", str(tmp), "--preset", "tiny"]
    assert main([*args, "--stages", "shots,motion", "--num-cpus", "2"]) == 0
    import ray

    ray.shutdown()  # the training tests do not need it running
    tmp.rename(out)
    return out


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    return make_curated(tmp_path_factory.getbasetemp())


def train(data: Path, out: Path, *settings: str, extra=(), preset="tiny") -> int:
    args = ["train", "--data", str(data), "--out", str(out)]
    if preset:
        args += ["--preset", preset]
    for s in settings:
        args += ["--set", s]
    return main([*args, *extra])


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


COMPUTED = (
    "stage", "step", "global_step", "loss", "lr", "grad_norm", "l1", "kl", "t_mean",
    "adversarial", "disc_loss",
)  # fmt: skip


def computed(run: Path) -> list[dict]:
    """The metrics that follow from the computation (not timings)."""
    return [{k: m[k] for k in COMPUTED if k in m} for m in metrics(run)]


# -- every stage --------------------------------------------------------------------------

ALL_STAGES = ("vae.steps=2", "image.steps=2", "video.steps=2", "hq.steps=2")


@pytest.fixture(scope="module")
def full_run(curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    settings = ("checkpoint_every=3", "keep_checkpoints=2", "sample_every=3")
    assert train(curated, out, *ALL_STAGES, *settings) == 0
    return out


def test_every_stage_trains_and_logs_each_step(full_run):
    rows = metrics(full_run)
    assert [(m["stage"], m["step"]) for m in rows] == [
        (s, k) for s in ("vae", "image", "video", "hq") for k in (1, 2)
    ]
    assert [m["global_step"] for m in rows] == list(range(1, 9))
    assert all(np.isfinite(m["loss"]) and m["samples_per_s"] > 0 for m in rows)
    assert {"l1", "kl"} <= set(rows[0]) and "t_mean" in rows[-1]


def test_final_folder_is_a_model_with_ema_weights(full_run):
    model = load_model(full_run / "final")
    assert model.vae is not None and model.dit is not None
    newest = ckpt.complete_checkpoints(full_run)[-1]
    ema = load_file(str(newest / "ema_dit.safetensors"))
    final = load_file(str(full_run / "final" / "dit.safetensors"))
    assert all((ema[k] == final[k]).all() for k in final)
    info = json.loads((full_run / "final" / "train.json").read_text())
    assert (info["frames"], info["height"], info["width"]) == (5, 32, 32)


def test_vae_stage_measures_the_latent_scale(full_run):
    scale = load_model(full_run / "vae").config.vae.scaling_factor
    assert scale != pytest.approx(0.7)  # the preset's value, replaced by 1 / latent std
    assert load_model(full_run / "final").config.vae.scaling_factor == scale


def test_resuming_a_finished_run_trains_nothing_and_keeps_the_model(curated, full_run, tmp_path):
    before = load_file(str(full_run / "final" / "dit.safetensors"))
    lines = len(metrics(full_run))
    assert main(["train", "--out", str(full_run), "--resume"]) == 0
    after = load_file(str(full_run / "final" / "dit.safetensors"))
    assert all((before[k] == after[k]).all() for k in before)
    assert len(metrics(full_run)) == lines


def test_dit_stages_can_take_the_vae_of_another_run(curated, full_run, tmp_path):
    out = tmp_path / "run"
    settings = ("vae.steps=0", "image.steps=0", "video.steps=1", "hq.steps=0")
    assert train(curated, out, *settings, f"vae_from={full_run}") == 0
    mine, theirs = load_model(out / "final"), load_model(full_run / "final")
    assert mine.config.vae.scaling_factor == theirs.config.vae.scaling_factor
    a, b = mine.vae.state_dict(), theirs.vae.state_dict()
    assert all((a[k] == b[k]).all() for k in a)


def test_init_from_starts_the_dit_from_a_trained_one(curated, full_run, tmp_path):
    out = tmp_path / "run"
    # hq only, at a learning rate too small to move the weights
    settings = ("vae.steps=0", "image.steps=0", "video.steps=0", "hq.steps=1", "hq.lr=1.0e-12")
    assert train(curated, out, *settings, f"init_from={full_run}") == 0
    a = load_file(str(out / "final" / "dit.safetensors"))
    b = load_file(str(full_run / "final" / "dit.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_only_the_newest_whole_checkpoints_are_kept(full_run):
    folders = ckpt.complete_checkpoints(full_run)
    assert [f.name for f in folders] == ["step-00000006", "step-00000008"]
    assert all(ckpt.problem(f) is None for f in folders)
    state = json.loads((folders[-1] / "trainer.json").read_text())
    assert state["state"]["done"] == ["vae", "image", "video", "hq"]
    assert not list((full_run / "checkpoints").glob(".tmp-*"))


def test_sample_videos_are_written_for_each_stage(full_run):
    recon = probe(full_run / "samples" / "vae-step-00000002" / "recon-00.mp4")
    assert (recon.num_frames, recon.width, recon.height) == (5, 64, 32)  # input | output
    # stage ends, and every sample_every=3 steps (step 3 is in the image stage)
    for stage, step in (("image", 3), ("image", 4), ("video", 6), ("hq", 8)):
        info = probe(full_run / "samples" / f"{stage}-step-{step:08d}" / "00.mp4")
        assert (info.width, info.height) == (32, 32)
        assert info.num_frames == (1 if stage == "image" else 5)


def test_gradient_checkpointing_changes_nothing_but_memory(curated, tmp_path):
    settings = ("vae.steps=1", "image.steps=0", "video.steps=2", "hq.steps=0")
    assert train(curated, tmp_path / "plain", *settings) == 0
    checkpointed = "model.dit.gradient_checkpointing=true"
    assert train(curated, tmp_path / "recompute", *settings, checkpointed) == 0
    assert computed(tmp_path / "plain") == computed(tmp_path / "recompute")


# -- exact resume ---------------------------------------------------------------------------

RESUME = ("vae.steps=3", "image.steps=0", "video.steps=4", "hq.steps=0", "checkpoint_every=2")


@pytest.fixture(scope="module")
def uninterrupted(curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    # loader workers here, none in the interrupted runs: samples do not depend on them
    assert train(curated, out, *RESUME, "num_workers=2") == 0
    return out


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(curated, uninterrupted, tmp_path):
    out = tmp_path / "run"
    assert train(curated, out, *RESUME, extra=["--stop-after", "2"]) == 0  # mid-vae
    assert metrics(out)[-1]["global_step"] == 2
    # same config given again; then nothing but --resume (the run's config and data)
    assert train(curated, out, *RESUME, extra=["--resume", "--stop-after", "3"]) == 0
    assert metrics(out)[-1]["global_step"] == 5  # mid-video
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert computed(out) == computed(uninterrupted)
    for name in ("vae.safetensors", "dit.safetensors"):
        a, b = load_file(str(out / "final" / name)), load_file(str(uninterrupted / "final" / name))
        assert all((a[k] == b[k]).all() for k in a)


def test_resume_skips_a_damaged_newest_checkpoint(curated, uninterrupted, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(curated, out, *RESUME, extra=["--stop-after", "5"]) == 0
    newest = ckpt.complete_checkpoints(out)[-1]
    assert newest.name == "step-00000005"
    weights = newest / "dit.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert "skipping damaged checkpoint step-00000005" in capsys.readouterr().err
    assert computed(out) == computed(uninterrupted)
    assert (out / "checkpoints" / "bad-step-00000005").is_dir()


def test_vae_with_a_discriminator_resumes_exactly(curated, tmp_path):
    settings = (
        "vae.steps=4", "image.steps=0", "video.steps=0", "hq.steps=0", "checkpoint_every=2",
        "model.vae.adversarial_weight=0.1",
    )  # fmt: skip
    assert train(curated, tmp_path / "whole", *settings) == 0
    assert train(curated, tmp_path / "cut", *settings, extra=["--stop-after", "3"]) == 0
    assert not (tmp_path / "cut" / "final").exists()
    assert (ckpt.complete_checkpoints(tmp_path / "cut")[-1] / "disc.safetensors").is_file()
    assert main(["train", "--out", str(tmp_path / "cut"), "--resume"]) == 0
    rows = computed(tmp_path / "cut")
    assert rows == computed(tmp_path / "whole") and "disc_loss" in rows[-1]


def test_stop_after_the_last_step_still_writes_the_final_model(curated, tmp_path):
    settings = ("vae.steps=2", "image.steps=0", "video.steps=1", "hq.steps=0")
    assert train(curated, tmp_path / "run", *settings, extra=["--stop-after", "3"]) == 0
    assert (tmp_path / "run" / "final" / "dit.safetensors").is_file()


@pytest.mark.slow
def test_a_run_killed_at_any_moment_resumes_exactly(curated, tmp_path):
    settings = ("vae.steps=3", "image.steps=0", "video.steps=12", "hq.steps=0",
                "checkpoint_every=2", "num_workers=0")  # fmt: skip
    assert train(curated, tmp_path / "whole", *settings) == 0
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "pipelines.cli", "train", "--data", str(curated), "--out",
            str(out), "--preset", "tiny", *(x for s in settings for x in ("--set", s))]  # fmt: skip
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-00000006").is_dir() and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # mid-stage, possibly mid-write
    child.wait()
    assert not (out / "final").exists()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert computed(out) == computed(tmp_path / "whole")


# -- failures -------------------------------------------------------------------------------


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(curated, tmp_path, capsys):
    out = tmp_path / "run"
    settings = ("vae.steps=6", "image.steps=0", "video.steps=0", "hq.steps=0")
    # a huge learning rate blows the weights up after the first step
    rc = train(
        curated, out, *settings, "vae.lr=1.0e+30", "vae.warmup_steps=0", "checkpoint_every=1"
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0
    good = out / "checkpoints" / "step-00000001"
    assert err == (
        f"lvd train: error: loss is nan at vae step 2; the last good checkpoint is {good}"
    )
    assert [f.name for f in ckpt.complete_checkpoints(out)] == [good.name]
    assert ckpt.problem(good) is None
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_an_existing_run_needs_resume(curated, full_run, capsys):
    assert train(curated, full_run, *ALL_STAGES) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_resume_refuses_a_changed_config(curated, full_run, capsys):
    assert train(curated, full_run, *ALL_STAGES, "video.lr=0.5", extra=["--resume"]) == 2
    assert "--resume: video.lr is 0.5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("video.frames=8", "video.frames must be 1 + 4k"),
        ("video.buckets=[[40,40]]", "video.buckets: 40x40 must have sides divisible by 16"),
        ("vae.steps=0", "the DiT stages need a trained VAE"),
    ],
)
def test_bad_settings_fail_with_one_line(curated, tmp_path, capsys, setting, message):
    assert train(curated, tmp_path / "run", setting) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_data_folder_is_named(tmp_path, capsys):
    assert train(tmp_path / "nowhere", tmp_path / "run") == 2
    assert "is not a curated run folder" in capsys.readouterr().err


def test_help_config_lists_stage_keys(capsys):
    assert main(["train", "--out", "x", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "video.rules" in out and "cache_latents" in out and "model.dit.depth" in out
