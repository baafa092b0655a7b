"""Is there a dissolve (or another gradual transition) around frame c, and where?

Between two anchors a second or so before and after a proposal, each frame's colour
histogram is projected on the line from the first anchor's to the second's, which
measures how far the picture has gone from one shot to the other (histograms ignore
motion). A dissolve is a clean ramp of that projection between two plateaus, whose
frames lose contrast (mixing two unrelated images lowers the variance: Alattar's
variance dip), over most of the frame (not a caption fading in), and whose frames blend
in place rather than move (a whip pan's blur lowers contrast too). Between two shots of
the same colours the histograms cannot tell them apart, and the thumbnails' pixels take
their place, compared up to a small shift so a slow pan stays with its shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.config import ShotConfig
from curate.pixel_measures import ANCHOR, median5, moving_share, pixel_progress, slope
from curate.signals import FrameSignals
from curate.verdict import Verdict

# A ramp read from pixels must change this many times faster (its median frame) than
# the shots around it. Measured: dissolves between panning shots of the same colours
# (tests) 1.15-1.3; fast pans and a whip pan inside one shot (benchmark corpora) 0.83-0.97.
PIXEL_RAMP_FASTER = 1.05
# A moving shot strays up to ~10% from its own anchor frames (whole-pixel shifts of
# strided thumbnails), so a pixel ramp's edges are read this far in.
PIXEL_EDGE_EPS = 0.1
MIN_PLATEAU_FRAMES = 3  # fewer frames cannot show a shot holding still
RECENTRE_FRAMES = 2  # a ramp centred further than this from its proposal is looked at again
CHANGED_LEVEL = 12  # luma levels (0-255) a thumbnail pixel must change by to count as changed
EXTEND_SHARE = 1 / 3  # frames changing by this share of the ramp's change belong to it
STILL_FACTOR, STILL_FLOOR = 2.0, 0.5  # a shot is still when the ramp changes more than this


class Rejected(Exception):
    """No gradual transition here; the reason is one word or two."""


@dataclass
class Ramp:
    a: int  # window [a, b], inclusive
    b: int
    progress: np.ndarray  # per frame of the window, 0 at the first shot, 1 at the second
    left: int  # window offsets of the first and last frame between eps and 1 - eps
    right: int
    eps: float
    pixels: bool  # progress read from pixels (shots of the same colours), not histograms

    def plateau(self, side: str) -> tuple[int, float]:
        """Frames held on that side, and their drift as a share of the ramp's rate."""
        rate = (1 - 2 * self.eps) / (self.right - self.left + 1)
        held = self.progress[: self.left] if side == "before" else self.progress[self.right + 1 :]
        return len(held), slope(held) / rate


