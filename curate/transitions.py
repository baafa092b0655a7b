"""Find the exact frames of cuts, fades, dissolves and black runs from per-frame signals.

Each function decides about one place in the video from the signals around it
(curate.signals) and returns frame numbers; none decodes or keeps anything.

- Hard cut at frame c (the first frame of the new shot): the frame difference at c is a
  spike against the median difference just before and just after (steady fast motion and
  whip pans are not spikes), and no frame shortly after c matches the frame before it,
  nor any frame shortly before c the frame at c, up to a small shift (that would be a
  flash or something passing in front of the camera).
- Black and uniform frames: 95% of luma below `black_luma`, or nearly no contrast; and
  the bottom of a fade that never reaches black, a frame much darker than the frames on
  both sides.
- Fades: a fade scales the picture towards black, so its luma energy (RMS distance from
  black) falls linearly; the fade spans the frames below (1 - edge_eps) of the shot's own
  level, extrapolated to where the line reaches the shot's level.
- Dissolves: between two anchors a second or so before and after a proposal, each
  frame's colour histogram is projected on the line from the first anchor's to the
  second's, which measures how far the picture has gone from one shot to the other
  (histograms ignore motion). A dissolve is a clean ramp of that projection between two
  plateaus, whose frames lose contrast (mixing two unrelated images lowers the variance:
  Alattar's variance dip), over most of the frame (not a caption fading in), and whose
  frames blend in place rather than move (a whip pan's blur lowers contrast too).
  Between two shots of the same colours the histograms cannot tell them apart, and the
  thumbnails' pixels take their place, compared up to a small shift so a slow pan stays
  with its shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.config import ShotConfig
from curate.signals import FrameSignals

_ANCHOR = 5  # frames whose median stands for each shot at a dissolve window's ends
# A ramp read from pixels must change this many times faster (its median frame) than
# the shots around it. Measured: dissolves between panning shots of the same colours
# (tests) 1.15-1.3; fast pans and a whip pan inside one shot (benchmark corpora) 0.83-0.97.
_PIXEL_RAMP_FASTER = 1.05


def spike_frames(diff: np.ndarray, lo: int, hi: int, fps: float, cfg: ShotConfig) -> list[int]:
    """Frames c in [lo, hi) whose difference to the previous frame is a spike.

    Needs diff over [lo - w, hi + w], w about 0.2 s.
    """
    w = max(2, round(0.2 * fps))
    lo = max(1, lo)
    out = []
    for c in np.flatnonzero(diff[lo:hi] >= cfg.cut_min_diff) + lo:
        left = np.median(diff[max(1, c - w) : c]) if c > 1 else 0.0
        right = np.median(diff[c + 1 : c + 1 + w]) if c + 1 < len(diff) else 0.0
        if diff[c] >= cfg.cut_ratio * max(left, right) + cfg.cut_offset:
            out.append(int(c))
    return out


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


def is_flash(sig: FrameSignals, c: int, fps: float, cfg: ShotConfig) -> bool:
    """Whether the change at c is undone within flash_window_s (a flash, an occlusion).

    Needs thumbnails over [c - 1 - F, c + F], F = flash_window_s.
    """
    span = max(2, round(cfg.flash_window_s * fps))
    lo = max(sig.oldest(), c - 1 - span)
    hi = min(sig.pushed, c + 1 + span)
    th = sig.thumbs(lo, hi)
    before, after = th[c - 1 - lo], th[c - lo]
    change = shift_distances(before, after[None])[0]
    later = shift_distances(before, th[c + 1 - lo :]) if hi > c + 1 else np.array([np.inf])
    earlier = shift_distances(after, th[: c - 1 - lo]) if c - 1 > lo else np.array([np.inf])
    return bool(min(later.min(), earlier.min()) < cfg.flash_ratio * change)


def dark_frames(
    dark: np.ndarray,
    luma_std: np.ndarray,
    energy: np.ndarray,
    lo: int,
    hi: int,
    fps: float,
    cfg: ShotConfig,
) -> np.ndarray:
    """Black, uniform or dipped (bottom of a fade) flags for frames [lo, hi).

    Needs energy over [lo - W, hi + W], W = dip_window_s.
    """
    flags = (dark[lo:hi] > 0) | (luma_std[lo:hi] < cfg.flat_std)
    win = max(1, round(cfg.dip_window_s * fps))
    a, b = max(0, lo - win), min(len(energy), hi + win)
    # A median over 5 frames keeps a flash from passing for the bright side of a dip.
    smooth = median5(energy[a:b])
    for t in np.flatnonzero(energy[lo:hi] <= cfg.dip_luma) + lo:
        left = smooth[max(0, t - win - a) : t - a + 1].max()
        right = smooth[t - a : t + win - a + 1].max()
        if energy[t] < cfg.dip_ratio * min(left, right):
            flags[t - lo] = True
    return flags


def fade_extent(energy: np.ndarray, s: int, step: int, limit: int, cfg: ShotConfig) -> int | None:
    """The far end of a fade that starts at frame s next to the dark side.

    step -1: a fade-out ending at s (searched backwards); +1: a fade-in starting at s.
    Returns the fade's last frame in the search direction (inclusive), or None when s is
    already at the shot's own level (no fade). Needs energy over `limit` frames from s.
    """
    idx = np.arange(s, s + step * limit, step)
    idx = idx[(idx >= 0) & (idx < len(energy))]
    if len(idx) < 3:
        return int(idx[-1]) if len(idx) else None
    e = energy[idx]
    level = np.percentile(e, cfg.fade_reference)
    if level <= 0:
        return None
    back = np.flatnonzero(e >= (1 - cfg.edge_eps) * level)
    if len(back) == 0:
        return int(idx[-1])
    k = int(back[0])  # frames 0..k-1 from s are below the shot's level: the fade
    if k == 0:
        return None
    # The fade climbs to (1 - eps) of the level in k frames; its line reaches the level
    # itself eps / (1 - eps) of that further.
    last = k - 1 + int(np.ceil(cfg.edge_eps / (1 - cfg.edge_eps) * k))
    return int(np.clip(s + step * last, 0, len(energy) - 1))


def fades_at_cut(energy: np.ndarray, c: int, limit: int, cfg: ShotConfig) -> list[tuple[int, int]]:
    """Fades running into (out of) a hard cut at c, as [start, end) frame ranges."""
    out = []
    for s, step in ((c - 1, -1), (c, 1)):
        idx = np.arange(s, s + step * limit, step)
        idx = idx[(idx >= 0) & (idx < len(energy))]
        if len(idx) < 3:
            continue
        if energy[s] < cfg.cut_fade_ratio * np.percentile(energy[idx], cfg.fade_reference):
            far = fade_extent(energy, s, step, limit, cfg)
            if far is not None:
                out.append((min(s, far), max(s, far) + 1))
    return out


def dissolve_extent(
    sig: FrameSignals,
    diff: np.ndarray,
    luma_std: np.ndarray,
    c: int,
    lo: int,
    hi: int,
    fps: float,
    cfg: ShotConfig,
    open_lo: bool = False,
    open_hi: bool = False,
) -> tuple[int, int] | str:
    """[start, end) of a gradual transition around frame c, or why there is none.

    lo, hi: the window may not reach past these frames (other transitions). open_lo,
    open_hi: lo (hi) is the edge of a gradual transition, so this one may run straight
    on from it without a plateau between. Needs histograms and thumbnails over
    [c - W, c + W], W = dissolve_window_s.
    """
    ramp = _ramp(sig, luma_std, c, lo, hi, fps, cfg)
    if isinstance(ramp, str):
        return ramp

    def unsteady(r: _Ramp) -> str:
        return _plateau_failure(r, fps, cfg, open_lo and r.a == lo, open_hi and r.b == hi)

    why = unsteady(ramp)
    centre = ramp.a + (ramp.left + ramp.right) // 2
    if why and ramp.pixels and abs(centre - c) > 2:
        # proposed off-centre (the proposals come from colour changes, which these
        # shots lack), a long ramp may leave too little of one shot in the window: look
        # once more, centred on the ramp
        ramp = _ramp(sig, luma_std, centre, lo, hi, fps, cfg)
        if isinstance(ramp, str):
            return why
        why = unsteady(ramp)
    if why:
        return why
    m = _ramp_measures(sig, diff, luma_std, ramp, cfg)
    if m["changed_area"] < cfg.changed_area_min:
        return "local"
    if ramp.pixels and m["faster"] < _PIXEL_RAMP_FASTER:
        # a dissolve adds its own change to the shots' motion; a pan that leaves one
        # view for another (all the pixels can tell) changes no faster in its middle
        return "steady change"
    if m["dip"] > cfg.dissolve_dip_max:
        return "no dip"
    if moving_share(sig, m["start"], m["end"]) > cfg.moving_max:
        return "motion"
    return m["start"], m["end"]


def _plateau_failure(ramp: _Ramp, fps: float, cfg: ShotConfig, open_lo: bool, open_hi: bool) -> str:
    """Why the shots on either side of the ramp do not hold steady, "" when they do; an
    open side (the edge of another transition) needs no plateau."""
    plateau = max(3, round(cfg.plateau_s * fps))
    for side, is_open in (("before", open_lo), ("after", open_hi)):
        held, drift = ramp.plateau(side)
        if held >= plateau:
            if drift > cfg.drift_ratio:
                return "drift"
        elif not is_open:
            return "no plateau"
    return ""


@dataclass
class _Ramp:
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
        return len(held), _slope(held) / rate


def _ramp(
    sig: FrameSignals, luma_std: np.ndarray, c: int, lo: int, hi: int, fps: float, cfg: ShotConfig
):
    """The ramp of progress between anchors around c (histograms, else pixels), or why
    there is none."""
    half = round(cfg.dissolve_window_s * fps)
    a, b = max(lo, c - half), min(hi, c + half)
    if b - a < 4 * _ANCHOR:
        return "window"
    cdf = sig.cdfs(a, b + 1).reshape(b + 1 - a, -1)
    first, span = _anchors(cdf)
    eps = cfg.edge_eps
    pixels = float(np.sqrt(span @ span)) < cfg.mix_min
    if not pixels:
        progress = median5((cdf - first) @ span / float(span @ span))
    else:  # two shots of the same colours (one scene from two angles)
        # The pixel search costs ~50 ms; a window without the variance dip every
        # dissolve has (see _ramp_measures) is most often one shot moving: skip it.
        if _dip(luma_std[a : b + 1], _ANCHOR, b + 1 - a - _ANCHOR) > cfg.dissolve_dip_max:
            return "no dip"
        progress = pixel_progress(sig.thumbs(a, b + 1), cfg.cut_min_diff)
        if isinstance(progress, str):
            return progress
        # a moving shot strays up to ~10% from its own anchor frames (whole-pixel shifts
        # of strided thumbnails), so the ramp's edges are read further in
        eps = max(eps, 0.1)
    crossings = np.flatnonzero((progress[:-1] < 0.5) & (progress[1:] >= 0.5)) + 1
    if len(crossings) == 0:
        return "no ramp"
    mid = int(crossings[np.argmin(np.abs(crossings - (c - a)))])
    left = mid
    while left > 0 and progress[left - 1] >= eps:
        left -= 1
    right = mid
    while right + 1 < len(progress) and progress[right + 1] <= 1 - eps:
        right += 1
    return _Ramp(a, b, progress, left, right, eps, pixels)


def pixel_progress(thumbs: np.ndarray, min_change: float, radius: int = 4) -> np.ndarray | str:
    """How far each thumbnail (k, 3, h, w) has gone from the first shot to the second,
    from its pixels, or why that is no dissolve.

    Progress is a frame's distance to the first shot over the sum of its distances to
    both: a blend (1 - a) A + a B lies a |A - B| from A and (1 - a) |A - B| from B, so
    this is a. A distance to a shot is the smallest to any of its anchor frames (a flash
    in one is harmless) over shifts of up to `radius` pixels (a slow pan stays near its
    own shot).
    """
    thumbs = _blur(thumbs)  # the strided thumbnails alias: a pan's shifts are not whole
    first, last = np.median(thumbs[:_ANCHOR], 0), np.median(thumbs[-_ANCHOR:], 0)
    if shift_distances(first, last[None], radius)[0] < min_change:
        return "same"  # one picture, or one shot panning slowly
    # every other frame, interpolated between: the search is the cost, a blend is smooth
    n = len(thumbs)
    some = np.unique(np.r_[np.arange(0, n, 2), n - 1])
    sampled = thumbs[some]
    to_first = np.min([shift_distances(f, sampled, radius) for f in thumbs[:_ANCHOR:2]], 0)
    to_last = np.min([shift_distances(f, sampled, radius) for f in thumbs[-_ANCHOR::2]], 0)
    progress = to_first / np.maximum(to_first + to_last, 1e-6)
    return median5(np.interp(np.arange(n), some, progress))


def _blur(x: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 along both image axes of (..., h, w), twice, edges repeated."""
    x = x.astype(np.float32)
    for axis in (-2, -1, -2, -1):
        y = np.moveaxis(x, axis, 0)
        p = np.concatenate([y[:1], y, y[-1:]])
        x = np.moveaxis((p[:-2] + 2 * p[1:-1] + p[2:]) / 4, 0, axis)
    return x


