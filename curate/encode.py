"""Write frames to an H.264 mp4 with PyAV (libx264 ships inside PyAV's wheels).

Used for generated samples, test fixtures and synthetic corpora. Frames are RGB uint8
(H, W, 3); odd sizes are padded to even because yuv420p needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from fractions import Fraction

import av
import numpy as np


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 18,
    rotation: int = 0,
    times_s: Sequence[float] | None = None,
    codec: str = "libx264",
    gop: int | None = None,
) -> int:
    """Encode RGB frames; returns how many were written.

    rotation: counter-clockwise display rotation stored in the container (the frames are
    written as given; players rotate them). times_s: presentation times for variable
    frame rate output (one per frame, increasing); without it frames are 1/fps apart.
    """
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(rotation)
        if times_s is not None:
            stream.time_base = Fraction(1, 90000)
            stream.codec_context.time_base = Fraction(1, 90000)
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.ndim == 2:
                frame = np.repeat(frame[:, :, None], 3, axis=2)
            h, w = frame.shape[:2]
            if n == 0:
                stream.width, stream.height = w + w % 2, h + h % 2
                stream.pix_fmt = "yuv420p"
            if w % 2 or h % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if times_s is not None:
                vf.pts = round(times_s[n] * 90000)
                vf.time_base = Fraction(1, 90000)
            for packet in stream.encode(vf):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    return n
