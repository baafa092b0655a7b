"""Black runs and fades, from per-frame luma energy, each with a known reach.

- Black and uniform frames: 95% of luma below `black_luma`, or nearly no contrast; and
  the bottom of a fade that never reaches black, a frame much darker than the frames on
  both sides (`DarkCheck`).
- Fades: a fade scales the picture towards black, so its luma energy (RMS distance from
  black) falls linearly; the fade spans the frames below (1 - edge_eps) of the shot's own
  level, extrapolated to where the line reaches the shot's level (`FadeCheck`).
"""

from __future__ import annotations

import math

import numpy as np

from curate.config import ShotConfig
from curate.pixel_measures import median5

MIN_FADE_FRAMES = 3  # a shorter search cannot tell a fade from noise
LONGER_SEARCH = 2  # a fade still brightening past its end is searched this many times as far
STILL_RISING = 0.5  # ...when the frames past it brighten at this share of its own rate


class DarkCheck:
    """Black, uniform or dipped frames. Settings: flat_std, dip_window_s, dip_luma,
    dip_ratio (ShotConfig); black frames themselves are flagged by curate.signals."""

    def __init__(self, fps: float, cfg: ShotConfig):
        self.cfg = cfg
        self.window = max(1, round(cfg.dip_window_s * fps))
        self.reach = self.window  # frames of energy read on each side of a frame

    def flags(self, dark, luma_std, energy, lo: int, hi: int) -> np.ndarray:
        """Flags for frames [lo, hi); needs energy over [lo - reach, hi + reach]."""
        cfg, win = self.cfg, self.window
        flags = (dark[lo:hi] > 0) | (luma_std[lo:hi] < cfg.flat_std)
        a, b = max(0, lo - win), min(len(energy), hi + win)
        # A median over 5 frames keeps a flash from passing for the bright side of a dip.
        smooth = median5(energy[a:b])
        for t in np.flatnonzero(energy[lo:hi] <= cfg.dip_luma) + lo:
            left = smooth[max(0, t - win - a) : t - a + 1].max()
            right = smooth[t - a : t + win - a + 1].max()
            if energy[t] < cfg.dip_ratio * min(left, right):
                flags[t - lo] = True
        return flags


class FadeCheck:
    """Fades next to dark frames and running into cuts. Settings: fade_max_s (how far
    it searches), fade_reference, edge_eps, cut_fade_ratio (ShotConfig)."""

    def __init__(self, fps: float, cfg: ShotConfig):
        self.cfg = cfg
        self.limit = max(MIN_FADE_FRAMES, round(cfg.fade_max_s * fps))  # frames searched
        # A fade found from frame s ends at most this many frames from s: the longer
        # search, plus the extrapolation of its line from (1 - eps) of the level to it.
        eps = cfg.edge_eps
        longest = LONGER_SEARCH * self.limit
        self.reach = longest + math.ceil(eps / (1 - eps) * longest)

    def extent(self, energy: np.ndarray, s: int, step: int) -> int | None:
        """The far end of a fade that starts at frame s next to the dark side.

        step -1: a fade-out ending at s (searched backwards); +1: a fade-in starting at
        s. Returns the fade's last frame in the search direction (inclusive), or None
        when s is already at the shot's own level (no fade).

        The shot's level is read over the search; a fade longer than about two thirds
        of it leaves the level too low, and the frames past the end found still
        brighten at the fade's rate: then the search is made again, LONGER_SEARCH times
        as far.
        """
        far = self._extent(energy, s, step, self.limit)
        if far is None or abs(far - s) < MIN_FADE_FRAMES:
            return far
        k = abs(far - s) + 1
        beyond = np.arange(far + step, far + step * (1 + max(MIN_FADE_FRAMES, k // 2)), step)
        beyond = beyond[(beyond >= 0) & (beyond < len(energy))]
        if len(beyond) < MIN_FADE_FRAMES:
            return far
        ramp = energy[np.arange(s, far + step, step)]
        rising = np.polyfit(np.arange(len(beyond)), energy[beyond], 1)[0]
        if rising > STILL_RISING * np.polyfit(np.arange(k), ramp, 1)[0] > 0:
            return self._extent(energy, s, step, LONGER_SEARCH * self.limit)
        return far

    def _extent(self, energy: np.ndarray, s: int, step: int, limit: int) -> int | None:
        cfg = self.cfg
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
        # The fade climbs to (1 - eps) of the level in k frames; its line reaches the
        # level itself eps / (1 - eps) of that further.
        last = k - 1 + int(np.ceil(cfg.edge_eps / (1 - cfg.edge_eps) * k))
        return int(np.clip(s + step * last, 0, len(energy) - 1))

    def at_cut(self, energy: np.ndarray, c: int) -> list[tuple[int, int]]:
        """Fades running into (out of) a hard cut at c, as [start, end) frame ranges."""
        out = []
        for s, step in ((c - 1, -1), (c, 1)):
            idx = np.arange(s, s + step * self.limit, step)
            idx = idx[(idx >= 0) & (idx < len(energy))]
            if len(idx) < 3:
                continue
            shot_level = np.percentile(energy[idx], self.cfg.fade_reference)
            if energy[s] < self.cfg.cut_fade_ratio * shot_level:
                far = self.extent(energy, s, step)
                if far is not None:
                    out.append((min(s, far), max(s, far) + 1))
        return out
