"""Cut one clip, frames [start_frame, end_frame) of a video, into an mp4 of its own.

Frame numbers count decoded frames in display order (DESIGN.md), so a packet index of
the video (every packet's pts and keyframe flag, read by demuxing alone, no decoding)
maps frame k to the k-th smallest pts. A clip is stream-copied, its packets written
unchanged, when that is exact: it starts on a keyframe, its stream has no display
rotation to lose, and no frame of it can need a packet past its end (it ends at a
keyframe or at the video's end, or the stream never reorders frames). Anything else is
decoded from the keyframe before its start and re-encoded with libx264.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from curate.container import open_container, video_stream

COPY_CODECS = {"h264", "hevc", "av1", "mpeg4", "vp9"}  # what an mp4 can hold as it is


@dataclass
class PacketIndex:
    """A video stream's packets: pts in display order, and which are keyframes."""

    pts: np.ndarray  # sorted: pts[k] is frame k's
    keyframe: np.ndarray  # bool per frame (display order)
    reorders: bool  # decode order differs from display order (B-frames)


@dataclass
class Cut:
    data: bytes
    copied: bool
    frames: int


def index_packets(container, stream) -> PacketIndex | None:
    """None when some packet has no pts: frame numbers cannot be mapped to packets."""
    pts, keys = [], []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.pts is None:
            return None
        pts.append(packet.pts)
        keys.append(packet.is_keyframe)
    decode_order = np.asarray(pts, dtype=np.int64)
    order = np.argsort(decode_order, kind="stable")
    reorders = bool(np.any(np.diff(decode_order) < 0))
    return PacketIndex(decode_order[order], np.asarray(keys, dtype=bool)[order], reorders)


class ClipCutter:
    """Cuts the clips of one video; opens it once for the index, once per cut."""

    def __init__(self, path: str, crf: int = 12, preset: str = "veryfast", timeout_s: float = 600):
        self.path, self.crf, self.preset, self.timeout_s = path, crf, preset, timeout_s
        container = open_container(path, timeout_s)
        try:
            stream = video_stream(container)
            self.codec = stream.codec_context.name
            # display rotation, as curate applies it: read from the first decoded frame
            first = next(container.decode(stream))
            self.rotation = round((first.rotation or 0) / 90) % 4 * 90
            container.seek(0, stream=stream, backward=True)
            self.index = index_packets(container, stream)
        finally:
            container.close()

    def can_copy(self, start: int, end: int) -> bool:
        ix = self.index
        if ix is None or self.codec not in COPY_CODECS or self.rotation:
            return False
        n = len(ix.pts)
        if not (0 <= start < end <= n) or not ix.keyframe[start]:
            return False
        return end == n or bool(ix.keyframe[end]) or not ix.reorders

    def cut(self, start: int, end: int) -> Cut:
        if self.can_copy(start, end):
            return Cut(self._copy(start, end), True, end - start)
        data, frames = self.reencode(start, end)
        return Cut(data, False, frames)

    def _span_pts(self, start: int, end: int) -> tuple[int, int | None]:
        pts = self.index.pts
        return int(pts[start]), (int(pts[end]) if end < len(pts) else None)

    def _copy(self, start: int, end: int) -> bytes:
        first, stop = self._span_pts(start, end)
        src = open_container(self.path, self.timeout_s)
        buffer = io.BytesIO()
        try:
            stream = video_stream(src)
            src.seek(first, stream=stream, backward=True)
            with av.open(buffer, "w", format="mp4") as out:
                out_stream = out.add_stream_from_template(stream)
                for packet in src.demux(stream):
                    if packet.size == 0 or packet.pts is None or packet.pts < first:
                        continue
                    if stop is not None and packet.pts >= stop:
                        if not self.index.reorders:
                            break
                        continue  # a later packet in decode order may still be in the span
                    packet.pts -= first
                    if packet.dts is not None:
                        packet.dts -= first
                    packet.stream = out_stream
                    out.mux(packet)
        finally:
            src.close()
        return buffer.getvalue()

    def reencode(self, start: int, end: int) -> tuple[bytes, int]:
        """Frames [start, end) decoded and encoded again, upright: (mp4 bytes, frames)."""
        rotation = self.rotation
        src = open_container(self.path, self.timeout_s)
        buffer = io.BytesIO()
        written = 0
        try:
            stream = video_stream(src)
            stream.codec_context.thread_type = "AUTO"
            frames = self._span_frames(src, stream, start, end)
            with av.open(buffer, "w", format="mp4") as out:
                out_stream = None
                first_pts = None
                for frame in frames:
                    if out_stream is None:
                        out_stream = self._encoder(out, stream, frame, rotation)
                        first_pts = frame.pts or 0
                    image = rotated(frame, rotation) if rotation else frame
                    image = image.reformat(
                        width=out_stream.width, height=out_stream.height, format="yuv420p"
                    )
                    image.pts = (frame.pts or 0) - first_pts if frame.pts is not None else written
                    image.time_base = stream.time_base
                    out.mux(out_stream.encode(image))
                    written += 1
                if out_stream is not None:
                    out.mux(out_stream.encode(None))
        finally:
            src.close()
        return buffer.getvalue(), written

    def _span_frames(self, src, stream, start: int, end: int):
        """Decoded frames start..end-1: by pts from the keyframe before start, or by
        counting from the video's start when packets carry no pts."""
        if self.index is None:
            for k, frame in enumerate(src.decode(stream)):
                if k >= end:
                    return
                if k >= start:
                    yield frame
            return
        first, stop = self._span_pts(start, end)
        src.seek(first, stream=stream, backward=True)
        for frame in src.decode(stream):
            if frame.pts is None or frame.pts < first:
                continue
            if stop is not None and frame.pts >= stop:
                return
            yield frame

    def _encoder(self, out, stream, frame, rotation: int):
        rate = stream.average_rate or stream.guessed_rate or 25
        enc = out.add_stream("libx264", rate=rate)
        w, h = (frame.height, frame.width) if rotation % 180 else (frame.width, frame.height)
        enc.width, enc.height = w - w % 2, h - h % 2
        enc.pix_fmt = "yuv420p"
        enc.time_base = stream.time_base
        enc.options = {"crf": str(self.crf), "preset": self.preset}
        sar = stream.codec_context.sample_aspect_ratio
        if sar and not rotation:
            enc.codec_context.sample_aspect_ratio = sar
        return enc


def rotated(frame: av.VideoFrame, rotation: int) -> av.VideoFrame:
    """`frame` turned by its display rotation (counter-clockwise degrees). 4:2:0 frames
    turn plane by plane, so no colour conversion touches the pixels."""
    k = rotation // 90
    w, h = frame.width, frame.height
    if frame.format.name != "yuv420p" or w % 2 or h % 2:
        rgb = np.rot90(frame.to_ndarray(format="rgb24"), k=k)
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
    flat = frame.to_ndarray(format="yuv420p").ravel()
    q = (h // 2) * (w // 2)
    y = flat[: h * w].reshape(h, w)
    u = flat[h * w : h * w + q].reshape(h // 2, w // 2)
    v = flat[h * w + q : h * w + 2 * q].reshape(h // 2, w // 2)
    planes = [np.rot90(p, k=k).ravel() for p in (y, u, v)]
    new_w = h if k % 2 else w
    packed = np.concatenate(planes).reshape(-1, new_w)
    return av.VideoFrame.from_ndarray(packed, "yuv420p")
