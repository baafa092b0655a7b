"""Is the change at frame c a hard cut? From per-frame signals, with a known reach.

A hard cut at frame c (the first frame of the new shot) is a change between two frames
that are not both blank, that is not undone shortly after (no frame shortly after c
matches the frame before it, nor any frame shortly before c the frame at c, up to a
small shift: that would be a flash or something passing in front of the camera), and
that motion does not explain: no shift of the frame before (a small one, or the peak of
their phase correlation) takes away most of the change. And either:

- it stands out from the changes around it in a measure that motion does not raise:
  the colour histograms' distance (motion moves pixels around, it does not change
  their colours), or the difference left after the best small shift of the frame before
  (camera motion mostly shifts the picture) in its median pixel (something crossing the
  frame fast changes a part of it, a cut all of it). The raw frame difference grows
  with the speed of the shot, so a cut out of a fast shot stands out from it by less
  than one out of a still shot (in a fast street shot, 2.5x);
- or PySceneDetect's ContentDetector at its default threshold, or TransNetV2
  (curate/transnet.py), cuts there: every cut they find is kept unless the pixels show
  a flash or a camera move (a shift explains it, or it is one of a burst of changes as
  large within 0.2 s: a whip pan).
"""

from __future__ import annotations

import numpy as np

from curate.config import ShotConfig
from curate.pixel_measures import MOVE_EXPLAINS, blur, moving_share, shift_distances
from curate.signals import FrameSignals, wasserstein
from curate.verdict import Verdict

SPIKE_CONTEXT_S = 0.2  # the medians a spike stands out from span this on each side
SHIFT_RADIUS = 2  # thumbnail pixels: 1/9 of the short side per frame
# A change that the frames around it match within this factor (after the best shift) is
# part of a burst of them: a whip pan, whose blurred frames no small shift explains.
WHIP_RATIO = 2.0


