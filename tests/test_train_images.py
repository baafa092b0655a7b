"""Extra images in the image stage (`image.images`): captioned stills trained beside the
clips' frames, read by the loaders the way clips are, and part of the cache's key."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.filtering import Rule
from pipelines.common.errors import UsageError
from pipelines.training.config import StageConfig, tiny
from pipelines.training.data import ClipDataset, load_clips, stage_clips
from pipelines.training.images import image_rows
from pipelines.training.latent_cache import CacheJob, SampleSpec, cache_key
from tests.test_train import make_curated, train

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}  # RGB


def write_images(folder: Path) -> Path:
    """Three 48x40 stills of one colour each (blue has no caption) and a broken file."""
    (folder / "nested").mkdir(parents=True)
    for k, (name, rgb) in enumerate(COLOURS.items()):
        path = (folder / "nested" if k == 2 else folder) / f"{name}.png"
        cv2.imwrite(str(path), np.full((40, 48, 3), rgb[::-1], np.uint8))  # cv2 writes BGR
        if name != "blue":
            path.with_suffix(".txt").write_text(f"a {name} square\n")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    return make_curated(tmp_path_factory.getbasetemp())


def test_images_are_one_frame_clips_beside_the_stage_clips(curated, images, caplog):
    with caplog.at_level(logging.WARNING, logger="lvd.train"):
        clips = stage_clips(curated, "image", [], str(images))
    assert "broken.jpg" in caplog.text  # left out with a note, as an unreadable clip is
    stills = clips[len(load_clips(curated, [])) :]
    assert [Path(c.video_path).stem for c in stills] == ["green", "blue", "red"]  # by path
    assert [c.caption for c in stills] == ["a green square", "", "a red square"]
    assert all((c.width, c.height) == (48, 40) for c in stills)
    dataset = ClipDataset(clips, frames=1, fps=8.0, buckets=[(32, 32)])
    for k, clip in enumerate(stills):
        sample = dataset[(dataset.clips.index(clip), 0)]
        assert sample["video"].shape == (3, 1, 32, 32)
        pixel = sample["video"][:, 0, 16, 16].tolist()
        assert pixel == list(COLOURS[Path(clip.video_path).stem]), k


def test_rules_select_clips_and_leave_the_images(curated, images):
    no_clip = [Rule("min", "motion_p90", 1e9)]
    clips = stage_clips(curated, "image", no_clip, str(images))
    assert len(clips) == 3


def test_a_folder_without_images_or_a_missing_one_fails_in_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"image\.images: no \.png"):
        image_rows(str(tmp_path))
    with pytest.raises(UsageError, match=r"image\.images: .* is not a folder"):
        image_rows(str(tmp_path / "missing"))


def test_only_the_image_stage_takes_images():
    cfg = tiny()
    cfg.video.images = "/somewhere"
    with pytest.raises(ValueError, match=r"video\.images: only the image stage"):
        cfg.__post_init__()


def test_the_cache_key_follows_the_images(curated, tmp_path):
    folder = write_images(tmp_path / "imgs")

    def key():
        stage = StageConfig(steps=1, frames=1, images=str(folder))
        spec = SampleSpec(frames=1, fps=8.0, buckets=((32, 32),), seed=0, random_crop=True,
                          precision="fp32")  # fmt: skip
        job = CacheJob("image", stage, curated, tmp_path / "cache", spec, 1, 8, 1.0)
        return cache_key(job)

    before = key()
    cv2.imwrite(str(folder / "more.png"), np.zeros((40, 48, 3), np.uint8))
    assert key() != before
    after = key()
    (folder / "more.txt").write_text("a black square")
    assert key() != after


@pytest.mark.slow
def test_the_image_stage_trains_on_clips_and_images_cached(curated, images, tmp_path):
    out = tmp_path / "run"
    steps = ("vae.steps=1", "image.steps=2", "video.steps=0", "hq.steps=0")
    assert train(curated, out, *steps, f"image.images={images}", extra=["--cache-latents"]) == 0
    manifest = json.loads((out / "cache" / "image" / "MANIFEST.json").read_text())
    assert manifest["rows"] == len(load_clips(curated, [])) + 3  # one window each
    info = json.loads((out / "run.json").read_text())
    assert info["stage_clips"]["image"]["clips"] == len(load_clips(curated, [])) + 3
    assert info["stage_clips"]["image"]["uncaptioned"] >= 1  # blue.png
    assert info["config"]["image"]["images"] == str(images)
