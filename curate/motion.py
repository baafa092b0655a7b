"""Motion scores from Farnebäck optical flow between frames sampled at 2 fps.

Stable Video Diffusion scored motion as the mean magnitude of dense Farnebäck flow
computed at 2 fps, and dropped clips with little of it. Here the score is made
independent of the video's resolution and frame rate:

- frames are sampled by timestamp (2 per second whatever the frame rate) and each flow
  spans the true time between its two frames;
- flow is computed on luma area-averaged to a fixed small size (short side 36 px), so a
  4K and a 360p copy of the same shot see the same picture;
- magnitudes are divided by the frame diagonal and by that time.

Unit: % of the frame diagonal per second. A pan that crosses a 16:9 frame's width in
10 s scores about 8.7; a still shot scores about 0.

Each pair is normalised to zero mean and unit contrast first, so a global brightness
change (a fade, a flash, auto-exposure) moves nothing; and the global translation is
found by phase correlation and handed to Farnebäck as its initial flow, so fast pans
(which move the small picture further than its coarsest pyramid level can follow in half
a second) are still measured.

motion_p90 is the speed of the fastest tenth of the picture (the 90th percentile of the
per-pixel speed), averaged over the clip's pairs: a small object crossing a still scene
scores low in motion_score and high in motion_p90.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Farnebäck parameters for a ~64x36 picture: 3 pyramid levels, an 11 px window, 2
# iterations (the global shift already starts it near the answer).
_FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 11,
    "iterations": 2,
    "poly_n": 5,
    "poly_sigma": 1.1,
}


@dataclass(frozen=True)
class PairMotion:
    """Flow between two sampled frames: their frame numbers and speeds (% diagonal/s)."""

    first: int
    second: int
    mean: float
    p90: float


@dataclass(frozen=True)
class Picture:
    """A sampled frame ready for flow: 8-bit luma at unit contrast, and its spectrum."""

    gray: np.ndarray
    spectrum: np.ndarray


def normalise(gray: np.ndarray) -> np.ndarray:
    """Zero mean, unit contrast, as float32: brightness changes alone do not move flow."""
    g = gray.astype(np.float32)
    return (g - g.mean()) / max(float(g.std()), 1.0)


def prepare(gray: np.ndarray) -> Picture:
    """Luma at the flow size -> Picture. Farnebäck wants 8 bits: +-3 standard deviations
    are mapped onto 0..255."""
    z = normalise(gray)
    return Picture(np.clip(z * 40 + 128, 0, 255).astype(np.uint8), spectrum(z))


def spectrum(picture: np.ndarray) -> np.ndarray:
    """Fourier transform of a Hann-windowed picture, for global_shift (computed once per
    sampled frame: each frame is the second of one pair and the first of the next)."""
    h, w = picture.shape
    return np.fft.rfft2(picture * np.outer(np.hanning(h), np.hanning(w)))


def global_shift(spec_a: np.ndarray, spec_b: np.ndarray, shape: tuple[int, int]):
    """Translation (dx, dy) in pixels that moves picture a onto b, from their spectra,
    by phase correlation with a parabola through the peak for the sub-pixel part.

    (numpy's FFT rather than cv2.phaseCorrelate, whose OpenCV 5 build returns different
    answers for the same input depending on earlier calls.)
    """
    h, w = shape
    cross = spec_b * np.conj(spec_a)
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=(h, w))
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)

    def vertex(left: float, mid: float, right: float) -> float:
        curve = left - 2 * mid + right
        return (left - right) / (2 * curve) if curve < 0 else 0.0

    dy = py + vertex(corr[py - 1, px], corr[py, px], corr[(py + 1) % h, px])
    dx = px + vertex(corr[py, px - 1], corr[py, px], corr[py, (px + 1) % w])
    # Shifts past half the picture are negative ones (the correlation wraps around).
    return float(dx - w if dx > w / 2 else dx), float(dy - h if dy > h / 2 else dy)


def pair_speed(a: Picture, b: Picture, dt_s: float) -> tuple[float, float]:
    """(mean, 90th percentile) flow speed from picture a to b, in % of the frame
    diagonal per second."""
    h, w = a.gray.shape
    dx, dy = global_shift(a.spectrum, b.spectrum, (h, w))
    init = np.empty((h, w, 2), np.float32)
    init[..., 0], init[..., 1] = dx, dy
    flow = cv2.calcOpticalFlowFarneback(
        a.gray, b.gray, init, flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_FARNEBACK
    )
    speed = np.hypot(flow[..., 0], flow[..., 1]).ravel() * (100.0 / (np.hypot(w, h) * dt_s))
    k = int(0.9 * (speed.size - 1))
    return float(speed.mean()), float(np.partition(speed, k)[k])


def motion_scores(gray_frames: list[np.ndarray], times_s: list[float]) -> tuple[float, float]:
    """motion_score and motion_p90 of consecutive sampled frames (luma at the flow size,
    e.g. Frame.luma(36) of frames 0.5 s apart) and their times. NaN for fewer than two."""
    pairs = []
    prev = None
    for gray, t in zip(gray_frames, times_s, strict=True):
        cur = prepare(gray)
        if prev is not None and t > prev[1]:
            pairs.append(pair_speed(prev[0], cur, t - prev[1]))
        prev = (cur, t)
    return aggregate([m for m, _ in pairs], [p for _, p in pairs])


def aggregate(means: list[float], p90s: list[float]) -> tuple[float, float]:
    """Per-pair speeds -> (motion_score, motion_p90): their means; NaN when empty."""
    if not means:
        return float("nan"), float("nan")
    return float(np.mean(means)), float(np.mean(p90s))


class MotionSampler:
    """Samples frames at `sample_fps` by timestamp during the decode pass and measures flow
    between consecutive samples; `pairs` holds the results (small), never the pictures."""

    def __init__(self, sample_fps: float, short_side: int):
        self.period = 1.0 / sample_fps
        self.short_side = short_side
        self.pairs: list[PairMotion] = []
        self._next_t = 0.0
        self._prev: tuple[int, float, Picture] | None = None

    def wants(self, time_s: float) -> bool:
        return time_s + 1e-6 >= self._next_t

    def skip(self, time_s: float) -> None:
        """Move the sampling clock past a sampled frame without measuring it."""
        self._next_t = max(self._next_t + self.period, time_s + self.period / 2)

    def add(self, index: int, time_s: float, luma: np.ndarray) -> None:
        """A sampled frame's luma at `short_side` (Frame.luma)."""
        self.skip(time_s)
        cur = prepare(luma)
        if self._prev is not None and time_s > self._prev[1]:
            mean, p90 = pair_speed(self._prev[2], cur, time_s - self._prev[1])
            self.pairs.append(PairMotion(self._prev[0], index, mean, p90))
        self._prev = (index, time_s, cur)

    def clip_scores(self, start: int, end: int) -> tuple[float, float]:
        """Scores of the pairs lying inside frames [start, end) (none crosses a cut)."""
        inside = [p for p in self.pairs if p.first >= start and p.second < end]
        return aggregate([p.mean for p in inside], [p.p90 for p in inside])

    def forget_before(self, frame: int) -> None:
        self.pairs = [p for p in self.pairs if p.first >= frame]
