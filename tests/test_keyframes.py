"""Keyframes: first, middle and last frame of each clip, as JPEG or PNG bytes."""

import cv2
import numpy as np
import pytest

from curate.analyze import analyze_video
from curate.config import CurateConfig, KeyframeConfig
from curate.keyframes import KeyframePicker, choose
from curate.video import VideoReader
from tests import synth
from tests.synth import Shot


def test_choose_picks_first_middle_and_last_inside_the_clip():
    candidates = [0, 12, 24, 36, 48, 60, 72]
    assert choose(candidates, 10, 61) == [12, 36, 60]
    assert choose(candidates, 20, 30) == [24, 24, 24]
    assert choose(candidates, 25, 35) == []


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    frames = synth.join([Shot(1, 72, 1.0), Shot(2, 72, 0.0, gain=0.6)], 320, 180)
    return synth.write(tmp_path_factory.mktemp("kf") / "two.mp4", frames)


@pytest.mark.parametrize(("fmt", "magic"), [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG")])
def test_each_clip_gets_three_encoded_keyframes(two_shots, fmt, magic):
    cfg = CurateConfig()
    cfg.keyframes = KeyframeConfig(short_side=120, format=fmt)
    clips = analyze_video(two_shots, cfg, motion=False).clips
    assert len(clips) == 2
    for clip in clips:
        assert len(clip["keyframes"]) == 3 and len(clip["keyframe_frames"]) == 3
        first, middle, last = clip["keyframe_frames"]
        assert clip["start_frame"] <= first < middle < last < clip["end_frame"]
        for data in clip["keyframes"]:
            assert isinstance(data, bytes) and data.startswith(magic)
            assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (
                120,
                213,
                3,
            )


def test_keyframes_show_their_frames(two_shots):
    clips = analyze_video(two_shots, CurateConfig(), motion=False).clips
    wanted = {}
    for c in clips:
        wanted.update(zip(c["keyframe_frames"], c["keyframes"], strict=True))
    with VideoReader(two_shots) as reader:
        for frame in reader:
            if frame.index in wanted:
                bgr = cv2.imdecode(np.frombuffer(wanted[frame.index], np.uint8), 1)
                # never upscaled: the video's own short side (180) is below the default 256
                assert bgr.shape == (180, 320, 3)
                reference = frame.rgb(180)[:, :, ::-1].astype(float)
                assert np.abs(bgr - reference).mean() < 8  # JPEG on a noisy texture


def test_held_frames_stay_within_the_memory_budget(two_shots):
    frame_bytes = 320 * 180 * 3 // 2
    picker = KeyframePicker(KeyframeConfig(short_side=90), budget_bytes=2 * frame_bytes)
    with VideoReader(two_shots) as reader:
        for frame in reader.sample(2.0):
            picker.add(frame)
            assert picker._raw_bytes <= 2 * frame_bytes
        frames, images = picker.pick(0, 72)
    assert len(frames) == 3 and all(img.startswith(b"\xff\xd8") for img in images)
    picker.forget_before(72)
    assert all(f >= 72 for f in picker._frames)
