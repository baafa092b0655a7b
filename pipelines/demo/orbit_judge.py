"""Does a generated orbit turn the asked way, and come back to where it started? From pixels.

The objects' faces are saturated colours on a low-saturation background, so each face
is the set of pixels of its hue. As the camera orbits anticlockwise (positive degrees)
the faces in view slide left across the frame, new colours coming in at the right;
clockwise, the other way. The direction is the sign of the colour centroids' mean
horizontal motion between frames, each colour weighted by the pixels it keeps. Loop
closure: after a full turn the view is the first one again, so the last frame of a
360-degree orbit must be closer to the first than the half-way (180-degree) frame is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.demo.orbits import PALETTE

MIN_SATURATION = 90  # OpenCV's 0-255 scale; backgrounds stay far below
MIN_PIXELS = 3  # of one colour in a frame, for its centroid
MIN_SHIFT = 0.005  # mean centroid motion per frame (share of the width) that counts
HUE_TOLERANCE = 25.0  # degrees from a palette hue


def _hue(rgb) -> float:
    return float(cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2HSV)[0, 0, 0]) * 2.0


PALETTE_HUES = np.array([_hue(rgb) for rgb in PALETTE.values()])


@dataclass
class OrbitJudgement:
    direction: int  # +1 anticlockwise (faces slide left), -1 clockwise, 0 undecided
    shift: float  # mean horizontal centroid motion per frame, share of the width
    loop_closed: bool | None  # None for a video too short to have a half-way frame


def colour_labels(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) palette index of each saturated pixel, -1 elsewhere."""
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])
    hue = hsv[..., 0].astype(np.float32) * 2.0
    gap = np.abs(hue[..., None] - PALETTE_HUES)  # (T, H, W, colours)
    gap = np.minimum(gap, 360 - gap)
    label = gap.argmin(-1)
    ok = (hsv[..., 1] >= MIN_SATURATION) & (hsv[..., 2] >= 50) & (gap.min(-1) <= HUE_TOLERANCE)
    return np.where(ok, label, -1)


def horizontal_shift(frames: np.ndarray) -> float:
    """Mean motion per frame of the colour centroids (share of the width; + = right)."""
    labels = colour_labels(frames)
    width = frames.shape[2]
    xs = np.arange(width)[None, :]
    moves, weights = [], []
    for t in range(len(frames) - 1):
        for k in range(len(PALETTE_HUES)):
            a, b = labels[t] == k, labels[t + 1] == k
            na, nb = int(a.sum()), int(b.sum())
            if min(na, nb) < MIN_PIXELS:
                continue
            xa = float((a * xs).sum()) / na
            xb = float((b * xs).sum()) / nb
            moves.append((xb - xa) / width)
            weights.append(min(na, nb))
    if not weights:
        return 0.0
    return float(np.average(moves, weights=weights))


def judge_orbit(frames: np.ndarray, degrees: float) -> OrbitJudgement:
    """frames (T, H, W, 3) uint8 RGB of an orbit asked to turn `degrees`."""
    shift = horizontal_shift(frames)
    direction = 0 if abs(shift) < MIN_SHIFT else (1 if shift < 0 else -1)
    loop = None
    if abs(abs(degrees) - 360) < 1e-6 and len(frames) >= 3:
        first = frames[0].astype(np.float32)
        half = frames[(len(frames) - 1) // 2].astype(np.float32)
        last = frames[-1].astype(np.float32)
        loop = bool(np.mean((last - first) ** 2) < np.mean((half - first) ** 2))
    return OrbitJudgement(direction, shift, loop)
