"""Text area of clips: the share of the frame covered by detected text (`TextAreaStage`).

Stable Video Diffusion ran CRAFT on clip frames and dropped clips with much text
(captions burnt in, title cards, screen recordings). Here the detector is PP-OCRv4's DB
(Differentiable Binarization, Liao et al. 2020) text detector, whose ONNX file ships
inside the rapidocr-onnxruntime wheel, so it runs offline, on onnxruntime (CUDA when
that build of onnxruntime has it). Boxes come from rapidocr's DB post-processing
(threshold the probability map, fit and expand rotated boxes); their union is rasterised
at reduced resolution and divided by the frame area. A clip's `text_area` is the
maximum over its keyframes: one title card is enough to flag it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from curate.config import TextConfig
from curate.errors import ModelLoadError
from curate.images import decode_keyframes
from curate.weights import first_line

log = logging.getLogger(__name__)

DETECTOR_FILE = "models/ch_PP-OCRv4_det_infer.onnx"  # inside the rapidocr_onnxruntime package
MASK_LONG_SIDE = 256  # union of boxes is measured on a mask this big: ~0.1% area steps


def box_area_fraction(boxes: np.ndarray, height: int, width: int) -> float:
    """Share of a height x width frame covered by the union of polygons (K, P, 2) (x, y)."""
    if len(boxes) == 0:
        return 0.0
    scale = min(1.0, MASK_LONG_SIDE / max(height, width))
    mask = np.zeros((max(1, round(height * scale)), max(1, round(width * scale))), np.uint8)
    for box in boxes:
        # One polygon per call: fillPoly given several at once cancels their overlaps.
        cv2.fillPoly(mask, [np.round(np.asarray(box, np.float64) * scale).astype(np.int32)], 1)
    return float(mask.mean())


class TextDetector:
    """PP-OCRv4 DB text detector on onnxruntime: RGB frames -> text boxes in frame pixels."""

    def __init__(
        self,
        short_side: int = 256,
        box_threshold: float = 0.5,
        threads: int = 0,
        device: str = "auto",
    ):
        try:
            import onnxruntime as ort
            import rapidocr_onnxruntime
            from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

            model_path = Path(rapidocr_onnxruntime.__file__).parent / DETECTOR_FILE
            providers = ["CPUExecutionProvider"]
            has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
            if device.startswith("cuda") and not has_cuda:
                raise RuntimeError("this onnxruntime has no CUDAExecutionProvider")
            if has_cuda and device != "cpu":
                device_id = int(device.split(":")[1]) if ":" in device else 0
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if threads:
                options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as e:  # missing package or file, bad provider
            raise ModelLoadError(
                f"text detector {DETECTOR_FILE!r} from rapidocr-onnxruntime could not be loaded "
                f"(reinstall rapidocr-onnxruntime, or set text.device=cpu): {first_line(e)}"
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        self.short_side = short_side
        # PP-OCR's DB defaults as rapidocr ships them, except the box score threshold.
        self.postprocess = DBPostProcess(
            thresh=0.3,
            box_thresh=box_threshold,
            max_candidates=1000,
            unclip_ratio=1.6,
            use_dilation=True,
            score_mode="fast",
        )

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Boxes (K, 4, 2) in pixel (x, y) of each (H, W, 3) uint8 RGB frame.

        Frames that resize to the same input shape share one detector call.
        """
        inputs = [self._prepare(frame) for frame in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            by_shape.setdefault(x.shape, []).append(i)
        results: list[np.ndarray] = [np.zeros((0, 4, 2), np.int32)] * len(frames)
        for indices in by_shape.values():
            maps = self.session.run(None, {self.input_name: np.stack([inputs[i] for i in indices])})
            for k, i in enumerate(indices):
                boxes, _ = self.postprocess(maps[0][k : k + 1], frames[i].shape[:2])
                results[i] = boxes.reshape(-1, 4, 2)
        return results

    def text_area(self, frames: list[np.ndarray]) -> list[float]:
        """Share of each frame covered by text, in [0, 1]."""
        return [
            box_area_fraction(boxes, *frame.shape[:2])
            for boxes, frame in zip(self.detect(frames), frames, strict=True)
        ]

    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        scale = self.short_side / min(height, width)
        # The network downsamples 32x: both sides must be multiples of 32.
        size_hw = [max(32, round(side * scale / 32) * 32) for side in (height, width)]
        resized = cv2.resize(rgb, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
        bgr = resized[:, :, ::-1].astype(np.float32)  # PP-OCR was trained on cv2's BGR
        return ((bgr / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)  # (3, H, W)


class TextAreaStage:
    """Adds `text_area`: max over a row's keyframes of the share of the frame covered by
    detected text, in [0, 1]; NaN when the keyframes do not decode."""

    def __init__(self, cfg: TextConfig):
        self.cfg = cfg
        self.detector = TextDetector(cfg.short_side, cfg.box_threshold, cfg.threads, cfg.device)
        self._warned_bad_rows = False

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        keyframes = list(batch["keyframes"])
        area = np.full(len(keyframes), np.nan, np.float32)
        pending: list[np.ndarray] = []
        owners: list[int] = []

        def flush() -> None:
            for i, value in zip(owners, self.detector.text_area(pending), strict=True):
                area[i] = value if np.isnan(area[i]) else max(area[i], value)
            pending.clear()
            owners.clear()

        bad_rows = 0
        for i, frames in enumerate(keyframes):
            images = decode_keyframes(frames)
            if images is None:
                bad_rows += 1
                continue
            for image in images:
                pending.append(np.asarray(image))
                owners.append(i)
                if len(pending) == self.cfg.batch_size:
                    flush()
        if pending:
            flush()
        if bad_rows and not self._warned_bad_rows:
            log.warning("text: %d row(s) with undecodable keyframes get NaN text_area", bad_rows)
            self._warned_bad_rows = True
        return {**batch, "text_area": area}
