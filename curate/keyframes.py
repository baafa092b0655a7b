"""Keyframes for the model stages: the first, middle and last frame of each clip.

Candidates are the frames sampled at the motion rate (2 per second) while the video is
decoded once. A candidate is kept as the decoded frame itself (a reference, no copy and
no conversion) only while the segment it lies in is still open; when a clip is final its
three keyframes are converted to RGB at `short_side` (never upscaled) and encoded as
JPEG or PNG bytes, which is all that leaves this module. If the held frames grow past `budget_bytes` (very
large frames), the oldest are converted to small RGB right away, so memory stays bounded
whatever the resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from curate.config import KeyframeConfig
from curate.video import Frame


def choose(candidates: list[int], start: int, end: int) -> list[int]:
    """The candidate frames nearest the first, middle and last frame of [start, end).

    Only candidates inside the clip are chosen (a frame from the next shot would be
    wrong); a clip with fewer than three repeats them; none gives [].
    """
    inside = [c for c in candidates if start <= c < end]
    if not inside:
        return []
    middle = (start + end - 1) / 2
    return [inside[0], min(inside, key=lambda c: abs(c - middle)), inside[-1]]


def encode(rgb: np.ndarray, cfg: KeyframeConfig) -> bytes:
    """RGB (h, w, 3) uint8 -> JPEG or PNG bytes."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if cfg.format == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, cfg.quality])
    if not ok:
        raise RuntimeError(f"could not encode a {rgb.shape} keyframe as {cfg.format}")
    return buf.tobytes()


class KeyframePicker:
    """add(frame) for each candidate; pick(start, end) once a clip is final."""

    def __init__(self, cfg: KeyframeConfig, budget_bytes: int = 256 << 20):
        self.cfg = cfg
        self.budget_bytes = budget_bytes
        self._frames: dict[int, Frame | np.ndarray] = {}  # frame number -> frame or RGB
        self._raw_bytes = 0

    def add(self, frame: Frame) -> None:
        self._frames[frame.index] = frame
        self._raw_bytes += _frame_bytes(frame)
        for index in list(self._frames):
            if self._raw_bytes <= self.budget_bytes:
                break
            held = self._frames[index]
            if isinstance(held, Frame):
                self._frames[index] = _small_rgb(held, self.cfg)
                self._raw_bytes -= _frame_bytes(held)

    def pick(self, start: int, end: int) -> tuple[list[int], list[bytes]]:
        """Keyframe frame numbers and encoded images for clip [start, end)."""
        chosen = choose(sorted(self._frames), start, end)
        images: dict[int, bytes] = {}
        for index in chosen:
            if index not in images:
                held = self._frames[index]
                rgb = _small_rgb(held, self.cfg) if isinstance(held, Frame) else held
                images[index] = encode(rgb, self.cfg)
        return chosen, [images[i] for i in chosen]

    def forget_before(self, frame: int) -> None:
        for index in [i for i in self._frames if i < frame]:
            held = self._frames.pop(index)
            if isinstance(held, Frame):
                self._raw_bytes -= _frame_bytes(held)

    def __len__(self) -> int:
        return len(self._frames)


def _small_rgb(frame: Frame, cfg: KeyframeConfig) -> np.ndarray:
    """RGB at the keyframe size, never larger than the video itself."""
    info = frame._reader.info
    return frame.rgb(min(cfg.short_side, info.width, info.height))


def _frame_bytes(frame: Frame) -> int:
    info = frame._reader.info
    return info.coded_width * info.coded_height * 3 // 2
