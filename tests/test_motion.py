"""Motion scores: ordered by speed, in % of the diagonal per second whatever the size and
frame rate, blind to brightness, and never across a cut."""

import math

import numpy as np
import pytest

from curate.analyze import analyze_video
from curate.config import CurateConfig
from curate.motion import global_shift, motion_scores, normalise, spectrum
from curate.video import VideoReader
from tests import synth
from tests.synth import Shot


def clip_motion(tmp_path, name, frames, fps=24.0):
    path = synth.write(tmp_path / f"{name}.mp4", frames, fps=fps)
    return analyze_video(path, CurateConfig()).clips


def test_motion_orders_still_slow_and_fast_pans(tmp_path):
    scores = []
    for speed in (0.0, 0.4, 2.0):  # pixels per frame at 160x96
        frames = list(synth.shot_frames(Shot(3, 72, speed), 160, 96))
        (clip,) = clip_motion(tmp_path, f"pan{speed}", frames)
        scores.append(clip["motion_score"])
    assert scores[0] < 0.5 < scores[1] < scores[2]


def test_a_pan_scores_its_speed_in_diagonals_per_second(tmp_path):
    frames = list(synth.shot_frames(Shot(3, 72, 1.5), 160, 96))
    (clip,) = clip_motion(tmp_path, "pan", frames)
    true = 1.5 * 24 / math.hypot(160, 96) * 100  # % of the diagonal per second
    assert clip["motion_score"] == pytest.approx(true, rel=0.1)
    assert clip["motion_p90"] >= clip["motion_score"] * 0.9


@pytest.mark.parametrize("speed", [0.05, 0.25])  # frame widths per second
def test_motion_does_not_depend_on_resolution_or_frame_rate(tmp_path, speed):
    scores = {}
    for width, height, fps in (
        (160, 90, 24.0),
        (320, 180, 24.0),
        (160, 90, 60.0),
        (320, 180, 30.0),
    ):
        frames = synth.scene_frames(7, width, height, fps, 3.0, speed)
        (clip,) = clip_motion(tmp_path, f"scene{width}_{fps:g}", frames, fps)
        scores[(width, fps)] = clip["motion_score"]
    values = np.array(list(scores.values()))
    assert values.max() <= 1.1 * values.min(), scores


def test_a_brightness_change_alone_is_still(tmp_path):
    base = synth.texture(9, 96, 160).astype(np.float32)
    gains = np.linspace(0.4, 1.2, 72)  # a slow fade up, nothing moving
    frames = [np.clip(base * g, 0, 255).astype(np.uint8) for g in gains]
    path = synth.write(tmp_path / "brighten.mp4", frames)
    with VideoReader(path) as reader:
        sampled = [(f.luma(36), f.time_s) for f in reader.sample(2.0)]
    score, _ = motion_scores([g for g, _ in sampled], [t for _, t in sampled])
    assert score < 0.3


def test_pairs_across_a_cut_do_not_count(tmp_path):
    frames = synth.join([Shot(1, 60, 3.0), Shot(2, 72, 0.0, gain=0.7)], 160, 96)
    clips = clip_motion(tmp_path, "cut", frames)
    assert len(clips) == 2
    assert clips[0]["motion_score"] > 20 and clips[1]["motion_score"] < 0.5


def test_motion_off_gives_nan(tmp_path):
    path = synth.write(tmp_path / "pan.mp4", list(synth.shot_frames(Shot(3, 72, 1.0), 160, 96)))
    (clip,) = analyze_video(path, CurateConfig(), motion=False).clips
    assert math.isnan(clip["motion_score"]) and math.isnan(clip["motion_p90"])


def test_global_shift_finds_a_translation():
    rng = np.random.default_rng(0)
    scene = np.kron(rng.random((20, 30)), np.ones((4, 4))).astype(np.float32)
    a, b = scene[10:46, 20:84], scene[10:46, 13:77]  # content moves 7 px right
    dx, dy = global_shift(spectrum(normalise(a)), spectrum(normalise(b)), a.shape)
    assert dx == pytest.approx(7, abs=0.5) and dy == pytest.approx(0, abs=0.5)
