"""Probe and decode a video once, at analysis size, with PyAV.

Decoding is the physical limit of curation, so this module reads the decoder's planes
directly instead of converting every frame through swscale: for 8-bit 4:2:0 video the
luma and chroma planes are decimated by strided views (no copy, no colour conversion),
which costs almost nothing next to the decode itself. Consumers ask a `Frame` for what
they need (luma, a small BGR image, or a larger RGB keyframe) and pay only for that.

Frame numbers count decoded frames from 0 in display order; timestamps come from the
frame's pts, so variable frame rate video keeps true times. Display rotation (the
display matrix) and sample aspect ratio are applied to every image this module returns.
Every failure is a `VideoError` with a short kind and a one-line reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np

from curate.container import (
    decode_frames,
    display_size,
    open_container,
    read_info,
    rotate,
    video_stream,
)
from curate.frame_rate import known_fps

# 4:2:0 8-bit layouts whose planes can be decimated in place.
_FAST_FORMATS = {"yuv420p", "yuvj420p"}


@dataclass(frozen=True)
class DecodeOptions:
    """How `decode` reduces frames; mirrors `curate.config.DecodeConfig`."""

    analysis_short_side: int = 96
    threads: int = 0  # 0: FFmpeg picks
    timeout_s: float = 600.0


class Frame:
    """One decoded frame, reduced lazily to what its consumer asks for.

    `index` counts decoded frames from 0 in display order and `time_s` is the frame's
    presentation time from the start of the stream. All images are in display geometry.
    """

    __slots__ = ("_av", "_bgr", "_planes", "_reader", "index", "time_s")

    def __init__(self, reader: VideoReader, av_frame: av.VideoFrame, index: int, time_s: float):
        self._reader = reader
        self._av = av_frame
        self._planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._bgr: np.ndarray | None = None
        self.index = index
        self.time_s = time_s

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Y, U, V at analysis size, each (h, w) uint8; views into the decoder's buffers."""
        if self._planes is None:
            self._planes = self._reader._reduce(self._av)
        return self._planes

    def gray(self) -> np.ndarray:
        """Luma at analysis size, (h, w) uint8."""
        return self.planes()[0]

    def bgr(self) -> np.ndarray:
        """A small BGR image at analysis size, (h, w, 3) uint8 (what PySceneDetect eats)."""
        if self._bgr is None:
            y, u, v = self.planes()
            yuv = np.dstack((y, u, v))
            self._bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
        return self._bgr

    def luma(self, short_side: int) -> np.ndarray:
        """Luma with the given short side (display aspect kept), (h, w) uint8.

        Area-averaged from the full-resolution plane, so unlike gray() it does not alias:
        a faithful small picture for the few frames that need one (optical flow), at a
        fraction of rgb()'s cost.
        """
        info = self._reader.info
        w, h = info.width, info.height
        scale = short_side / min(w, h)
        tw, th = max(2, round(w * scale)), max(2, round(h * scale))
        cw, ch = (th, tw) if info.rotation % 180 else (tw, th)  # coded orientation
        f = self._av
        if f.format.name in _FAST_FORMATS:
            y = _plane(f, 0, f.width, f.height)
            img = cv2.resize(y, (cw, ch), interpolation=cv2.INTER_AREA)
        else:
            img = f.reformat(width=cw, height=ch, format="gray").to_ndarray()
        return rotate(img, info.rotation)

    def rgb(self, short_side: int) -> np.ndarray:
        """RGB with the given short side (display aspect kept), (h, w, 3) uint8.

        Goes through swscale, so call it on the few frames that need detail (keyframes).
        """
        info = self._reader.info
        w, h = info.width, info.height
        scale = short_side / min(w, h)
        tw, th = max(2, round(w * scale)), max(2, round(h * scale))
        # Scale in coded orientation; rotate after.
        cw, ch = (th, tw) if info.rotation % 180 else (tw, th)
        f = self._av
        if f.format.name == "yuv420p" and abs(info.sample_aspect_ratio - 1.0) < 1e-3:
            img = _yuv420_rgb(f, cw, ch)  # 5-8x faster than swscale, same picture
        else:
            img = f.reformat(width=cw, height=ch, format="rgb24").to_ndarray()
        return rotate(img, info.rotation)


