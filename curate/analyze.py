"""Analyse one video in a single decode pass: shots, clips, motion and keyframes.

`analyze_video` opens the video once with curate.video.VideoReader and feeds every
decoded frame to the shot tracker (curate.shots), the frames sampled at 2 fps to motion
(curate.motion) and to the keyframe picker (curate.keyframes). Clips are finalised as
soon as the tracker is sure of their ends, and what a finished clip no longer needs is
dropped, so memory does not grow with the video's length beyond a few numbers per frame.
This is the pure function behind the pipeline's shots+motion stage (one video per task).
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field

import numpy as np

from curate.config import CurateConfig, DecodeConfig
from curate.container import VideoInfo
from curate.frame_rate import known_fps
from curate.keyframes import KeyframePicker
from curate.motion import MotionSampler
from curate.segments import Boundary, Segment, clip_spans, split_at_times
from curate.shots import ShotTracker
from curate.timed_captions import CaptionSpan, boundaries, caption_for
from curate.video import DecodeOptions, VideoReader

CLIP_KEYS = (
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    "fps",
    "num_frames",
    "width",
    "height",
    "motion_score",
    "motion_p90",
    "keyframes",
    "keyframe_frames",
    "shot_index",
    "transition_in",
    "transition_out",
)


@dataclass
class VideoAnalysis:
    """What one pass over a video found."""

    info: VideoInfo
    frames_decoded: int
    clips: list[dict]
    """One dict per clip with exactly CLIP_KEYS (see DESIGN.md's clips schema)."""
    timings_s: dict[str, float]
    """Wall time of decode (iterating the reader) and of each analysis part: shots
    (signals, cascade, transition decisions), motion (flow), keyframes (candidates,
    encoding and finishing clips)."""
    frame_scores: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-frame detection signals (float32, NaN where a signal is not sampled), so
    shot thresholds can be re-tuned without decoding again."""
    transitions: list[Boundary] = field(default_factory=list)
    """Every cut, fade, dissolve and black run found, in the order found."""


def decode_options(cfg: DecodeConfig) -> DecodeOptions:
    return DecodeOptions(
        analysis_short_side=cfg.analysis_short_side, threads=cfg.threads, timeout_s=cfg.timeout_s
    )


def analyze_video(
    path: str, cfg: CurateConfig, motion: bool = True, captions: list[CaptionSpan] | None = None
) -> VideoAnalysis:
    """Shots, clips, motion scores and keyframes of one video, from one decode.

    motion=False skips optical flow (motion columns are NaN). `captions`: timed captions
    that came with the video; a shot is split where a caption starts or ends, and each
    clip gets a `caption` key, the one it overlaps most (None if none). Raises
    VideoError for a file that cannot be probed or decoded.
    """
    caption_times = boundaries(captions) if captions is not None else []
    timings = dict.fromkeys(("decode", "shots", "motion", "keyframes"), 0.0)
    with VideoReader(path, decode_options(cfg.decode)) as reader:
        info = reader.info
        fps = known_fps(info.fps)
        tracker = ShotTracker(fps, cfg.shots)
        sampler = MotionSampler(cfg.motion.sample_fps, cfg.motion.flow_short_side)
        picker = KeyframePicker(cfg.keyframes)
        times = array("d")
        clips: list[dict] = []

        def finish_segments(segments: list[Segment]) -> None:
            t0 = time.perf_counter()
            for seg in segments:
                for piece in split_at_times(seg, caption_times, times):
                    for clip in clip_spans(piece, times, fps, cfg.shots):
                        row = _clip_dict(clip, times, info, fps, sampler, picker, motion)
                        if captions is not None:
                            row["caption"] = caption_for(captions, row["start_s"], row["end_s"])
                        clips.append(row)
            keep_from = tracker.open_start
            picker.forget_before(keep_from)
            sampler.forget_before(keep_from)
            timings["keyframes"] += time.perf_counter() - t0

        frames = iter(reader)
        t_prev = time.perf_counter()
        for frame in frames:
            t_got = time.perf_counter()
            timings["decode"] += t_got - t_prev
            times.append(frame.time_s)
            y, u, v = frame.planes()
            segments = tracker.push(frame.index, y, u, v)
            t_shots = time.perf_counter()
            timings["shots"] += t_shots - t_got
            if sampler.wants(frame.time_s):
                if motion:
                    sampler.add(frame.index, frame.time_s, frame.luma(sampler.short_side))
                else:
                    sampler.skip(frame.time_s)
                t_motion = time.perf_counter()
                timings["motion"] += t_motion - t_shots
                picker.add(frame)  # a keyframe candidate: held by reference, no copy
                timings["keyframes"] += time.perf_counter() - t_motion
            if segments:
                finish_segments(segments)
            t_prev = time.perf_counter()
        timings["decode"] += time.perf_counter() - t_prev
        t0 = time.perf_counter()
        segments = tracker.finish()
        timings["shots"] += time.perf_counter() - t0
        finish_segments(segments)
        return VideoAnalysis(
            info,
            reader.frames_decoded,
            clips,
            timings,
            tracker.frame_scores(),
            sorted(tracker.found, key=lambda b: (b.start, b.end)),
        )


def _clip_dict(
    clip: Segment,
    times: array,
    info: VideoInfo,
    fps: float,
    sampler: MotionSampler,
    picker: KeyframePicker,
    motion: bool,
) -> dict:
    start, end = clip.start, clip.end
    end_s = times[end] if end < len(times) else times[end - 1] + 1.0 / fps
    score, p90 = sampler.clip_scores(start, end) if motion else (float("nan"), float("nan"))
    key_frames, key_images = picker.pick(start, end)
    return {
        "start_frame": start,
        "end_frame": end,
        "start_s": float(times[start]),
        "end_s": float(end_s),
        "fps": float(info.fps),
        "num_frames": end - start,
        "width": info.width,
        "height": info.height,
        "motion_score": score,
        "motion_p90": p90,
        "keyframes": key_images,
        "keyframe_frames": key_frames,
        "shot_index": clip.shot_index,
        "transition_in": clip.kind_in,
        "transition_out": clip.kind_out,
    }
