"""The tiny preset: models built once, deterministically, and loaded by the stages through
the same code path as real models."""

from pathlib import Path

import numpy as np
import pytest
import torch

from curate.caption import CaptionStage
from curate.clip_score import ClipStage
from curate.config import PRESETS
from curate.images import encode_image
from curate.text_area import TextAreaStage
from curate.tiny_models import ensure_tiny_models
from pipelines.common.config_loader import build

WEIGHT_FILES = {
    "caption": "model.safetensors",
    "vlm": "model.safetensors",
    "clip": "open_clip_model.safetensors",
    "aesthetic": "",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("lvd-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LVD_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def preset(cache):
    return PRESETS["tiny"]()


def weight_file(paths: dict[str, str], key: str) -> Path:
    path = Path(paths[key])
    return path / WEIGHT_FILES[key] if WEIGHT_FILES[key] else path


def test_preset_points_at_models_in_the_cache(cache, preset):
    root = cache / "tiny-models"
    assert Path(preset.caption.model).parent == root
    assert Path(preset.caption.vlm_model).parent == root
    assert Path(preset.clip.model).parent == root
    assert Path(preset.clip.aesthetic_weights).is_file()


def test_second_call_reuses_the_built_models(cache, preset):
    paths = ensure_tiny_models(cache / "tiny-models")
    before = {k: weight_file(paths, k).stat().st_mtime_ns for k in paths}
    again = ensure_tiny_models(cache / "tiny-models")
    assert again == paths
    assert {k: weight_file(again, k).stat().st_mtime_ns for k in again} == before


def test_builds_are_identical(cache, preset, tmp_path):
    first = ensure_tiny_models(cache / "tiny-models")
    second = ensure_tiny_models(tmp_path)
    for key in first:
        assert weight_file(first, key).read_bytes() == weight_file(second, key).read_bytes(), key


def test_building_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ensure_tiny_models(tmp_path)
    torch.testing.assert_close(torch.rand(3), expected)


def test_tiny_preset_runs_every_stage_on_a_batch(cache):
    cfg = build(PRESETS, "tiny", overrides=["caption.device=cpu", "clip.device=cpu"])
    rng = np.random.default_rng(0)
    batch = {
        "keyframes": [
            [encode_image(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)) for _ in range(3)]
            for _ in range(8)
        ]
    }
    for stage in (CaptionStage(cfg.caption), ClipStage(cfg.clip), TextAreaStage(cfg.text)):
        batch = stage(batch)
    assert list(batch["caption_source"]) == ["image"] * 8
    assert batch["clip_embedding"].shape == (8, 32)
    assert np.isfinite(batch["aesthetic_score"]).all()
    assert ((batch["text_area"] >= 0) & (batch["text_area"] <= 1)).all()
