"""Open a video container with PyAV, find its video stream and probe it.

Every failure is a `VideoError` with a short kind and a one-line reason; local paths
are checked for existence and size first, so a missing or empty file says so rather
than what FFmpeg makes of it. Geometry is reported for display: rotation (the display
matrix) and sample aspect ratio applied.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

# 8 MiB ranged reads: a few requests per second of HD video, little wasted on a seek.
REMOTE_BLOCK = 8 << 20


class VideoError(Exception):
    """A video that cannot be probed or decoded; `kind` is a short machine-readable tag."""

    KINDS = (
        "missing",  # the path does not exist
        "empty",  # zero bytes
        "unreadable",  # not a media container FFmpeg can open
        "no_video",  # a container without a video stream (audio only, subtitles)
        "unsupported_codec",  # a video stream this FFmpeg build cannot decode
        "undecodable",  # opened, but no frame could be decoded
        "timeout",  # decoding ran past the time limit
    )

    def __init__(self, kind: str, reason: str):
        assert kind in self.KINDS, kind
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason

    def __reduce__(self):
        # Rebuilt from (kind, reason) when it crosses a process boundary (pipelines/isolate).
        return (VideoError, (self.kind, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns about a file, in display geometry."""

    path: str
    size_bytes: int
    duration_s: float
    fps: float  # average frame rate; see `is_vfr`
    num_frames: int  # from the container when it says, else duration_s * fps rounded
    width: int  # display width: rotation and sample aspect ratio applied
    height: int
    coded_width: int
    coded_height: int
    codec: str
    pix_fmt: str
    rotation: int  # counter-clockwise degrees applied for display: 0, 90, 180 or 270
    sample_aspect_ratio: float
    has_audio: bool
    is_vfr: bool  # the stream's nominal and average frame rates disagree


def open_container(path: str | os.PathLike, timeout_s: float) -> av.container.InputContainer:
    p = str(path)
    is_local = "://" not in p
    if is_local:
        if not os.path.exists(p):
            raise VideoError("missing", f"no such file: {p}")
        if os.path.getsize(p) == 0:
            raise VideoError("empty", f"file is empty: {p}")
    try:
        if is_local:
            return av.open(p, timeout=max(timeout_s, 10.0))
        # Object storage and http(s) through fsspec: FFmpeg reads and seeks a file object
        # whose reads are ranged requests, so a video is never copied whole to disk.
        remote = open_remote(p)
        if getattr(remote, "size", None) == 0:
            raise VideoError("empty", f"file is empty: {p}")
        return av.open(remote)
    except (av.error.FileNotFoundError, FileNotFoundError) as e:
        raise VideoError("missing", f"no such file: {p}") from e
    except PermissionError as e:
        raise VideoError("unreadable", f"access denied: {p}: {one_line(e)}") from e
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise VideoError("unreadable", f"not a readable media file: {one_line(e)}") from e


def open_remote(uri: str):
    """A seekable binary file object for a URI (s3://, gs://, http(s)://...). Its reads
    go out as ranged requests in blocks of REMOTE_BLOCK bytes, read ahead."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs.open(path, "rb", block_size=REMOTE_BLOCK, cache_type="readahead")


def use_storage_options(options: dict[str, dict]) -> None:
    """Make `options` (fsspec options by protocol) the defaults of every filesystem
    this process opens from now on, the way fsspec's own config file would."""
    import fsspec.config

    for protocol, kwargs in options.items():
        fsspec.config.conf.setdefault(protocol, {}).update(kwargs)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams:
        raise VideoError("unreadable", "the container holds no streams (truncated or damaged?)")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        raise VideoError("no_video", f"no video stream (streams: {', '.join(kinds)})")
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams:
        raise VideoError(
            "unsupported_codec", "this FFmpeg build has no decoder for the video codec"
        )
    # Prefer a real video over an attached picture (cover art in audio files).
    moving = [s for s in streams if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not moving:
        raise VideoError("no_video", "only an attached picture (cover art), no video stream")
    return moving[0]


def display_size(w: int, h: int, sar: float, rotation: int) -> tuple[int, int]:
    if sar > 0 and abs(sar - 1.0) > 1e-3:
        w = max(1, round(w * sar))
    return (h, w) if rotation % 180 else (w, h)


def _stream_fps(stream: av.video.stream.VideoStream) -> tuple[float, bool]:
    avg = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(avg) if avg else 0.0
    base = float(stream.base_rate) if stream.base_rate else fps
    is_vfr = fps > 0 and base > 0 and abs(base - fps) / fps > 0.01
    return fps, is_vfr


def _duration_s(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def probe(path: str | os.PathLike, timeout_s: float = 60.0) -> VideoInfo:
    """Read a file's metadata and decode its first frame (which proves it decodes)."""
    container = open_container(path, timeout_s)
    try:
        stream = video_stream(container)
        deadline = time.monotonic() + timeout_s
        # _decode_frames raises when not one frame decodes, so next() always has one.
        first = next(decode_frames(container, stream, deadline, threads=1))
        return read_info(path, container, stream, first)
    finally:
        container.close()


def read_info(path, container, stream, first: av.VideoFrame) -> VideoInfo:
    fps, is_vfr = _stream_fps(stream)
    duration_s = _duration_s(container, stream)
    sar = float(first.sample_aspect_ratio) if getattr(first, "sample_aspect_ratio", None) else 0.0
    if not sar:
        sar = float(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else 1.0
    rotation = round((first.rotation or 0) / 90) % 4 * 90
    width, height = display_size(first.width, first.height, sar, rotation)
    num_frames = stream.frames or (round(duration_s * fps) if fps else 0)
    p = str(path)
    return VideoInfo(
        path=p,
        size_bytes=os.path.getsize(p) if "://" not in p else (container.size or 0),
        duration_s=duration_s,
        fps=fps,
        num_frames=int(num_frames),
        width=width,
        height=height,
        coded_width=first.width,
        coded_height=first.height,
        codec=stream.codec_context.name,
        pix_fmt=first.format.name,
        rotation=rotation,
        sample_aspect_ratio=sar or 1.0,
        has_audio=bool(container.streams.audio),
        is_vfr=is_vfr,
    )


def decode_frames(container, stream, deadline: float, threads: int) -> Iterator[av.VideoFrame]:
    """Yield frames in display order; skip corrupt packets; stop at the deadline."""
    try:
        ctx = stream.codec_context
        ctx.thread_type = "AUTO"  # frame + slice threads: decode is the bottleneck
        if threads:
            ctx.thread_count = threads
    except av.error.FFmpegError as e:
        raise VideoError("unsupported_codec", f"cannot open decoder: {one_line(e)}") from e
    if ctx.codec is None or not ctx.codec.name:
        raise VideoError("unsupported_codec", "no decoder for this stream in this FFmpeg build")
    decoded = 0
    try:
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                break  # a truncated or damaged container ends the stream here
            if time.monotonic() > deadline:
                raise VideoError("timeout", f"decoding stopped after {decoded} frames: time limit")
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a corrupt packet: FFmpeg conceals it, so do we
            for frame in frames:
                decoded += 1
                yield frame
    except av.error.DecoderNotFoundError as e:
        raise VideoError("unsupported_codec", one_line(e)) from e
    except av.error.FFmpegError as e:
        if decoded == 0:
            raise VideoError("undecodable", one_line(e)) from e
        # Frames before the damage are good; the stream ends at the damage.
    if decoded == 0:
        raise VideoError("undecodable", "no frame could be decoded")


def rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img
