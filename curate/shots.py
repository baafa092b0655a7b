"""Cascaded shot detection over one pass of frames, with bounded lookahead.

`ShotTracker` eats decoded frames one at a time and hands back the clean stretches of
shots (`Segment`) as soon as their ends are certain. Per frame it only copies a tiny
thumbnail (curate.signals) and, at the cascade's strides, feeds PySceneDetect detectors
(curate.cascade). Every block of frames it runs four stages over the frames that now
have enough signal after them:

1. cuts: each PySceneDetect proposal is pinned to the frame of largest change in the
   sampled interval; with every frame ContentDetector's default threshold would cut at,
   it is kept if the cut check says it is a cut (not a flash, not a camera move);
2. dark: black, uniform and dipped frames, merged into runs;
3. fades next to dark runs and running into cuts;
4. dissolves: histogram-lag peaks and the coarse detectors' proposals not explained by
   the above, clustered, strongest first, verified by the dissolve check.

Each check is a small class (curate/cut_check.py, fade_check.py, dissolve_check.py) that
holds its settings and says how far from the place it decides about it reads and its
answer can land (`reach`); the tracker's lookahead is derived from those reaches, never
from a margin of its own. Stages 1-3 run `ahead` frames behind the newest frame, stage 4
runs `behind` frames behind them (a fade found later may still reach back into its
windows), and a frame is final once no pending decision can land on it (about 17 s
behind the newest frame with the defaults, most of it the search for a fade of up to
6 s). Thumbnails and histograms are held only for that span.

Segments become clips in curate.segments.
"""

from __future__ import annotations

import math

import numpy as np
from scenedetect import FrameTimecode

from curate.cascade import DetectorCascade, thumb_bgr
from curate.config import ShotConfig
from curate.cut_check import CutCheck
from curate.dissolve_check import DissolveCheck
from curate.fade_check import DarkCheck, FadeCheck
from curate.frame_rate import known_fps
from curate.segments import Boundary, Segment
from curate.signals import FrameSignals
from curate.transnet import TransNetLevel, resolve_device, rgb_frame
from curate.wipe_check import WipeCheck

# Analysis windows are sized in frames at the video's rate, up to this one.
MAX_ANALYSIS_FPS = 240.0
# A gradual candidate this close to a boundary already found is that boundary's edge.
NEAR_BOUNDARY = 2


