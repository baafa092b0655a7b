"""Decode only a clip's span, at chosen times, for training.

Seeks to the keyframe before the span, decodes forward, and keeps the frame shown at
each requested time (the last frame whose presentation time is not after it), so a
clip is read at any target frame rate without decoding the rest of the video. Frames
come out RGB, in display geometry (rotation and sample aspect ratio applied), scaled so
the short side is `short_side` (or at full size when it is None).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import av
import numpy as np

from curate.container import VideoError, one_line, open_container, rotate, video_stream


def read_frames_at(
    path: str | os.PathLike,
    times_s: Sequence[float],
    short_side: int | None = None,
    timeout_s: float = 60.0,
) -> np.ndarray:
    """Frames shown at `times_s` (seconds from the stream start, increasing).

    Returns (len(times_s), H, W, 3) uint8 RGB. A time past the end repeats the last frame.
    """
    if len(times_s) == 0:
        raise ValueError("times_s is empty")
    if any(b < a for a, b in itertools.pairwise(times_s)):
        raise ValueError("times_s must be increasing")
    container = open_container(path, timeout_s)
    try:
        stream = video_stream(container)
        stream.codec_context.thread_type = "AUTO"
        sar = float(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else 1.0
        start = stream.start_time * stream.time_base if stream.start_time is not None else 0
        t0 = float(start)
        target = t0 + float(times_s[0])
        if target > t0 + 0.5:
            # seek lands on the keyframe at or before target (backward is the default)
            container.seek(int(target / stream.time_base), stream=stream)
        out: list[np.ndarray] = []
        prev = None
        k = 0
        try:
            for frame in container.decode(stream):
                t = (frame.time if frame.time is not None else 0.0) - t0
                while k < len(times_s) and t > times_s[k] + 1e-6 and prev is not None:
                    out.append(prev)
                    k += 1
                if k == len(times_s):
                    break
                prev = _rgb(frame, sar, short_side)
        except av.error.FFmpegError as e:
            if prev is None:
                raise VideoError("undecodable", one_line(e)) from e
        if prev is None:
            raise VideoError("undecodable", "no frame in the requested span")
        while len(out) < len(times_s):
            out.append(prev)
        return np.stack(out)
    finally:
        container.close()


def _rgb(frame: av.VideoFrame, sar: float, short_side: int | None) -> np.ndarray:
    rotation = round((frame.rotation or 0) / 90) % 4 * 90
    w = max(1, round(frame.width * sar)) if sar > 0 else frame.width
    h = frame.height
    if short_side:
        s = short_side / min(w, h)
        w, h = max(2, round(w * s)), max(2, round(h * s))
    img = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    return rotate(img, rotation)
