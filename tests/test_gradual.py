"""Gradual transitions of the kinds edited footage has, made to reproduce each: a fade
that takes 4 s, an iris wipe, a bar wipe, a dissolve between two moving shots (as in an
advert). No clip may hold a frame of the transition, and the shots around it are kept.
"""

import numpy as np
import pytest

from curate.analyze import analyze_video
from curate.config import CurateConfig
from tests import synth

W, H, FPS = 320, 180, 24


def clips_of(tmp_path, frames):
    path = synth.write(tmp_path / "v.mp4", frames, fps=FPS)
    result = analyze_video(path, CurateConfig(), motion=False)
    return [(c["start_frame"], c["end_frame"]) for c in result.clips]


def assert_clean(clips, start, end):
    """No clip holds a frame of [start, end)."""
    for a, b in clips:
        assert b <= start or a >= end, f"clip {a}-{b} holds frames of {start}-{end}"


def ramp(frames, rising: bool):
    n = len(frames)
    weights = np.arange(1, n + 1) / (n + 1)
    weights = weights if rising else weights[::-1]
    return [(f * w).astype(np.uint8) for f, w in zip(frames, weights, strict=True)]


def test_a_four_second_fade_out_inside_a_shot_is_trimmed(tmp_path):
    a = synth.photo_pan("coffee", 96, W, H, 2)
    shot = synth.photo_pan("astronaut", 216, W, H, 1)
    shot = shot[:120] + ramp(shot[120:], rising=False)  # 96 frames fade to black
    b = synth.photo_pan("chelsea", 96, W, H, -2)
    clips = clips_of(tmp_path, a + shot + b)
    assert_clean(clips, 96 + 120, 96 + 216)
    assert any(a <= 100 and b >= 96 + 110 for a, b in clips)  # the shot before it is kept


def test_a_four_second_fade_in_is_trimmed(tmp_path):
    a = synth.photo_pan("coffee", 96, W, H, 2)
    shot = synth.photo_pan("astronaut", 216, W, H, 1)
    shot = ramp(shot[:96], rising=True) + shot[96:]
    clips = clips_of(tmp_path, a + shot)
    assert_clean(clips, 96, 96 + 96)
    assert any(a <= 96 + 116 and b >= 96 + 200 for a, b in clips)


def _circle(radius_share: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    r = np.hypot(yy - H / 2, xx - W / 2)
    return r <= radius_share * r.max()


def _bar(share: float) -> np.ndarray:
    return np.broadcast_to(np.arange(W) < share * W, (H, W))


@pytest.mark.parametrize("shape", [_circle, _bar], ids=["iris", "bar"])
def test_a_wipe_is_trimmed(tmp_path, shape):
    a = synth.photo_pan("rocket", 96, W, H, 0)
    b = synth.photo_pan("camera", 96, W, H, 0)
    n = 24
    wipe = [
        np.where(shape((i + 1) / (n + 1))[:, :, None], y, x).astype(np.uint8)
        for i, (x, y) in enumerate(zip(a[-n:], b[:n], strict=True))
    ]
    clips = clips_of(tmp_path, a[:-n] + wipe + b[n:])
    assert_clean(clips, 72, 96)
    assert len(clips) == 2 and clips[0][1] >= 60 and clips[1][0] <= 108


@pytest.mark.parametrize(("first", "second"), [("coffee", "chelsea"), ("brick", "gravel")])
def test_a_dissolve_between_moving_shots_is_trimmed(tmp_path, first, second):
    a = synth.photo_pan(first, 96, W, H, 6)
    b = synth.photo_pan(second, 96, W, H, -5)
    clips = clips_of(tmp_path, synth.dissolve(a, b, 18))
    assert_clean(clips, 78, 96)
    assert len(clips) == 2
