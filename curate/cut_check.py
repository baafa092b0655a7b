"""Is the change at frame c a hard cut? From per-frame signals, with a known reach.

A hard cut at frame c (the first frame of the new shot) is a spike of the frame
difference against the median difference just before and just after it (steady fast
motion and whip pans are not spikes), between two frames that are not both blank, and
is not undone shortly after: no frame shortly after c matches the frame before it, nor
any frame shortly before c the frame at c, up to a small shift (that would be a flash or
something passing in front of the camera).
"""

from __future__ import annotations

import numpy as np

from curate.config import ShotConfig
from curate.pixel_measures import shift_distances
from curate.signals import FrameSignals
from curate.verdict import Verdict

SPIKE_CONTEXT_S = 0.2  # the medians a spike stands out from span this on each side


class CutCheck:
    """Settings: cut_min_diff, cut_ratio, cut_offset (the spike), flash_window_s and
    flash_ratio (the flash), flat_std (blank frames), all from ShotConfig."""

    def __init__(self, fps: float, cfg: ShotConfig):
        self.cfg = cfg
        self.context = max(2, round(SPIKE_CONTEXT_S * fps))
        self.flash_span = max(2, round(cfg.flash_window_s * fps))
        # frames on either side of c the check reads
        self.reach = max(self.context, self.flash_span) + 1

    def check(self, sig: FrameSignals, diff, luma_std, dark, c: int) -> Verdict:
        cfg = self.cfg
        blank = (dark[c] > 0 or luma_std[c] < cfg.flat_std) and (
            dark[c - 1] > 0 or luma_std[c - 1] < cfg.flat_std
        )
        if blank:
            return Verdict.no("blank")
        if not self.spikes(diff, c, c + 1):
            return Verdict.no("no spike")
        if self.is_flash(sig, c):
            return Verdict.no("flash")
        return Verdict(c, c)

    def spikes(self, diff: np.ndarray, lo: int, hi: int) -> list[int]:
        """Frames c in [lo, hi) whose difference to the previous frame is a spike."""
        cfg, w = self.cfg, self.context
        lo = max(1, lo)
        out = []
        for c in np.flatnonzero(diff[lo:hi] >= cfg.cut_min_diff) + lo:
            left = np.median(diff[max(1, c - w) : c]) if c > 1 else 0.0
            right = np.median(diff[c + 1 : c + 1 + w]) if c + 1 < len(diff) else 0.0
            if diff[c] >= cfg.cut_ratio * max(left, right) + cfg.cut_offset:
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