def _yuv420_rgb(f: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """Video-range 4:2:0 frame -> RGB (height, width, 3) with OpenCV.

    Planes are first shrunk by a whole factor with area averaging (no aliasing), then
    resized linearly to the target, and converted with BT.601 video-range coefficients
    (what swscale assumes by default).
    """
    w2, h2 = width + width % 2, height + height % 2  # I420 needs even sizes
    cw, ch = (f.width + 1) // 2, (f.height + 1) // 2
    planes = [_plane(f, 0, f.width, f.height), _plane(f, 1, cw, ch), _plane(f, 2, cw, ch)]
    out = []
    for i, p in enumerate(planes):
        tw, th = (w2, h2) if i == 0 else (w2 // 2, h2 // 2)
        k = min(p.shape[0] // th, p.shape[1] // tw)
        if k >= 2:
            p = cv2.resize(p, (p.shape[1] // k, p.shape[0] // k), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(p, (tw, th), interpolation=cv2.INTER_LINEAR).ravel())
    i420 = np.concatenate(out).reshape(h2 * 3 // 2, w2)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)[:height, :width]


def _decimation(short_side: int, target: int) -> int:
    """An even stride that keeps the short side >= target, or 1 for small frames.

    Even strides let chroma (half resolution in 4:2:0) be decimated by stride/2 and land
    on exactly the luma grid.
    """
    k = short_side // max(1, target)
    return k - (k % 2) if k >= 2 else 1


class VideoReader:
    """Open a video, probe it, and decode it once in display order.

    with VideoReader(path, DecodeOptions()) as reader:
        reader.info            # VideoInfo
        for frame in reader:   # Frame, memory bounded: nothing is kept behind
            ...
        reader.frames_decoded
    """

    def __init__(self, path: str | os.PathLike, options: DecodeOptions | None = None):
        self.options = options or DecodeOptions()
        self.path = str(path)
        self._deadline = time.monotonic() + self.options.timeout_s
        self._container = open_container(path, self.options.timeout_s)
        try:
            self._stream = video_stream(self._container)
            self._frames = decode_frames(
                self._container, self._stream, self._deadline, self.options.threads
            )
            self._first = next(self._frames)
            self.info = read_info(path, self._container, self._stream, self._first)
        except BaseException:
            self._container.close()
            raise
        self.frames_decoded = 0
        self._stride = 1
        self._geometry_for: tuple | None = None
        self._t0 = self._first.time if self._first.time is not None else 0.0

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        frames = self._frames_with_first()
        last_t = -1.0
        for av_frame in frames:
            t = av_frame.time
            # Missing or repeated pts (raw streams, broken muxers): step by the mean rate.
            if t is None or t - self._t0 <= last_t:
                t = last_t + 1.0 / known_fps(self.info.fps) + self._t0
            last_t = t - self._t0
            yield Frame(self, av_frame, self.frames_decoded, last_t)
            self.frames_decoded += 1

    def _frames_with_first(self) -> Iterator[av.VideoFrame]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def sample(self, fps: float) -> Iterator[Frame]:
        """Frames at (at most) `fps`, chosen by timestamp so VFR video samples evenly."""
        period = 1.0 / fps
        next_t = 0.0
        for frame in self:
            if frame.time_s + 1e-6 >= next_t:
                yield frame
                next_t = max(next_t + period, frame.time_s + period / 2)

    # -- reduction to analysis size ----------------------------------------------------

    def _reduce(self, f: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        geometry = (f.width, f.height, f.format.name)
        if geometry != self._geometry_for:  # resolution may change mid-stream
            self._geometry_for = geometry
            self._stride = _decimation(min(f.width, f.height), self.options.analysis_short_side)
        k = self._stride
        sar = self.info.sample_aspect_ratio
        fast = f.format.name in _FAST_FORMATS
        cw, ch = (f.width + 1) // 2, (f.height + 1) // 2
        if fast and k >= 2:
            y = _plane(f, 0, f.width, f.height)[::k, ::k]
            c = k // 2
            u = _plane(f, 1, cw, ch)[::c, ::c]
            v = _plane(f, 2, cw, ch)[::c, ::c]
            h, w = min(y.shape[0], u.shape[0]), min(y.shape[1], u.shape[1])
            planes = (y[:h, :w], u[:h, :w], v[:h, :w])
        elif fast:
            # Short side below twice the target: full-resolution luma, chroma doubled
            # (nearest neighbour, cheap), rather than swscale at ~2 ms a frame.
            size = (f.width, f.height)
            y = _plane(f, 0, f.width, f.height)
            u = cv2.resize(_plane(f, 1, cw, ch), size, interpolation=cv2.INTER_NEAREST)
            v = cv2.resize(_plane(f, 2, cw, ch), size, interpolation=cv2.INTER_NEAREST)
            planes = (y, u, v)
        else:
            # Other pixel formats: let swscale do it (it also makes the pixels square).
            dw, dh = display_size(f.width, f.height, sar, 0)
            scale = max(1.0, min(dw, dh) / self.options.analysis_short_side)
            tw, th = max(2, round(dw / scale)), max(2, round(dh / scale))
            small = f.reformat(width=tw, height=th, format="yuv444p")
            planes = tuple(_plane(small, i, tw, th) for i in range(3))
        if fast and abs(sar - 1.0) >= 1e-3:
            # Non-square pixels: the small planes stretched to square ones (cheap here,
            # where swscale on the whole frame costs ~1 ms a frame).
            h, w = planes[0].shape
            size = (max(2, round(w * sar)), h)
            planes = tuple(cv2.resize(p, size, interpolation=cv2.INTER_LINEAR) for p in planes)
        k_rot = (self.info.rotation // 90) % 4
        if k_rot:
            planes = tuple(np.rot90(p, k=k_rot) for p in planes)
        return planes  # type: ignore[return-value]


def _plane(f: av.VideoFrame, i: int, width: int, height: int) -> np.ndarray:
    plane = f.planes[i]
    buf = np.frombuffer(plane, dtype=np.uint8)
    return buf.reshape(-1, plane.line_size)[:height, :width]
