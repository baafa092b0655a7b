"""Training from precomputed samples (`--cache-latents`): the Ray Data job writes each
stage's windows once, they equal what uncached training would encode, and a resumed
run reuses them."""

import json

import pytest
import torch

from model.checkpoint import load_model
from pipelines.selection.rules import parse_rules
from pipelines.training.config import STAGES
from pipelines.training.data import ClipDataset, load_clips, to_unit_range
from pipelines.training.latent_cache import CachedSamples
from pipelines.training.steps import mix_seed
from tests.test_train import make_curated, metrics, train

STAGES_ON = (
    "vae.steps=2", "image.steps=0", "video.steps=3", "hq.steps=0", "cache_windows=2",
    "num_workers=2",  # loader workers started beside a running Ray
)  # fmt: skip


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory):
    data = make_curated(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("cached") / "run"
    assert train(data, out, *STAGES_ON, extra=["--cache-latents", "--stop-after", "4"]) == 0
    written = json.loads((out / "cache" / "video" / "MANIFEST.json").read_text())["written_at"]
    assert train(data, out, extra=["--resume"], preset=None) == 0
    return data, out, written


@pytest.mark.slow
def test_cached_training_runs_every_stage(cached_run):
    _, out, _ = cached_run
    assert [(m["stage"], m["step"]) for m in metrics(out)] == [
        ("vae", 1), ("vae", 2), ("video", 1), ("video", 2), ("video", 3)
    ]  # fmt: skip
    assert load_model(out / "final").dit is not None
    for stage in ("vae", "video"):
        manifest = json.loads((out / "cache" / stage / "MANIFEST.json").read_text())
        assert manifest["rows"] == 8 * 2  # 8 clips, 2 windows each


@pytest.mark.slow
def test_a_resumed_run_reuses_the_cache(cached_run):
    _, out, written = cached_run
    manifest = json.loads((out / "cache" / "video" / "MANIFEST.json").read_text())
    assert manifest["written_at"] == written


@pytest.mark.slow
def test_the_first_command_again_with_resume_trains_nothing(cached_run):
    data, out, _ = cached_run
    lines = len(metrics(out))
    assert train(data, out, *STAGES_ON, extra=["--cache-latents", "--resume"]) == 0
    assert len(metrics(out)) == lines


@pytest.mark.slow
def test_cached_windows_are_the_uncached_samples(cached_run):
    data, out, _ = cached_run
    config = json.loads((out / "run.json").read_text())["config"]["video"]
    seed = mix_seed(0, STAGES.index("video"))
    clips = ClipDataset(
        load_clips(data, []), config["frames"], config["fps"],
        [tuple(b) for b in config["buckets"]], seed,
    )  # fmt: skip
    cached = CachedSamples(out / "cache" / "video", windows=2)
    vae = load_model(out / "vae").vae
    for index, epoch in ((0, 0), (3, 1), (5, 2)):  # epoch 2 is window 0 again
        sample = cached[(index, epoch)]
        with torch.no_grad():
            video = clips[(index, epoch % 2)]["video"][None]
            latents = vae.encode(to_unit_range(video))[0]
        torch.testing.assert_close(sample["latents"].float(), latents, rtol=2e-3, atol=2e-3)
        assert sample["caption"] == clips.clips[index].caption
        assert sample["text_mask"].sum() > 1  # the caption's tokens and </s>


def test_image_and_hq_share_the_video_stage_samples_when_they_can():
    from pipelines.training.config import small
    from pipelines.training.latent_cache import same_samples_as

    cfg = small()
    assert same_samples_as(cfg, "hq") == ("video", False)
    assert same_samples_as(cfg, "image") == ("video", True)  # first frames of its windows
    assert same_samples_as(cfg, "video") is None
    cfg.image.images = "/some/images"  # extra images are in no video window
    assert same_samples_as(cfg, "image") is None
    cfg.hq.frames = 5
    assert same_samples_as(cfg, "hq") is None
    cfg.hq.frames, cfg.video.steps = cfg.video.frames, 0
    assert same_samples_as(cfg, "hq") is None  # no video stage: no video cache


def test_a_video_window_first_latent_frame_is_its_first_frame_latent():
    """Why the image stage may read the video cache: the causal VAE encodes frame 0
    alone."""
    from model.config import preset
    from model.vae import VAE

    torch.manual_seed(0)
    vae = VAE(preset("small").vae).eval()
    video = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(vae.encode(video)[:, :, :1], vae.encode(video[:, :, :1]))


@pytest.mark.slow
def test_image_and_hq_train_on_the_video_cache_of_their_own_clips(tmp_path_factory):
    data = make_curated(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("shared") / "run"
    rule = "drop_bottom motion_score=0.5"
    steps = ("vae.steps=1", "image.steps=1", "video.steps=1", "hq.steps=2", f"hq.rules=[{rule!r}]")
    assert train(data, out, *steps, extra=["--cache-latents"]) == 0
    assert sorted(p.name for p in (out / "cache").iterdir()) == ["vae", "video"]
    assert [m["stage"] for m in metrics(out)] == ["vae", "image", "video", "hq", "hq"]
    ids = {c.clip_id for c in load_clips(data, parse_rules([rule]))}
    assert 0 < len(ids) < len(load_clips(data, []))
    shared = CachedSamples(out / "cache" / "video", windows=1, clip_ids=ids)
    assert {shared[(i, 0)]["clip_id"] for i in range(len(shared))} == ids
    video = CachedSamples(out / "cache" / "video", windows=1)
    image = CachedSamples(out / "cache" / "video", windows=1, first_frame=True)
    assert image[(2, 0)]["latents"].shape[1] == 1
    assert torch.equal(image[(2, 0)]["latents"], video[(2, 0)]["latents"][:, :1])
