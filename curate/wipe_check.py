"""Is there a wipe around frame c (an iris, a bar, any shape), and where?

A wipe replaces one shot by the next region by region: every frame of it shows, at each
pixel, either the first shot or the second, and the share showing the second grows from
0 to 1. A dissolve mixes both at every pixel (each pixel is halfway between them in its
middle), a pan shows neither; so a frame is explained as a wipe frame when nearly every
pixel lies close to one of the two shots. Read on the thumbnails between the same
anchors the dissolve check uses; the shots must hold still enough that their anchor
frames stand for them (an old film's iris, a title card pushed off).
"""

from __future__ import annotations

import numpy as np

from curate.config import ShotConfig
from curate.pixel_measures import ANCHOR, blur, median5
from curate.signals import FrameSignals
from curate.verdict import Verdict

# A pixel differing between the shots by less than this (sum of |Y|, |U|, |V|, 0-255
# levels) cannot tell them apart and is left out.
DISTINCT_LEVEL = 24.0
# A wipe frame's pixels lie this close to one shot, as a share of the shots' difference
# (a dissolve's middle frame lies halfway: 0.5).
EXPLAINED_SHARE = 0.2
EDGE = 0.03  # a frame whose share of the second shot is within this of 0 or 1 is that shot


class WipeCheck:
    """Settings: changed_area_min (ShotConfig); the window is the dissolve check's."""

    def __init__(self, half: int, cfg: ShotConfig):
        self.cfg = cfg
        self.half = half  # frames on each side of the proposal
        self.reach = half

    def check(self, sig: FrameSignals, c: int, lo: int, hi: int) -> Verdict:
        a, b = max(lo, c - self.half, sig.oldest()), min(hi, c + self.half, sig.count - 1)
        if b - a < 4 * ANCHOR:
            return Verdict.no("window")
        th = blur(sig.thumbs(a, b + 1))
        first, last = np.median(th[:ANCHOR], 0), np.median(th[-ANCHOR:], 0)
        gap = np.abs(first - last).sum(0)  # (h, w)
        distinct = gap > DISTINCT_LEVEL
        if distinct.mean() < self.cfg.changed_area_min:
            return Verdict.no("same")
        to_a = np.abs(th - first).sum(1)[:, distinct]  # (frames, pixels)
        to_b = np.abs(th - last).sum(1)[:, distinct]
        nearest = np.minimum(to_a, to_b) / gap[distinct]
        share_b = median5((to_b < to_a).mean(1))
        moving = np.flatnonzero((share_b > EDGE) & (share_b < 1 - EDGE))
        if len(moving) == 0:
            return Verdict.no("no wipe")
        s, e = int(moving[0]), int(moving[-1]) + 1
        if s < ANCHOR or e > len(th) - ANCHOR:
            return Verdict.no("no plateau")
        if not np.all(np.diff(share_b[s:e]) >= -EDGE):
            return Verdict.no("not monotone")
        # each frame of the wipe: its typical pixel sits on one of the two shots
        if np.percentile(np.median(nearest[s:e], axis=1), 75) > EXPLAINED_SHARE:
            return Verdict.no("blend")
        return Verdict(a + s - 1, a + e + 1)