class CutCheck:
    """Settings: cut_min_diff, cut_ratio, cut_offset, cut_hist_ratio (the spike),
    cut_content_threshold (ContentDetector's), flash_window_s and flash_ratio (the flash),
    flat_std (blank frames), all from ShotConfig."""

    def __init__(self, fps: float, cfg: ShotConfig):
        self.cfg = cfg
        self.context = max(2, round(SPIKE_CONTEXT_S * fps))
        self.flash_span = max(2, round(cfg.flash_window_s * fps))
        # frames on either side of c the check reads
        self.reach = max(self.context, self.flash_span) + 1
        self._residual_cache: dict[int, float] = {}

    def check(self, sig: FrameSignals, diff, luma_std, dark, c: int, voted: bool) -> Verdict:
        """voted: a detector that cuts at its own threshold cut here (ContentDetector at its
        default, TransNetV2)."""
        cfg = self.cfg
        blank = (dark[c] > 0 or luma_std[c] < cfg.flat_std) and (
            dark[c - 1] > 0 or luma_std[c - 1] < cfg.flat_std
        )
        if blank:
            return Verdict.no("blank")
        if diff[c] < cfg.cut_min_diff and not voted:
            return Verdict.no("small")
        lo, hi = max(sig.oldest() + 1, c - self.context), min(sig.count, c + 1 + self.context)
        at = c - lo
        pair = blur(sig.thumbs(c - 1, c + 1))
        moved, _ = shifted_residuals(pair, typical=False)
        if moved[0] < MOVE_EXPLAINS * np.abs(pair[1] - pair[0]).mean():
            return Verdict.no("camera move")
        if moving_share(sig, c, c + 1) > 0:
            return Verdict.no("camera move")
        if voted:
            # [i]: frame lo + i against the one before, after the best shift
            if not _stands_out(self._residuals(sig, lo, hi), at, WHIP_RATIO, 0.0):
                return Verdict.no("whip pan")
        elif not _stands_out(self._hist_steps(sig, lo, hi), at, cfg.cut_hist_ratio, cfg.cut_offset):
            _, typical = shifted_residuals(blur(sig.thumbs(lo - 1, hi)))
            if not _stands_out(typical, at, cfg.cut_ratio, cfg.cut_offset):
                return Verdict.no("no spike")
        return Verdict.no("flash") if self.is_flash(sig, c) else Verdict(c, c)

    def _residuals(self, sig: FrameSignals, lo: int, hi: int) -> np.ndarray:
        """Mean shifted residual of each frame in [lo, hi) against the one before,
        remembered: the candidates of a burst share their context."""
        known = self._residual_cache
        missing = [t for t in range(lo, hi) if t not in known]
        if missing:
            a, b = missing[0], missing[-1] + 1
            mean, _ = shifted_residuals(blur(sig.thumbs(a - 1, b)), typical=False)
            known.update(zip(range(a, b), mean.tolist(), strict=True))
        for t in [t for t in known if t < sig.oldest()]:
            del known[t]
        return np.array([known[t] for t in range(lo, hi)])

    @staticmethod
    def _hist_steps(sig: FrameSignals, lo: int, hi: int) -> np.ndarray:
        """Histogram distance of each frame in [lo, hi) to the one before it."""
        cdf = sig.cdfs(lo - 1, hi)
        return wasserstein(cdf[:-1], cdf[1:])

    def spikes(self, diff: np.ndarray, lo: int, hi: int) -> list[int]:
        """Frames c in [lo, hi) whose raw difference to the previous frame is a spike
        (candidates where the detectors cannot see: the last frames of a video)."""
        cfg, w = self.cfg, self.context
        out = []
        for c in np.flatnonzero(diff[max(1, lo) : hi] >= cfg.cut_min_diff) + max(1, lo):
            start = max(1, c - w)
            if _stands_out(diff[start : c + 1 + w], c - start, cfg.cut_ratio, cfg.cut_offset):
                out.append(int(c))
        return out

    def is_flash(self, sig: FrameSignals, c: int) -> bool:
        """Whether the change at c is undone within flash_window_s (a flash, an occlusion)."""
        span = self.flash_span
        lo = max(sig.oldest(), c - 1 - span)
        hi = min(sig.pushed, c + 1 + span)
        th = sig.thumbs(lo, hi)
        before, after = th[c - 1 - lo], th[c - lo]
        change = shift_distances(before, after[None])[0]
        later = shift_distances(before, th[c + 1 - lo :]) if hi > c + 1 else np.array([np.inf])
        earlier = shift_distances(after, th[: c - 1 - lo]) if c - 1 > lo else np.array([np.inf])
        return bool(min(later.min(), earlier.min()) < self.cfg.flash_ratio * change)


def shifted_residuals(thumbs: np.ndarray, typical: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For consecutive thumbnails (k + 1, 3, h, w), what is left of each one's change
    from the one before after the best shift of up to SHIFT_RADIUS pixels: the mean
    absolute difference, and (when `typical`, else NaN) the median over pixels of the
    difference summed over channels (a cut changes the whole picture; something moving
    fast, a part of it). Both (k,), each minimised over the shifts.

    Each frame's centre (SHIFT_RADIUS in from every edge) is compared with every window
    of that size in the frame before, all shifts in one array operation."""
    r = SHIFT_RADIUS
    x = np.asarray(thumbs, np.float32)
    prev, cur = x[:-1], x[1:]
    _, _, h, w = x.shape
    centre = cur[:, :, r : h - r, r : w - r]  # (k, 3, h', w')
    windows = np.lib.stride_tricks.sliding_window_view(prev, (h - 2 * r, w - 2 * r), axis=(2, 3))
    d = np.abs(windows - centre[:, :, None, None])  # (k, 3, 2r + 1, 2r + 1, h', w')
    mean = d.mean((1, 4, 5)).reshape(len(cur), -1).min(1)
    if not typical:
        return mean, np.full(len(cur), np.nan)
    per_pixel = d.sum(1).reshape(len(cur), (2 * r + 1) ** 2, -1)
    return mean, np.median(per_pixel, axis=2).min(1)


def _stands_out(x: np.ndarray, at: int, ratio: float, offset: float) -> bool:
    """x[at] is at least `ratio` times the median of x on either side of it, plus offset."""
    left = np.median(x[:at]) if at > 0 else 0.0
    right = np.median(x[at + 1 :]) if at + 1 < len(x) else 0.0
    return bool(x[at] >= ratio * max(left, right) + offset)
