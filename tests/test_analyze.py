"""analyze_video: one decode pass, the clip schema, timings, scores, errors, bounded memory."""

import math

import av
import numpy as np
import pytest

import curate.analyze
from curate.analyze import CLIP_KEYS, analyze_video
from curate.config import CurateConfig
from curate.container import VideoError
from curate.shots import ShotTracker
from tests import synth
from tests.synth import Shot


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames = synth.join([Shot(1, 72, 1.0), Shot(2, 96, 0.3, gain=0.6)], 160, 96)
    return synth.write(tmp_path_factory.mktemp("an") / "v.mp4", frames, fps=24)


def test_clips_follow_the_schema(video):
    result = analyze_video(video, CurateConfig())
    assert result.frames_decoded == 168 and len(result.clips) == 2
    for clip in result.clips:
        assert tuple(clip) == CLIP_KEYS
        assert clip["num_frames"] == clip["end_frame"] - clip["start_frame"]
        assert clip["start_s"] == pytest.approx(clip["start_frame"] / 24)
        assert clip["end_s"] == pytest.approx(clip["end_frame"] / 24)
        assert (clip["width"], clip["height"], clip["fps"]) == (160, 96, 24.0)
        assert isinstance(clip["motion_score"], float) and clip["motion_score"] > 0
        assert clip["transition_in"] in ("start", "cut", "fade", "dissolve", "black", "split")
    assert [c["shot_index"] for c in result.clips] == [0, 1]
    assert result.clips[-1]["end_frame"] == 168 and result.clips[-1]["transition_out"] == "end"


def test_timings_and_frame_scores(video):
    result = analyze_video(video, CurateConfig())
    assert set(result.timings_s) == {"decode", "shots", "motion", "keyframes"}
    assert all(t >= 0 for t in result.timings_s.values())
    assert {"diff", "luma_mean", "psd_adaptive", "psd_content"} <= set(result.frame_scores)
    for scores in result.frame_scores.values():
        assert scores.dtype == np.float32 and scores.shape == (168,)
    assert np.nanargmax(result.frame_scores["diff"]) == 72  # the cut


def test_the_video_is_opened_and_decoded_once(video, monkeypatch):
    opened = []
    real_open = av.open

    def counting_open(*args, **kwargs):
        opened.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(curate.video.av, "open", counting_open)
    result = analyze_video(video, CurateConfig())
    assert opened == [video] and result.frames_decoded == 168


def test_variable_frame_rate_uses_true_times(tmp_path):
    times = [i / 24 for i in range(60)] + [2.5 + i / 12 for i in range(60)]
    frames = list(synth.shot_frames(Shot(4, 120, 0.5), 160, 96))
    path = synth.write(tmp_path / "vfr.mp4", frames, fps=24, times_s=times)
    (clip,) = analyze_video(path, CurateConfig()).clips
    assert clip["start_s"] == pytest.approx(times[clip["start_frame"]], abs=1e-3)
    assert clip["end_s"] == pytest.approx(times[-1] + 1 / clip["fps"], abs=0.05)


@pytest.mark.parametrize("content", [None, b"", b"\x00garbage" * 500])
def test_bad_files_raise_video_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoError):
        analyze_video(str(path), CurateConfig())


@pytest.mark.slow
def test_memory_stays_bounded_on_a_long_take(tmp_path, monkeypatch):
    """Two minutes of one shot: held keyframe candidates and flow pairs stay bounded."""
    frames = synth.scene_frames(3, 64, 36, 24.0, 120.0, 0.01)
    path = synth.write(tmp_path / "long.mp4", frames, fps=24)
    held = []
    real_add = curate.analyze.KeyframePicker.add

    def add(self, frame):
        real_add(self, frame)
        held.append(len(self))

    monkeypatch.setattr(curate.analyze.KeyframePicker, "add", add)
    result = analyze_video(path, CurateConfig())
    assert len(result.clips) >= 12  # split into clips of at most 10 s
    assert max(c["end_s"] - c["start_s"] for c in result.clips) <= 10.0 + 1e-6
    # about (2 x max_clip_s + the shot tracker's latency) at 2 fps, whatever the length
    latency_s = ShotTracker(24.0, CurateConfig().shots).latency / 24.0
    assert latency_s < 20
    assert max(held) <= 2 * (2 * 10 + latency_s) + 1
    assert not math.isnan(result.clips[0]["motion_score"])