class DissolveCheck:
    """Settings from ShotConfig: dissolve_window_s, mix_min, edge_eps, plateau_s,
    drift_ratio, dissolve_dip_max, changed_area_min, moving_max, cut_min_diff (the
    pixel path's "same picture"); and the module's constants above."""

    def __init__(self, fps: float, cfg: ShotConfig):
        self.cfg = cfg
        self.half = round(cfg.dissolve_window_s * fps)  # window frames on each side
        self.plateau_frames = max(MIN_PLATEAU_FRAMES, round(cfg.plateau_s * fps))
        # A window re-centred on its ramp lies up to `half` from the proposal, so an
        # answer reaches up to two half windows from the proposed frame on either side.
        self.reach = 2 * self.half

    def check(self, sig: FrameSignals, diff, luma_std, c: int, lo: int, hi: int,
              open_lo: bool = False, open_hi: bool = False) -> Verdict:  # fmt: skip
        """[start, end) of a gradual transition around frame c, or why there is none.

        lo, hi: the window may not reach past these frames (other transitions). open_lo,
        open_hi: lo (hi) is the edge of a gradual transition, so this one may run
        straight on from it without a plateau between.
        """
        try:
            ramp = self._ramp(sig, luma_std, c, lo, hi)
        except Rejected as e:
            return Verdict.no(str(e))

        def unsteady(r: Ramp) -> str:
            return self._plateau_failure(r, open_lo and r.a == lo, open_hi and r.b == hi)

        why = unsteady(ramp)
        centre = ramp.a + (ramp.left + ramp.right) // 2
        if why and ramp.pixels and abs(centre - c) > RECENTRE_FRAMES:
            # proposed off-centre (the proposals come from colour changes, which these
            # shots lack), a long ramp may leave too little of one shot in the window:
            # look once more, centred on the ramp
            try:
                ramp = self._ramp(sig, luma_std, centre, lo, hi)
            except Rejected:
                return Verdict.no(why)
            why = unsteady(ramp)
        if why:
            return Verdict.no(why)
        m = self._measures(sig, diff, luma_std, ramp)
        if m["changed_area"] < self.cfg.changed_area_min:
            return Verdict.no("local")
        if ramp.pixels and m["faster"] < PIXEL_RAMP_FASTER:
            # a dissolve adds its own change to the shots' motion; a pan that leaves one
            # view for another (all the pixels can tell) changes no faster in its middle
            return Verdict.no("steady change")
        if m["dip"] > self.cfg.dissolve_dip_max:
            return Verdict.no("no dip")
        if moving_share(sig, m["start"], m["end"]) > self.cfg.moving_max:
            return Verdict.no("motion")
        return Verdict(m["start"], m["end"])

    def _plateau_failure(self, ramp: Ramp, open_lo: bool, open_hi: bool) -> str:
        """Why the shots on either side of the ramp do not hold steady, "" when they do;
        an open side (the edge of another transition) needs no plateau."""
        for side, is_open in (("before", open_lo), ("after", open_hi)):
            held, drift = ramp.plateau(side)
            if held >= self.plateau_frames:
                if drift > self.cfg.drift_ratio:
                    return "drift"
            elif not is_open:
                return "no plateau"
        return ""

    def _ramp(self, sig: FrameSignals, luma_std, c: int, lo: int, hi: int) -> Ramp:
        """The ramp of progress between anchors around c (histograms, else pixels);
        raises Rejected when there is none."""
        cfg = self.cfg
        a, b = max(lo, c - self.half), min(hi, c + self.half)
        if b - a < 4 * ANCHOR:
            raise Rejected("window")
        cdf = sig.cdfs(a, b + 1).reshape(b + 1 - a, -1)
        first = np.median(cdf[:ANCHOR], axis=0)  # medians: a flash at an end is harmless
        span = np.median(cdf[-ANCHOR:], axis=0) - first
        eps = cfg.edge_eps
        pixels = float(np.sqrt(span @ span)) < cfg.mix_min
        if not pixels:
            progress = median5((cdf - first) @ span / float(span @ span))
        else:  # two shots of the same colours (one scene from two angles)
            # The pixel search costs ~50 ms; a window without the variance dip every
            # dissolve has (see _measures) is most often one shot moving: skip it.
            if dip(luma_std[a : b + 1], ANCHOR, b + 1 - a - ANCHOR) > cfg.dissolve_dip_max:
                raise Rejected("no dip")
            progress = pixel_progress(sig.thumbs(a, b + 1), cfg.cut_min_diff)
            if progress is None:
                raise Rejected("same")
            eps = max(eps, PIXEL_EDGE_EPS)
        crossings = np.flatnonzero((progress[:-1] < 0.5) & (progress[1:] >= 0.5)) + 1
        if len(crossings) == 0:
            raise Rejected("no ramp")
        mid = int(crossings[np.argmin(np.abs(crossings - (c - a)))])
        left = mid
        while left > 0 and progress[left - 1] >= eps:
            left -= 1
        right = mid
        while right + 1 < len(progress) and progress[right + 1] <= 1 - eps:
            right += 1
        return Ramp(a, b, progress, left, right, eps, pixels)

    def _measures(self, sig, diff, luma_std, ramp: Ramp) -> dict[str, float]:
        a, b, eps = ramp.a, ramp.b, ramp.eps
        s0, s1 = a + ramp.left, a + ramp.right + 1  # frames between eps and 1 - eps
        # Extend to where the ramp's line leaves 0 and reaches 1.
        ext = int(np.ceil(eps * (s1 - s0) / (1 - 2 * eps)))
        start, end = max(a, s0 - ext), min(b + 1, s1 + ext)
        # Where a shot holds still, every frame of a dissolve changes by about the same
        # amount, far above the shot's own change: extend to all frames that change by a
        # third of that or more (histogram progress is slow to leave 0 when a dim picture
        # is mixed in, and a moving shot fading out slows its change gradually).
        before, inside, after = diff[a + 1 : start], diff[s0:s1], diff[end : b + 1]
        base_a = float(np.median(before)) if len(before) else 0.0
        base_b = float(np.median(after)) if len(after) else 0.0
        level = float(np.percentile(inside, 75))
        if level > STILL_FACTOR * base_a + STILL_FLOOR:
            while start > a + 1 and diff[start - 1] > base_a + (level - base_a) * EXTEND_SHARE:
                start -= 1
        if level > STILL_FACTOR * base_b + STILL_FLOOR:
            while end < b and diff[end] > base_b + (level - base_b) * EXTEND_SHARE:
                end += 1
        th = sig.thumbs(a, b + 1)
        shot_a = np.median(th[:ANCHOR], axis=0)
        shot_b = np.median(th[-ANCHOR:], axis=0)
        return {
            "start": start,
            "end": end,
            # the ramp's typical frame change over the shots' (the median: a whip pan
            # speeds up a few frames of a ramp, a dissolve every one)
            "faster": float(np.median(inside)) / max(base_a, base_b, STILL_FLOOR),
            "changed_area": float((np.abs(shot_a[0] - shot_b[0]) > CHANGED_LEVEL).mean()),
            "dip": dip(luma_std[a : b + 1], start - a, end - a),
        }


def dip(luma_std: np.ndarray, start: int, end: int) -> float:
    """The variance dip over [start, end) of a window: the lowest frame variance there
    over the line between the variances of the frames before and after it. A median
    over 5 frames first: a dissolve's dip is broad, a flash's one or two frames."""
    variance = median5(luma_std.astype(np.float64) ** 2)
    va = np.median(variance[: max(1, start)])
    vb = np.median(variance[min(end, len(variance) - 1) :])
    chord = va + (vb - va) * np.linspace(0, 1, end - start)
    return float((variance[start:end] / np.maximum(chord, 1e-3)).min())
