"""Score clips against ground truth: contamination, coverage, motion rank correlation.

Truth follows ../shared/data/videos/truth.json: `shots` [start, end) and `transitions`
(a cut at the first frame of the new shot; black/fade/dissolve windows with inclusive
ends). A frame is clean when no transition window holds it.

- contamination: share of clips holding a transition frame or frames of two shots.
- coverage: share of clean frames kept in some clean clip, counted over the clean runs
  (maximal runs of clean frames of one shot) at least `min_run_s` long: the frames a
  perfect detector could keep as clips of at least min_clip_s. Frames kept only in
  contaminated clips do not count (such clips are useless for training);
  `coverage_any` counts them too.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def frame_labels(truth: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: shot number (-1 outside shots) and whether the frame is clean."""
    shot = np.full(n, -1, np.int64)
    for k, s in enumerate(truth["shots"]):
        shot[s["start"] : min(s["end"], n)] = k
    clean = shot >= 0
    for t in truth["transitions"]:
        if t["type"] != "cut":
            clean[t["start"] : t["end"] + 1] = False
    return shot, clean


def clean_runs(shot: np.ndarray, clean: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """Maximal [start, end) runs of clean frames of one shot, at least min_frames long."""
    runs, start = [], None
    n = len(shot)
    for i in range(n + 1):
        ok = i < n and clean[i] and (start is None or shot[i] == shot[start])
        if start is not None and not ok:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
        if i < n and clean[i] and start is None:
            start = i
    return runs


def score_clips(
    truth: dict, clips: list[tuple[int, int]], min_run_s: float = 2.0
) -> dict[str, float]:
    """Contaminated and total clip counts, covered and eligible clean frame counts."""
    n = int(truth["frames"])
    shot, clean = frame_labels(truth, n)
    contaminated = 0
    kept = np.zeros(n, bool)
    kept_any = np.zeros(n, bool)
    for start, end in clips:
        start, end = max(0, start), min(n, end)
        if end <= start:
            continue
        span_shots = shot[start:end]
        kept_any[start:end] = True
        if not clean[start:end].all() or (span_shots != span_shots[0]).any():
            contaminated += 1
        else:
            kept[start:end] = True
    eligible = np.zeros(n, bool)
    for a, b in clean_runs(shot, clean, round(min_run_s * truth["fps"])):
        eligible[a:b] = True
    return {
        "clips": len(clips),
        "contaminated": contaminated,
        "eligible_frames": int(eligible.sum()),
        "covered_frames": int((kept & eligible).sum()),
        "covered_any_frames": int((kept_any & eligible).sum()),
    }


def totals(rows: list[dict[str, float]]) -> dict[str, float]:
    clips = sum(r["clips"] for r in rows)
    eligible = sum(r["eligible_frames"] for r in rows)
    return {
        "clips": clips,
        "contamination": sum(r["contaminated"] for r in rows) / max(1, clips),
        "coverage": sum(r["covered_frames"] for r in rows) / max(1, eligible),
        "coverage_any": sum(r["covered_any_frames"] for r in rows) / max(1, eligible),
    }


def true_speed(truth: dict, start: int, end: int) -> float:
    """Mean true motion (% of diagonal per second) over a clip's frames."""
    speed = truth["frame_speed"]
    return float(np.mean(speed[start : max(start + 1, end - 1)]))


def motion_spearman(pairs: list[tuple[float, float]]) -> float:
    """Spearman rank correlation of (motion_score, true speed) pairs."""
    if len(pairs) < 3:
        return float("nan")
    scores, speeds = np.array(pairs, np.float64).T
    return float(spearmanr(scores, speeds).statistic)