def _anchors(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first shot's features and the step to the second's, each the median of a few
    frames at a window's end (so a flash there is harmless)."""
    first = np.median(feats[:_ANCHOR], axis=0)
    return first, np.median(feats[-_ANCHOR:], axis=0) - first


def _ramp_measures(sig, diff, luma_std, ramp: _Ramp, cfg: ShotConfig) -> dict[str, float]:
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
    if level > 2 * base_a + 0.5:
        while start > a + 1 and diff[start - 1] > base_a + (level - base_a) / 3:
            start -= 1
    if level > 2 * base_b + 0.5:
        while end < b and diff[end] > base_b + (level - base_b) / 3:
            end += 1
    dip = _dip(luma_std[a : b + 1], start - a, end - a)
    th = sig.thumbs(a, b + 1)
    shot_a = np.median(th[:_ANCHOR], axis=0)
    shot_b = np.median(th[-_ANCHOR:], axis=0)
    return {
        "start": start,
        "end": end,
        # the ramp's typical frame change over the shots' (the median: a whip pan
        # speeds up a few frames of a ramp, a dissolve every one)
        "faster": float(np.median(inside)) / max(base_a, base_b, 0.5),
        "changed_area": float((np.abs(shot_a[0] - shot_b[0]) > 12).mean()),
        "dip": float(dip),
    }


def _dip(luma_std: np.ndarray, start: int, end: int) -> float:
    """The variance dip over [start, end) of a window: the lowest frame variance there
    over the line between the variances of the frames before and after it. A median
    over 5 frames first: a dissolve's dip is broad, a flash's one or two frames."""
    variance = median5(luma_std.astype(np.float64) ** 2)
    va = np.median(variance[: max(1, start)])
    vb = np.median(variance[min(end, len(variance) - 1) :])
    chord = va + (vb - va) * np.linspace(0, 1, end - start)
    return float((variance[start:end] / np.maximum(chord, 1e-3)).min())


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
        moving += bool(np.abs(pb - pa).mean() < 0.6 * still)
    return moving / (n - 1)


def median5(x: np.ndarray) -> np.ndarray:
    """Running median over 5 samples, edges repeated (removes 1-2 sample spikes)."""
    padded = np.pad(np.asarray(x, np.float64), 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)


def _slope(v: np.ndarray) -> float:
    if len(v) < 2:
        return 0.0
    return abs(float(np.polyfit(np.arange(len(v)), v, 1)[0]))