class ShotTracker:
    """push(index, y, u, v) every frame in order, then finish(); both return Segments."""

    def __init__(self, fps: float, cfg: ShotConfig, block: int = 64):
        # Windows are counted in frames at this rate: a broken one (metadata claiming
        # thousands of fps) must not size huge buffers.
        self.fps = min(known_fps(fps), MAX_ANALYSIS_FPS)
        self.cfg = cfg
        f = self.fps
        self.cut = CutCheck(f, cfg)
        self.dark = DarkCheck(f, cfg)
        self.fade = FadeCheck(f, cfg)
        self.dissolve = DissolveCheck(f, cfg)
        self.wipe = WipeCheck(self.dissolve.half, cfg)
        self.cascade = DetectorCascade(f, cfg)
        lags = {max(1, round(s * f)): s for s in sorted(cfg.hist_lags_s, reverse=True)}
        self.lags = tuple(sorted(lags))
        self._lag_seconds = tuple(lags[k] for k in self.lags)
        # The lookahead comes from the checks' reaches (frames from the place decided
        # about to the farthest frame a check reads or an answer lands on):
        # - stages 1-3 decide about frame t once every frame they read after t is in,
        #   and once the cascade can no longer propose a cut before t;
        # - stage 4 decides about candidate c once stages 1-3 are done for its window and
        #   have searched a fade's length beyond it. A fade found later may still reach
        #   back into that window; it is not awaited (the dissolve check was tuned on
        #   what stages 1-3 know by then), but the segments wait for it (`_advance`).
        device = resolve_device(cfg.transnetv2)
        self.learned = (
            TransNetLevel(device, cfg.transnetv2_batch, cfg.transnetv2_threshold)
            if device
            else None
        )
        reaches = [self.cut.reach, self.dark.reach, self.fade.reach, self.cascade.reach]
        if self.learned is not None:
            reaches.append(self.learned.reach + self.cut.reach)
        self.ahead = max(reaches)
        self._gradual_trim_max = round(cfg.trim_max_s * f)
        self.max_trim = max(cfg.trim_frames, cfg.cut_trim_frames, self._gradual_trim_max)
        self.behind = self.dissolve.half + self.fade.limit
        history = self.ahead + self.behind + self.dissolve.reach + 2 * max(self.lags) + block
        self.signals = FrameSignals(cfg.thumb_short_side, self.lags, history, cfg.black_luma, block)
        self.boundaries: list[Boundary] = []  # found, not yet turned into segments
        self.found: list[Boundary] = []  # every boundary found (a few per shot)
        self._p = 0  # stages 1-3 done for anchors < _p
        self._d = 0  # stage 4 done for candidates < _d
        self._dark_start: int | None = None
        # candidate frame -> whether a detector cut there by its own threshold
        self._cut_candidates: dict[int, bool] = {}
        self._learned_gradual: list[tuple[int, int]] = []  # its marked runs [lo, hi)
        self._gradual: list[int] = []
        self._cuts: list[int] = []  # verified cuts whose fades are still to be looked for
        self._seg_start = 0
        self._seg_kind = "start"
        self._shot = 0
        self._recent: list[Boundary] = []  # consumed boundaries still near held frames

    # -- input ---------------------------------------------------------------------------

    def push(self, index: int, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> list[Segment]:
        sig = self.signals
        before = sig.count
        sig.push(y, u, v)
        if self.cascade.wants(index):
            self.cascade.push(index, thumb_bgr(sig.thumbs(index, index + 1)[0]))
        if self.learned is not None:
            self.learned.push(rgb_frame(y, u, v))
        return self._advance(final=False) if sig.count != before else []

    def finish(self) -> list[Segment]:
        """Flush everything; returns the remaining segments up to the last frame."""
        self.signals.flush()
        if self.learned is not None:
            self.learned.finish()
        n = self.signals.count
        if n:
            end = FrameTimecode(n - 1, fps=self.fps)
            for lv in self.cascade.levels:
                lv.proposals += [int(t.frame_num) for t in lv.detector.post_process(end)]
            # The detectors report a change only once samples after it came in, so they
            # never see a cut in the video's last `cascade.reach` frames: there every
            # frame whose difference is a spike is a candidate, checked like the rest.
            diff = self.signals.scores["diff"].values
            for c in self.cut.spikes(diff, n - self.cascade.reach, n):
                self._propose(c, voted=False)
        return self._advance(final=True)

    @property
    def latency(self) -> int:
        """Frames between the newest frame and the last final one, at most (decisions
        are taken once a block of frames is in)."""
        trim = self.max_trim
        pending = self.ahead + max(self.fade.reach, self.behind + self.dissolve.reach)
        return pending + trim + self.signals.block

    @property
    def open_start(self) -> int:
        """First frame of the segment still open: nothing before it is needed any more."""
        return self._seg_start

    def frame_scores(self) -> dict[str, np.ndarray]:
        """Per-frame signals by name; histogram lags are named in seconds (hist_0.2s)."""
        n = self.signals.count
        scores = self.signals.arrays()
        for k, seconds in zip(self.lags, self._lag_seconds, strict=True):
            scores[f"hist_{seconds:g}s"] = scores.pop(f"hist_lag{k}")
        scores.update(self.cascade.arrays(n))
        if self.learned is not None:
            scores.update(self.learned.arrays(n))
        return scores

    # -- stages --------------------------------------------------------------------------

    def _advance(self, final: bool) -> list[Segment]:
        n = self.signals.count
        scores = self.signals.scores
        diff = scores["diff"].values
        std = scores["luma_std"].values
        e = scores["energy"].values
        p1 = n if final else max(0, n - self.ahead)
        if p1 > self._p:
            self._cuts_stage(diff, std, self._p, p1, final)
            self._dark_stage(e, std, self._p, p1, n, final)
            self._p = p1
        d1 = n if final else max(0, p1 - self.behind)
        if d1 > self._d:
            self._dissolve_stage(diff, std, self._d, d1, final)
            self._d = d1
        if final:
            settled = n
        else:
            # The lowest frame a decision still pending may land on: a fade reaching back
            # from a later cut or dark run, a black run still open, or a dissolve around
            # a later candidate; then trimmed.
            lowest = min(p1 - self.fade.reach, d1 - self.dissolve.reach)
            if self._dark_start is not None:
                lowest = min(lowest, self._dark_start)
            settled = lowest - self.max_trim
        return self._segments(max(0, settled), n, final)

    def _cuts_stage(self, diff, std, a: int, b: int, final: bool) -> None:
        dark = self.signals.scores["dark"].values
        self._cuts = [c for c in self._cuts if c >= a]  # older ones are settled
        for lv in self.cascade.levels:
            for p in lv.proposals:
                # The change lies between the flagged sample and the one before it.
                lo = max(1, p - lv.stride + 1)
                c = lo + int(np.argmax(diff[lo : p + 1])) if p + 1 > lo else p
                if lv.role == "gradual":
                    self._gradual.append(max(0, p - lv.stride // 2))
                self._propose(c, voted=False)
            lv.proposals.clear()
        # Every frame PySceneDetect's ContentDetector would cut at (its default threshold
        # on the same thumbnails) is a candidate too, fast shots included.
        content = self.signals.scores["content"].values
        for c in np.flatnonzero(content[a:b] >= self.cfg.cut_content_threshold) + a:
            self._propose(int(c), voted=True)
        if self.learned is not None:
            self._learned_stage(diff, final)
        for c in sorted(x for x in self._cut_candidates if x < b):
            voted = self._cut_candidates.pop(c)
            if c < max(a, 1) or c in self._cuts:
                continue
            if not self.cut.check(self.signals, diff, std, dark, c, voted).found:
                continue
            self._cuts.append(c)
            self._add(Boundary(c, c, "cut"))

    def _propose(self, c: int, voted: bool) -> None:
        self._cut_candidates[c] = self._cut_candidates.get(c, False) or voted

    def _learned_stage(self, diff, final: bool) -> None:
        """TransNetV2's new predictions become candidates; the runs it marks as gradual
        are remembered for the fallback."""
        cuts, gradual = self.learned.proposals(diff, self.signals.count, final)
        for c in cuts:
            self._propose(c, voted=True)
        for lo, hi in gradual:
            self._gradual.append((lo + hi) // 2)
        self._learned_gradual += gradual

    def _learned_fallback(self, b: int) -> None:
        """A gradual transition TransNetV2 marked and no check placed (the dissolve check
        cannot read every kind: wipes, dissolves between moving shots of the same
        colours): its marked frames are cut out as they are."""
        known = self.boundaries + self._recent
        for lo, hi in [r for r in self._learned_gradual if r[0] < b]:
            self._learned_gradual.remove((lo, hi))
            if not any(x.start <= hi and lo <= x.end for x in known):
                self._add(Boundary(lo, hi, "dissolve"))

    def _histogram_change(self, c: int) -> bool:
        """Cheap filter for gradual proposals: colour histograms change around c."""
        for k in self.lags:
            w = self.signals.scores[f"hist_lag{k}"].values
            if k <= c < len(w) and w[c] >= self.cfg.hist_peak_min:  # False for NaN
                return True
        return False

    def _dark_stage(self, e, std, a: int, b: int, n: int, final: bool) -> None:
        cfg = self.cfg
        dark = self.signals.scores["dark"].values
        flags = self.dark.flags(dark, std, e, a, b)
        for t, is_dark in zip(range(a, b), flags, strict=True):
            if is_dark and self._dark_start is None:
                self._dark_start = t
                if t > 0:
                    far = self.fade.extent(e, t - 1, -1)
                    if far is not None:
                        self._add(Boundary(far, t, "fade"))
            elif not is_dark and self._dark_start is not None:
                self._close_dark(e, t)
        if final and self._dark_start is not None:
            self._close_dark(e, b)
        for c in [c for c in self._cuts if a <= c < b]:
            for s, t in self.fade.at_cut(e, c):
                beside = c - 1 if t == c else c  # the fade's frame next to the cut
                if not (dark[beside] > 0 or std[beside] < cfg.flat_std):  # black: a run
                    self._add(Boundary(s, t, "fade"))

    def _close_dark(self, e, t: int) -> None:
        self._add(Boundary(self._dark_start, t, "black"))
        self._dark_start = None
        if t < len(e):
            far = self.fade.extent(e, t, 1)
            if far is not None:
                self._add(Boundary(t, far + 1, "fade"))

    def _dissolve_stage(self, diff, std, a: int, b: int, final: bool) -> None:
        sig = self.signals
        lag_scores = [sig.scores[f"hist_lag{k}"].values for k in self.lags]
        for k, w in zip(self.lags, lag_scores, strict=True):
            # Peaks: at least hist_peak_min and the largest within k frames either side.
            lo, hi = max(a, k), min(b, len(w) - k)
            if hi <= lo:
                continue
            around = np.lib.stride_tricks.sliding_window_view(w[lo - k : hi + k], 2 * k + 1)
            peaks = (w[lo:hi] >= self.cfg.hist_peak_min) & (w[lo:hi] >= np.nanmax(around, 1))
            self._gradual.extend(int(c) for c in np.flatnonzero(peaks) + lo)
        pending = sorted(set(self._gradual))
        ready = [c for c in pending if c < b]
        self._gradual = [c for c in pending if c >= b]
        strength = np.zeros(len(ready))
        for w in lag_scores:
            idx = np.array([c for c in ready if c < len(w)], int)
            got = np.nan_to_num(w[idx]) if len(idx) else np.zeros(0)
            strength[: len(idx)] = np.maximum(strength[: len(idx)], got)
        tried: list[int] = []
        near = min(self.lags)  # a candidate this close to one tried sees the same ramp
        for i in np.argsort(-strength, kind="stable"):
            c = ready[i]
            if any(abs(c - t) <= near for t in tried):
                continue
            tried.append(c)
            known = self.boundaries + self._recent
            gap = NEAR_BOUNDARY
            if not self._histogram_change(c) or any(
                x.start - gap <= c < x.end + gap for x in known
            ):
                continue
            before = max((x for x in known if x.end <= c), key=lambda x: x.end, default=None)
            after = min((x for x in known if x.start > c), key=lambda x: x.start, default=None)
            lo = max(before.end if before else 0, sig.oldest())
            hi = min(after.start - 1 if after else sig.count - 1, sig.count - 1)
            # Next to another gradual transition this one may follow on without a pause.
            open_lo = before is not None and before.end == lo and before.kind != "cut"
            open_hi = after is not None and after.start - 1 == hi and after.kind != "cut"
            found = self.dissolve.check(sig, diff, std, c, lo, hi, open_lo, open_hi)
            if not found.found:  # not a blend: one shot may replace the other by regions
                found = self.wipe.check(sig, c, lo, hi)
            if found.found:
                self._add(Boundary(found.start, found.end, "dissolve"))
        if self.learned is not None:
            self._learned_fallback(b)

    def _add(self, b: Boundary) -> None:
        b = Boundary(max(0, b.start), max(b.start, b.end), b.kind)
        self.boundaries.append(b)
        self.found.append(b)

    # -- segments ------------------------------------------------------------------------

    def _trim(self, bd: Boundary) -> int:
        """Frames trimmed on each side of a boundary (shots.trim_* settings)."""
        cfg = self.cfg
        if bd.kind == "cut":
            return cfg.cut_trim_frames
        if bd.kind == "black":
            return cfg.trim_frames
        share = math.ceil(cfg.trim_share * (bd.end - bd.start))
        return max(cfg.trim_frames, min(share, self._gradual_trim_max))

    def _segments(self, settled: int, n: int, final: bool) -> list[Segment]:
        """Turn the boundaries that reach below `settled` into final segments."""
        cfg = self.cfg
        out: list[Segment] = []
        pending = sorted(self.boundaries, key=lambda x: (x.start, x.end))
        keep: list[Boundary] = []
        for bd in pending:
            trim_before = self._trim(bd)
            if bd.start - trim_before >= settled and not final:
                keep.append(bd)
                continue
            self._recent.append(bd)
            end = bd.start - trim_before
            if end > self._seg_start:
                out.append(Segment(self._seg_start, end, self._shot, self._seg_kind, bd.kind))
                self._shot += 1
            trim_after = self._trim(bd)
            if bd.end + trim_after > self._seg_start:
                self._seg_start = bd.end + trim_after
                self._seg_kind = bd.kind
        self.boundaries = keep
        oldest = self.signals.oldest()
        self._recent = [x for x in self._recent if x.end >= oldest - 1]
        if final:
            if n > self._seg_start:
                out.append(Segment(self._seg_start, n, self._shot, self._seg_kind, "end"))
            self._seg_start = n
        else:
            # A long shot still open: hand over max_clip_s pieces, keeping more than one in
            # hand so the rest (whatever the shot's end) can still be split evenly.
            piece = max(1, round(cfg.max_clip_s * self.fps))
            while settled - self._seg_start > 2 * piece:
                s = self._seg_start
                out.append(Segment(s, s + piece, self._shot, self._seg_kind, "split"))
                self._seg_start, self._seg_kind = s + piece, "split"
        return out
