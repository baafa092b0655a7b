"""Does a generated demo video follow its prompt? Measured from pixels.

The demo's subjects are saturated colours on low-saturation backgrounds, so the subject
is the set of saturated pixels: its mean hue names the colour, and the path of its
centroid across frames names the direction. No model is involved in the judgement.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.demo.corpus import COLOURS

MIN_SATURATION = 90  # OpenCV's 0-255 scale; the demo backgrounds stay far below this
MIN_PIXELS = 4  # per frame, for a centroid
MIN_TRAVEL = 0.04  # share of the frame size the centroid must move to count as motion


def _hue(rgb) -> float:
    px = np.uint8([[rgb]])
    return float(cv2.cvtColor(px, cv2.COLOR_RGB2HSV)[0, 0, 0]) * 2.0  # degrees


COLOUR_HUES = {name: _hue(rgb) for name, rgb in COLOURS.items()}


@dataclass
class Judgement:
    colour: str | None
    direction: str | None
    travel: float  # centroid displacement, share of frame size


def _circular_mean_deg(hues_deg: np.ndarray, weights: np.ndarray) -> float:
    a = np.deg2rad(hues_deg)
    return float(
        np.rad2deg(np.arctan2((np.sin(a) * weights).sum(), (np.cos(a) * weights).sum())) % 360
    )


def judge(frames: np.ndarray) -> Judgement:
    """frames: (T, H, W, 3) uint8 RGB -> the subject's colour and direction (or None)."""
    t, h, w = frames.shape[:3]
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])
    sat = hsv[..., 1].astype(np.float32)
    mask = (sat >= MIN_SATURATION) & (hsv[..., 2] >= 60)
    if mask.sum() < MIN_PIXELS:
        return Judgement(None, None, 0.0)
    hue = hsv[..., 0][mask].astype(np.float32) * 2.0
    mean_hue = _circular_mean_deg(hue, sat[mask])
    colour = min(
        COLOUR_HUES,
        key=lambda c: min(abs(COLOUR_HUES[c] - mean_hue), 360 - abs(COLOUR_HUES[c] - mean_hue)),
    )
    ys, xs = np.mgrid[0:h, 0:w]
    centres = []
    for i in range(t):
        m = mask[i]
        if m.sum() >= MIN_PIXELS:
            centres.append((i, xs[m].mean() / w, ys[m].mean() / h))
    if len(centres) < 2:
        return Judgement(colour, None, 0.0)
    c = np.array(centres)
    # least-squares slope of x and y against time: robust to a noisy frame or two
    dx = np.polyfit(c[:, 0], c[:, 1], 1)[0] * (t - 1)
    dy = np.polyfit(c[:, 0], c[:, 2], 1)[0] * (t - 1)
    travel = float(max(abs(dx), abs(dy)))
    if travel < MIN_TRAVEL:
        return Judgement(colour, None, travel)
    if abs(dx) >= abs(dy):
        direction = "right" if dx > 0 else "left"
    else:
        direction = "down" if dy > 0 else "up"
    return Judgement(colour, direction, travel)
