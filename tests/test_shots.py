"""Shot detection: cuts to the frame, transitions trimmed, flashes and whip pans kept whole.

Small synthetic videos (160x96, 24 fps) with known boundary frames, decoded and analysed
for real; the real videos in ../shared/data/videos when present.
"""

import json

import numpy as np
import pytest
from scenedetect import ContentDetector, FrameTimecode, detect

from curate.analyze import analyze_video, decode_options
from curate.cascade import thumb_bgr
from curate.config import CurateConfig, ShotConfig
from curate.pixel_measures import pixel_progress
from curate.segments import Segment, clip_spans
from curate.shots import ShotTracker
from curate.video import VideoReader
from tests import synth
from tests.synth import Shot

W, H = 160, 96


def analyse(tmp_path, name, frames, fps=24):
    path = synth.write(tmp_path / f"{name}.mp4", frames, fps=fps)
    return analyze_video(path, CurateConfig(), motion=False)


def spans(result):
    return [(c["start_frame"], c["end_frame"]) for c in result.clips]


def assert_clean(result, windows):
    """No clip holds a frame of any [start, end) window."""
    for a, b in spans(result):
        for s, e in windows:
            assert b <= s or a >= e, f"clip {a}-{b} holds frames of {s}-{e}"


@pytest.mark.parametrize(
    ("lengths", "fps"),
    [((60, 72, 60), 24), ((70, 66, 75), 30), ((90, 59), 25)],
)
def test_hard_cuts_are_found_within_one_frame(tmp_path, lengths, fps):
    speeds = (1.0, 0.0, 2.0)[: len(lengths)]
    shots = [Shot(10 + i, n, v) for i, (n, v) in enumerate(zip(lengths, speeds, strict=True))]
    result = analyse(tmp_path, "cuts", synth.join(shots, W, H), fps)
    truth = np.cumsum(lengths)[:-1]
    cuts = [b.start for b in result.transitions if b.kind == "cut"]
    assert len(cuts) == len(truth)
    assert np.abs(np.array(cuts) - truth).max() <= 1
    # Clips end at the cuts and the shots are otherwise kept whole.
    assert [c["transition_out"] for c in result.clips[:-1]] == ["cut"] * len(truth)
    assert sum(b - a for a, b in spans(result)) >= sum(lengths) - 3 * len(truth)


def test_a_fade_through_black_is_trimmed(tmp_path):
    frames = synth.join([Shot(1, 72, 0.5), Shot(2, 72, 0.0, gain=0.7)], W, H, "fade", 12)
    result = analyse(tmp_path, "fade", frames)
    assert_clean(result, [(60, 84)])  # 12 frames out, 12 in
    assert [c["transition_out"] for c in result.clips] == ["fade", "end"]
    assert result.clips[0]["end_frame"] >= 52 and result.clips[1]["start_frame"] <= 92


@pytest.mark.parametrize("speeds", [(0.0, 0.0), (0.5, 0.0)])
def test_a_dissolve_is_trimmed(tmp_path, speeds):
    shots = [Shot(1, 72, speeds[0]), Shot(2, 72, speeds[1], gain=0.6)]
    result = analyse(tmp_path, "dissolve", synth.join(shots, W, H, "dissolve", 16))
    assert_clean(result, [(56, 72)])  # the last 16 frames of the first shot are mixed
    assert [c["transition_out"] for c in result.clips] == ["dissolve", "end"]
    assert result.clips[0]["end_frame"] >= 48 and result.clips[1]["start_frame"] <= 80


@pytest.mark.parametrize(("length", "speed"), [(16, 0.0), (36, 0.0), (16, 0.5), (36, 0.3)])
def test_a_dissolve_between_shots_of_the_same_colours_is_trimmed(tmp_path, length, speed):
    # the second shot is the first turned upside down: the same colour histogram, so
    # only the pixels tell the two shots apart (and when they pan, they pan apart)
    a = list(synth.shot_frames(Shot(1, 96, speed), W, H))
    b = [np.ascontiguousarray(f[::-1, ::-1]) for f in a]
    result = analyse(tmp_path, "same-colours", synth.dissolve(a, b, length))
    assert_clean(result, [(96 - length, 96)])
    assert [c["transition_out"] for c in result.clips] == ["dissolve", "end"]
    assert result.clips[0]["end_frame"] >= 96 - length - 8
    assert result.clips[1]["start_frame"] <= 96 + 8


