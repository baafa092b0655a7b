"""Per-frame signals for shot detection, computed on tiny frames in blocks.

Every decoded frame contributes a thumbnail of a few hundred pixels, strided from the
analysis planes (Y, U, V at the luma grid; no colour conversion, no resampling). Python
touches each frame only to copy its thumbnail into a block buffer; the signals are then
computed for the whole block at once in numpy:

- luma mean and standard deviation (black, uniform and faded frames; the variance dip
  of a dissolve),
- the mean absolute YUV difference to the previous frame (hard cuts),
- PySceneDetect ContentDetector's score (`content_val`: the mean absolute HSV difference
  to the previous frame, its default weights) on the same thumbnails, for a whole block in
  two colour conversions instead of one detector call per frame (tests check it equals
  the detector's own score),
- per-channel cumulative histograms (32 bins) and, at a few lags k, the Wasserstein-1
  distance between the histograms k frames before and k frames after each frame
  (gradual transitions: histograms ignore motion, which only moves pixels around).

Scalar signals are kept for the whole video (a few floats per frame) so thresholds can be
re-tuned without decoding again; thumbnails and histograms are kept only for the last
`history` frames, which bounds memory whatever the video's length.
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = 32  # histogram bins per channel, 8 levels each
LEVELS_PER_BIN = 256 // BINS


class Growing:
    """A float32 array that grows by appending blocks (amortised doubling)."""

    def __init__(self, fill: float = np.nan):
        self._data = np.full(1024, fill, np.float32)
        self._fill = fill
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        self.reserve(self.size + len(values))
        self._data[self.size : self.size + len(values)] = values
        self.size += len(values)

    def reserve(self, size: int) -> None:
        if size > len(self._data):
            grown = np.full(max(size, 2 * len(self._data)), self._fill, np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown

    def set(self, start: int, values: np.ndarray) -> None:
        """Write values at [start, start + len) (filling later positions as they come)."""
        self.reserve(start + len(values))
        self._data[start : start + len(values)] = values
        self.size = max(self.size, start + len(values))

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]


class FrameSignals:
    """Thumbnails in, per-frame signals out.

    push(planes) per frame; `flush()` computes the pending block (push calls it when the
    block is full). `count` frames have signals. Signals by name in `scores`; thumbnails
    and histograms of recent frames through `thumbs(a, b)` and `cdfs(a, b)`.
    """

    def __init__(
        self,
        thumb_short_side: int,
        lags: tuple[int, ...],
        history: int,
        black_luma: int = 32,
        block: int = 64,
    ):
        self.thumb_short_side = thumb_short_side
        self.lags = tuple(sorted(set(max(1, int(k)) for k in lags)))
        self.history = max(int(history), block + 2 * max(self.lags) + 2)
        self.block = block
        self.black_bin = max(1, black_luma // LEVELS_PER_BIN)
        self.count = 0  # frames whose signals are computed
        self.pushed = 0  # frames pushed
        self._shape: tuple[int, int] = (0, 0)
        self._plane_shape: tuple[int, ...] | None = None
        self._pick: tuple[slice, slice] | None = None
        self._stride = 1
        self._thumbs: np.ndarray | None = None  # (history, 3, h, w) uint8 ring
        self._cdf = np.zeros((self.history, 3, BINS), np.float32)  # ring
        self.scores: dict[str, Growing] = {
            "luma_mean": Growing(),
            "luma_std": Growing(),
            "diff": Growing(),
            "content": Growing(),
            "dark": Growing(),
            "energy": Growing(),
        }
        for k in self.lags:
            self.scores[f"hist_lag{k}"] = Growing()

    # -- input ---------------------------------------------------------------------------

    def push(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Add one frame's analysis planes (views are fine: the thumbnail is copied)."""
        if y.shape != self._plane_shape:
            self._setup(y.shape)
        slot = self._thumbs[self.pushed % self.history]
        if self._pick is not None:
            slot[0] = y[self._pick]
            slot[1] = u[self._pick]
            slot[2] = v[self._pick]
        else:  # a size the stride cannot reach: resample to the thumbnail size
            h, w = self._shape
            for i, p in enumerate((y, u, v)):
                slot[i] = cv2.resize(np.ascontiguousarray(p), (w, h), interpolation=cv2.INTER_AREA)
        self.pushed += 1
        if self.pushed - self.count >= self.block:
            self.flush()

    def _setup(self, shape: tuple[int, int]) -> None:
        """Fix the thumbnail size at the first frame; later sizes (a video whose resolution
        changes) are resampled to it."""
        self._plane_shape = shape
        if self._thumbs is None:
            s = max(1, min(shape) // self.thumb_short_side)
            self._shape = (-(-shape[0] // s), -(-shape[1] // s))
            self._thumbs = np.zeros((self.history, 3, *self._shape), np.uint8)
            self._stride = s
        s, (h, w) = self._stride, self._shape
        fits = -(-shape[0] // s) == h and -(-shape[1] // s) == w
        self._pick = np.s_[::s, ::s] if fits else None

    def flush(self) -> None:
        """Compute signals for the frames pushed since the last flush."""
        a, b = self.count, self.pushed
        if b <= a:
            return
        cur = self.thumbs(a, b)  # (B, 3, h, w)
        flat = cur.reshape(len(cur), 3, -1)
        luma = flat[:, 0].astype(np.float32)
        mean, std = luma.mean(1), luma.std(1)
        self.scores["luma_mean"].extend(mean)
        self.scores["luma_std"].extend(std)
        self.scores["energy"].extend(energy(mean, std))
        prev = self.thumbs(a - 1, a) if a > 0 else cur[:1]
        both = np.concatenate([prev, cur]).reshape(len(cur) + 1, -1)
        self.scores["diff"].extend(cv2.absdiff(both[1:], both[:-1]).mean(1))
        hsv = hsv_thumbs(np.concatenate([prev, cur])).reshape(len(cur) + 1, -1)
        self.scores["content"].extend(cv2.absdiff(hsv[1:], hsv[:-1]).mean(1))
        cdf = _cdfs(flat[:, :, ::2])  # every other pixel is plenty for a histogram
        idx = np.arange(a, b) % self.history
        self._cdf[idx] = cdf
        self.scores["dark"].extend((cdf[:, 0, self.black_bin - 1] >= 0.95).astype(np.float32))
        self.count = b
        self._lag_distances(a, b)

    def _lag_distances(self, a: int, b: int) -> None:
        # hist_lag{k}[t] compares t - k with t + k, so it is known once t + k is here.
        for k in self.lags:
            lo, hi = max(k, a - k), b - k
            if hi <= lo:
                continue
            before = self.cdfs(lo - k, hi - k)
            after = self.cdfs(lo + k, hi + k)
            self.scores[f"hist_lag{k}"].set(lo, wasserstein(before, after))

    # -- access --------------------------------------------------------------------------

    def thumbs(self, a: int, b: int) -> np.ndarray:
        """Thumbnails of frames [a, b), (b - a, 3, h, w) uint8; they must still be held."""
        self._check(a, b, self.pushed)
        return self._thumbs[np.arange(a, b) % self.history]

    def cdfs(self, a: int, b: int) -> np.ndarray:
        """Cumulative histograms of frames [a, b), (b - a, 3, BINS) float32."""
        self._check(a, b, self.count)
        return self._cdf[np.arange(a, b) % self.history]

    def oldest(self) -> int:
        """First frame whose thumbnail and histogram are still held."""
        return max(0, self.pushed - self.history + 1)

    def _check(self, a: int, b: int, limit: int) -> None:
        if a < self.oldest() or b > limit or a > b:
            raise IndexError(f"frames [{a}, {b}) are not held (held: {self.oldest()}..{limit})")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every scalar signal, one float32 value per frame (NaN where not computable)."""
        n = self.count
        out = {}
        for name, g in self.scores.items():
            v = np.full(n, np.nan, np.float32)
            m = min(n, g.size)
            v[:m] = g.values[:m]
            out[name] = v
        return out


def hsv_thumbs(thumbs: np.ndarray) -> np.ndarray:
    """(B, 3, h, w) Y, U, V thumbnails -> (B, h, w, 3) HSV, as ContentDetector converts its
    BGR frames (cv2's YUV -> BGR -> HSV, stacked into one image for the whole block)."""
    n, _, h, w = thumbs.shape
    yuv = np.ascontiguousarray(thumbs.transpose(0, 2, 3, 1)).reshape(n * h, w, 3)
    bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).reshape(n, h, w, 3)


def _cdfs(flat: np.ndarray) -> np.ndarray:
    """Per-channel cumulative histograms of uint8 pixels, (B, 3, P) -> (B, 3, BINS)."""
    n, c, p = flat.shape
    bins = (flat >> 3).reshape(n * c, p).astype(np.int64)
    bins += (np.arange(n * c) * BINS)[:, None]
    hist = np.bincount(bins.ravel(), minlength=n * c * BINS).reshape(n, c, BINS)
    return np.cumsum(hist, axis=2, dtype=np.float32) / p


def wasserstein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance between cumulative histograms, in 0-255 levels, mean of the
    three channels: (..., 3, BINS) pairs -> (...)."""
    return np.abs(a - b).sum(-1).mean(-1) * LEVELS_PER_BIN


def energy(luma_mean: np.ndarray, luma_std: np.ndarray) -> np.ndarray:
    """RMS distance of a frame's luma from video black (16): 0 for a black frame, and it
    scales with (1 - a) during a fade by a."""
    return np.sqrt(luma_std**2 + (luma_mean - 16.0) ** 2)
