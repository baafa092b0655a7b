"""Measures on the tiny thumbnails transitions are detected on (curate.signals).

Small numeric helpers the transition checks share: distances between thumbnails up to
a small shift, how far each frame of a window has gone from one shot to the other by
its pixels, whether consecutive frames move rather than blend, and running medians.
None keeps state or decodes anything.
"""

from __future__ import annotations

import numpy as np

from curate.signals import FrameSignals

ANCHOR = 5  # frames whose median stands for each shot at a window's ends
MOVE_EXPLAINS = 0.6  # a shift "explains" a change that it reduces below this share


def shift_distances(a: np.ndarray, others: np.ndarray, radius: int = 2) -> np.ndarray:
    """Smallest mean absolute difference between thumbnail a (3, h, w) and each of
    others (k, 3, h, w) over shifts of up to `radius` pixels: (k,)."""
    a = np.asarray(a, np.float32)  # no copy when already float32 (pixel_progress)
    others = np.asarray(others, np.float32)
    _, h, w = a.shape
    best = np.full(len(others), np.inf)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            pa = a[:, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            pb = others[:, :, max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            best = np.minimum(best, np.abs(pb - pa).mean((1, 2, 3)))
    return best


def pixel_progress(thumbs: np.ndarray, min_change: float, radius: int = 4) -> np.ndarray | None:
    """How far each thumbnail (k, 3, h, w) has gone from the first shot to the second,
    from its pixels; None when both ends show the same picture (no transition).

    Progress is a frame's distance to the first shot over the sum of its distances to
    both: a blend (1 - a) A + a B lies a |A - B| from A and (1 - a) |A - B| from B, so
    this is a. A distance to a shot is the smallest to any of its anchor frames (a flash
    in one is harmless) over shifts of up to `radius` pixels (a slow pan stays near its
    own shot).
    """
    thumbs = blur(thumbs)  # the strided thumbnails alias: a pan's shifts are not whole
    first, last = np.median(thumbs[:ANCHOR], 0), np.median(thumbs[-ANCHOR:], 0)
    if shift_distances(first, last[None], radius)[0] < min_change:
        return None  # one picture, or one shot panning slowly
    # every other frame, interpolated between: the search is the cost, a blend is smooth
    n = len(thumbs)
    some = np.unique(np.r_[np.arange(0, n, 2), n - 1])
    sampled = thumbs[some]
    to_first = np.min([shift_distances(f, sampled, radius) for f in thumbs[:ANCHOR:2]], 0)
    to_last = np.min([shift_distances(f, sampled, radius) for f in thumbs[-ANCHOR::2]], 0)
    progress = to_first / np.maximum(to_first + to_last, 1e-6)
    return median5(np.interp(np.arange(n), some, progress))


def blur(x: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 along both image axes of (..., h, w), twice, edges repeated."""
    x = x.astype(np.float32)
    for axis in (-2, -1, -2, -1):
        y = np.moveaxis(x, axis, 0)
        p = np.concatenate([y[:1], y, y[-1:]])
        x = np.moveaxis((p[:-2] + 2 * p[1:-1] + p[2:]) / 4, 0, axis)
    return x


def moving_share(sig: FrameSignals, start: int, end: int, min_shift: int = 2) -> float:
    """Share of frames in [start, end) that are the frame before them moved by at least
    `min_shift` thumbnail pixels (a whip pan: its blur lowers contrast like a dissolve's
    mixing does, but its frames move instead of blending in place).

    Each pair's shift is the peak of its phase correlation; the pair moves when that
    shift explains the change much better than no shift does.
    """
    lo = max(start, sig.oldest() + 1)
    if end - lo < 1:
        return 0.0
    luma = sig.thumbs(lo - 1, end)[:, 0].astype(np.float32)
    n, h, w = luma.shape
    spec = np.fft.rfft2(luma * np.outer(np.hanning(h), np.hanning(w)))
    cross = spec[1:] * np.conj(spec[:-1])
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=(h, w))
    peaks = corr.reshape(n - 1, -1).argmax(1)
    moving = 0
    for k, (dy, dx) in enumerate(zip(*np.unravel_index(peaks, (h, w)), strict=True)):
        dy, dx = int(dy - h if dy > h // 2 else dy), int(dx - w if dx > w // 2 else dx)
        if max(abs(dy), abs(dx)) < min_shift:
            continue
        prev, cur = luma[k], luma[k + 1]
        still = np.abs(cur - prev).mean()
        pa = prev[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        pb = cur[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
        moving += bool(np.abs(pb - pa).mean() < MOVE_EXPLAINS * still)
    return moving / (n - 1)


def median5(x: np.ndarray) -> np.ndarray:
    """Running median over 5 samples, edges repeated (removes 1-2 sample spikes)."""
    padded = np.pad(np.asarray(x, np.float64), 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)


def slope(v: np.ndarray) -> float:
    if len(v) < 2:
        return 0.0
    return abs(float(np.polyfit(np.arange(len(v)), v, 1)[0]))
