"""PySceneDetect detectors run as a cascade over frames already decoded.

Stable Video Diffusion cut its raw videos with PySceneDetect at several frame rates: a
detector that sees frames a second apart finds a dissolve as abruptly as one that sees
every frame finds a cut. Here each detector is driven through PySceneDetect's per-frame
API (`SceneDetector.process_frame(timecode, bgr)`) on tiny BGR thumbnails of frames
sampled at its own stride, so the cascade costs a small fraction of decoding:

- AdaptiveDetector at about `adaptive_fps`: proposes hard cuts (its rolling-average
  threshold already ignores steady fast motion); the cut lies between the proposing
  sample and the one before it.
- ContentDetector at about `content_fps` and at `coarse_fps`, with lowered thresholds:
  proposes gradual transitions around the sample pair it flags.

Proposals are only proposals: the transition checks verify each one on the per-frame
signals and finds its exact frames. Detectors run with min_scene_len=0 so none is
suppressed before verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode, SceneDetector

from curate.config import ShotConfig
from curate.frame_rate import known_fps
from curate.signals import Growing


@dataclass
class Level:
    name: str  # key of its per-frame scores
    role: str  # "cut" or "gradual"
    stride: int  # frames between samples
    detector: SceneDetector
    proposals: list[int] = field(default_factory=list)  # frames of flagged samples
    scores: Growing = field(default_factory=Growing)  # content_val at sampled frames


def _stride(fps: float, rate: float) -> int:
    return max(1, round(fps / rate))


class DetectorCascade:
    """Feed `push(index, bgr)` for frames where `wants(index)`; read `levels[*].proposals`."""

    def __init__(self, fps: float, cfg: ShotConfig):
        fps = known_fps(fps)
        self.levels = [
            Level(
                "psd_adaptive",
                "cut",
                _stride(fps, cfg.adaptive_fps),
                AdaptiveDetector(
                    adaptive_threshold=cfg.adaptive_threshold,
                    min_scene_len=0,
                    window_width=2,
                    min_content_val=cfg.adaptive_min_content,
                ),
            ),
            Level(
                "psd_content",
                "gradual",
                _stride(fps, cfg.content_fps),
                ContentDetector(threshold=cfg.content_threshold, min_scene_len=0),
            ),
            Level(
                "psd_coarse",
                "gradual",
                _stride(fps, cfg.coarse_fps),
                ContentDetector(threshold=cfg.coarse_threshold, min_scene_len=0),
            ),
        ]
        self.fps = fps
        self._strides = sorted({lv.stride for lv in self.levels})
        # How far behind the newest frame a proposal can land: a detector reports a
        # change `event_buffer_length` samples after it (PySceneDetect's own figure),
        # and the change lies within a stride before the flagged sample.
        self.reach = max((lv.detector.event_buffer_length + 1) * lv.stride for lv in self.levels)

    def wants(self, index: int) -> bool:
        return any(index % s == 0 for s in self._strides)

    def push(self, index: int, bgr: np.ndarray) -> None:
        timecode = FrameTimecode(index, fps=self.fps)
        for lv in self.levels:
            if index % lv.stride:
                continue
            for cut in lv.detector.process_frame(timecode, bgr):
                lv.proposals.append(int(cut.frame_num))
            # content_val of this sample (ContentDetector keeps it in `_frame_score`).
            score = getattr(lv.detector, "_frame_score", None)
            if score is not None:
                lv.scores.set(index, np.array([score], np.float32))

    def arrays(self, n: int) -> dict[str, np.ndarray]:
        """Per-frame content scores of each level (NaN at frames a level did not sample)."""
        out = {}
        for lv in self.levels:
            v = np.full(n, np.nan, np.float32)
            m = min(n, lv.scores.size)
            v[:m] = lv.scores.values[:m]
            out[lv.name] = v
        return out


def thumb_bgr(thumb_yuv: np.ndarray) -> np.ndarray:
    """(3, h, w) Y, U, V thumbnail -> (h, w, 3) BGR, what PySceneDetect detectors eat."""
    return cv2.cvtColor(cv2.merge(list(thumb_yuv)), cv2.COLOR_YUV2BGR)