def test_pixel_progress_is_the_mix_of_two_shots_and_ignores_a_slow_pan():
    # thumbnails (3, 20, 32) of a panning shot blended into another: the progress read
    # from pixels is the blend's weight, while the shot's own motion leaves it near 0
    big = synth.texture(3, 20, 48)
    a = [np.roll(big, -k // 4, axis=1)[:, :32] for k in range(40)]  # 0.25 px per frame
    b = synth.texture(4, 20, 32)
    weights = np.clip((np.arange(40) - 15) / 10, 0, 1)  # 0 until 15, 1 from 25
    thumbs = np.stack(
        [((1 - w) * f + w * b).round().astype(np.uint8) for f, w in zip(a, weights, strict=True)]
    )
    progress = pixel_progress(thumbs.transpose(0, 3, 1, 2), min_change=6.0)
    assert np.abs(progress - weights).max() < 0.1
    # one picture throughout: nothing to measure
    still = np.repeat(thumbs[:1], 40, axis=0).transpose(0, 3, 1, 2)
    assert pixel_progress(still, min_change=6.0) is None


def test_black_and_uniform_frames_are_dropped(tmp_path):
    black = [np.zeros((H, W, 3), np.uint8)] * 24
    grey = [np.full((H, W, 3), 128, np.uint8)] * 24
    parts = [Shot(6, 60, 0.3), Shot(7, 60, 0.0), Shot(8, 60, 0.2)]
    a, b, c = (list(synth.shot_frames(s, W, H)) for s in parts)
    result = analyse(tmp_path, "black", a + black + b + grey + c)
    assert_clean(result, [(60, 84), (144, 168)])
    assert len(result.clips) == 3


def test_a_flash_does_not_cut(tmp_path):
    frames = synth.flash(list(synth.shot_frames(Shot(4, 96, 0.5), W, H)), at=40)
    result = analyse(tmp_path, "flash", frames)
    assert spans(result) == [(0, 96)]
    assert result.transitions == []


def test_a_whip_pan_does_not_cut(tmp_path):
    result = analyse(tmp_path, "whip", synth.whip_shot(5, 110, W, H, at=50, length=6))
    assert spans(result) == [(0, 110)]


def test_short_shots_are_dropped_and_long_ones_split(tmp_path):
    frames = synth.join([Shot(1, 30, 0.5), Shot(2, 300, 0.2)], W, H)  # 1.25 s, 12.5 s
    result = analyse(tmp_path, "lengths", frames)
    assert all(c["start_frame"] >= 30 for c in result.clips)  # the short shot is gone
    lengths = [c["end_s"] - c["start_s"] for c in result.clips]
    assert len(lengths) == 2 and max(lengths) <= 10.0 and min(lengths) >= 6.0
    assert [c["transition_in"] for c in result.clips] == ["cut", "split"]
    assert {c["shot_index"] for c in result.clips} == {1}


def test_clip_spans_splits_evenly_and_drops_short_segments():
    cfg = ShotConfig(min_clip_s=2.0, max_clip_s=4.0)
    times = np.arange(1000) / 10.0
    assert clip_spans(Segment(0, 19, 0, "start", "cut"), times, 10.0, cfg) == []
    parts = clip_spans(Segment(100, 190, 3, "cut", "fade"), times, 10.0, cfg)
    assert [(p.start, p.end) for p in parts] == [(100, 130), (130, 160), (160, 190)]
    assert [(p.kind_in, p.kind_out) for p in parts] == [
        ("cut", "split"),
        ("split", "split"),
        ("split", "fade"),
    ]


def test_real_videos_cuts_and_transitions(shared_videos):
    truth = json.loads((shared_videos / "truth.json").read_text())
    for name, t in truth.items():
        result = analyze_video(str(shared_videos / name), CurateConfig(), motion=False)
        windows = [(x["start"], x["end"] + 1) for x in t["transitions"] if x["type"] != "cut"]
        assert_clean(result, windows)
        shot_of = np.zeros(t["frames"], int)
        for k, s in enumerate(t["shots"]):
            shot_of[s["start"] : s["end"]] = k
        for a, b in spans(result):  # no clip spans a cut
            assert len(set(shot_of[a:b])) == 1, f"{name}: clip {a}-{b} crosses a cut"
        found = [b.start for b in result.transitions if b.kind == "cut"]
        clean_cuts = [x["start"] for x in t["transitions"] if x["type"] == "cut"]
        clean_cuts = [c for c in clean_cuts if not any(s <= c < e for s, e in windows)]
        for c in clean_cuts:  # every cut between two clean frames, to the frame
            assert min(abs(np.array(found) - c)) <= 1, f"{name}: cut at {c} missed"


def test_a_fade_that_never_reaches_black_is_trimmed(tmp_path):
    a = list(synth.shot_frames(Shot(1, 72, 0.5), W, H))
    b = list(synth.shot_frames(Shot(2, 72, 0.0, gain=0.7), W, H))
    for i in range(12):  # down to 15% and straight back up, no black frame
        a[60 + i] = (a[60 + i] * (1 - 0.85 * (i + 1) / 12)).astype(np.uint8)
        b[i] = (b[i] * (0.15 + 0.85 * i / 12)).astype(np.uint8)
    result = analyse(tmp_path, "dip", a + b)
    assert_clean(result, [(60, 84)])
    assert len(result.clips) == 2


def test_a_fade_out_into_a_hard_cut_is_trimmed(tmp_path):
    a = list(synth.shot_frames(Shot(1, 84, 0.5), W, H))
    for i in range(18):  # fades to 20%, then the next shot starts at full brightness
        a[66 + i] = (a[66 + i] * (1 - 0.8 * (i + 1) / 18)).astype(np.uint8)
    b = list(synth.shot_frames(Shot(2, 72, 0.0, gain=0.7), W, H))
    result = analyse(tmp_path, "fadecut", a + b)
    assert_clean(result, [(66, 84)])
    assert [c["transition_out"] for c in result.clips] == ["fade", "end"]


@pytest.mark.parametrize(
    ("first", "second"),
    [(100, 8), (100, 3), (20, 100)],
    ids=["8 frames before the end", "3 frames before the end", "20 frames after the start"],
)
def test_a_cut_near_either_end_of_the_video_counts_like_any_other(tmp_path, first, second):
    # PySceneDetect's detectors report a cut only once samples after it came in, so near
    # the last frame they never do; the shot tracker looks there itself
    frames = synth.join([Shot(1, first, 0.5), Shot(2, second, 0.5)], W, H)
    result = analyse(tmp_path, "edge", frames)
    assert [(b.start, b.kind) for b in result.transitions] == [(first, "cut")]
    assert_clean(result, [(first - 1, first + 1)])


@pytest.mark.parametrize(
    ("first", "second", "speed"),
    [("coffee", "chelsea", 14), ("camera", "coins", 14), ("coffee", "chelsea", 8)],
)
def test_a_cut_out_of_a_fast_shot_is_found(tmp_path, first, second, speed):
    # Photographs panned fast (14 px a frame at 320x180): the raw difference at the cut
    # is only 2.3-2.5x the difference between neighbouring frames, as in a fast street
    # shot; PySceneDetect's default ContentDetector finds these cuts.
    frames = synth.photo_pan(first, 60, 320, 180, speed) + synth.photo_pan(
        second, 60, 320, 180, speed
    )
    path = synth.write(tmp_path / "fast.mp4", frames)
    diff = analyze_video(path, CurateConfig(), motion=False).frame_scores["diff"]
    assert diff[60] < 3.3 * np.median(np.r_[diff[55:60], diff[61:66]])
    scenes = detect(path, ContentDetector())
    assert [s.frame_num for s, _ in scenes[1:]] == [60]
    result = analyze_video(path, CurateConfig(), motion=False)
    assert [(b.start, b.kind) for b in result.transitions] == [(60, "cut")]
    assert spans(result) == [(0, 59), (61, 120)]


def test_content_score_is_content_detectors_own(tmp_path):
    # The per-frame score the cut candidates come from equals ContentDetector's
    # content_val on the same thumbnails (computed there one frame at a time).
    frames = synth.photo_pan("coffee", 30, 160, 96, 6) + synth.photo_pan("chelsea", 30, 160, 96, 2)
    path = synth.write(tmp_path / "content.mp4", frames)
    cfg = CurateConfig()
    with VideoReader(path, decode_options(cfg.decode)) as reader:
        tracker = ShotTracker(reader.info.fps, cfg.shots)
        for frame in reader:
            tracker.push(frame.index, *frame.planes())
        tracker.finish()
    ours = tracker.frame_scores()["content"]
    detector = ContentDetector(min_scene_len=0)
    theirs = []
    for i in range(len(frames)):
        detector.process_frame(
            FrameTimecode(i, fps=24.0), thumb_bgr(tracker.signals.thumbs(i, i + 1)[0])
        )
        theirs.append(detector._frame_score)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert ours[30] > 27 > ours[1:30].max()
