"""Is there a wipe around frame c (an iris, a bar, any shape), and where?

A wipe replaces one shot by the next region by region: every frame of it shows, at each
pixel, either the first shot or the second, and the share showing the second grows from
0 to 1. A dissolve mixes both at every pixel (each pixel is halfway between them in its
middle), a pan shows neither; so a frame is explained as a wipe frame when nearly every
pixel lies close to one of the two shots. Read on the thumbnails between the same
anchors the dissolve check uses; both shots must hold still, so that their anchor frames
stand for them (an old film's iris, a title card pushed off): a wipe between moving
shots is not found here (TransNetV2's level marks many of them).
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
# Three quarters of a wipe frame's pixels lie this close to one shot, as a share of the
# shots' difference (a dissolve's middle frame lies halfway: 0.5; measured: an iris
# wipe 0.08 at most, a pan and a whip pan 0.3 and more).
EXPLAINED_SHARE = 0.15
EDGE = 0.03  # a frame whose share of the second shot is within this of 0 or 1 is that shot
CORE = 0.1  # the frames between this share and 1 - this of the way are the wipe's core
MIN_CORE_FRAMES = 3
STILL_SHARE = 0.1  # a shot's anchor frames differ by less than this share of the shots' gap


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
        raw = sig.thumbs(a, b + 1)
        ends = blur(np.concatenate([raw[:ANCHOR], raw[-ANCHOR:]]))
        first, last = np.median(ends[:ANCHOR], 0), np.median(ends[ANCHOR:], 0)
        gap = np.abs(first - last).sum(0)  # (h, w)
        distinct = gap > DISTINCT_LEVEL
        if distinct.mean() < self.cfg.changed_area_min:
            return Verdict.no("same")
        # both shots hold still: a pan also brings new pixels in from one side
        spread = max(
            np.abs(ends[:ANCHOR] - first).sum(1)[:, distinct].mean(),
            np.abs(ends[ANCHOR:] - last).sum(1)[:, distinct].mean(),
        )
        if spread > STILL_SHARE * gap[distinct].mean():
            return Verdict.no("moving")
        th = blur(raw)
        to_a = np.abs(th - first).sum(1)[:, distinct]  # (frames, pixels)
        to_b = np.abs(th - last).sum(1)[:, distinct]
        nearest = np.minimum(to_a, to_b) / gap[distinct]
        share_b = median5((to_b < to_a).mean(1))
        # the shares each shot's own frames show (a pixel or two of noise either way)
        low, high = np.median(share_b[:ANCHOR]), np.median(share_b[-ANCHOR:])
        if high - low < 1 - 4 * EDGE:
            return Verdict.no("no wipe")
        moving = np.flatnonzero((share_b > low + EDGE) & (share_b < high - EDGE))
        if len(moving) == 0:
            return Verdict.no("no wipe")
        s, e = int(moving[0]), int(moving[-1]) + 1
        if s < ANCHOR or e > len(th) - ANCHOR:
            return Verdict.no("no plateau")
        if not np.all(np.diff(share_b[s:e]) >= -EDGE):
            return Verdict.no("not monotone")
        # every frame of its core (a tenth of the way in from either shot): most of its
        # pixels sit on one of the two shots
        margin = CORE * (high - low)
        core = (share_b >= low + margin) & (share_b <= high - margin)
        if core.sum() < MIN_CORE_FRAMES:  # a blend turns every pixel over at once
            return Verdict.no("abrupt")
        if np.percentile(nearest[core], 75, axis=1).max() > EXPLAINED_SHARE:
            return Verdict.no("blend")
        return Verdict(a + s - 1, a + e + 1)
