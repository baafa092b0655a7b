"""TextAreaStage with the real PP-OCRv4 detector shipped in the rapidocr-onnxruntime wheel,
on frames with rendered text and on textures without any."""

import cv2
import numpy as np
import pytest

from curate.config import TextConfig
from curate.images import encode_image
from curate.text_area import TextAreaStage, TextDetector, box_area_fraction


@pytest.fixture(scope="module")
def stage():
    return TextAreaStage(TextConfig(device="cpu", threads=1))


def texture(seed: int, size_hw=(256, 448)) -> np.ndarray:
    """Smooth random colour texture (no text)."""
    noise = np.random.default_rng(seed).random((*size_hw, 3)) * 255
    return cv2.GaussianBlur(noise.astype(np.uint8), (0, 0), 4)


def with_text(rgb: np.ndarray, lines: list[str], scale: float = 1.4) -> np.ndarray:
    out = rgb.copy()
    for k, line in enumerate(lines):
        org = (16, 60 + k * int(45 * scale))
        cv2.putText(out, line, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 9, cv2.LINE_AA)
        cv2.putText(
            out, line, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA
        )
    return out


def gradient(size_hw=(256, 448)) -> np.ndarray:
    ramp = np.linspace(0, 255, size_hw[1], dtype=np.float32)
    return np.repeat(np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], -1)[None], size_hw[0], 0)


def jpeg(rgb: np.ndarray) -> bytes:
    return encode_image(rgb.astype(np.uint8), "jpeg")


def test_rendered_text_is_found_and_textures_have_none(stage):
    frames = [texture(0), gradient(), with_text(texture(1), ["BREAKING NEWS"])]
    out = stage({"keyframes": [[jpeg(f)] for f in frames]})
    area = out["text_area"]
    assert area[0] == 0 and area[1] == 0
    assert 0.03 < area[2] < 0.5


def test_more_text_covers_more_area(stage):
    one = with_text(texture(2), ["SALE TODAY"])
    three = with_text(texture(2), ["SALE TODAY", "ALL ITEMS", "HALF PRICE"])
    area = stage({"keyframes": [[jpeg(one)], [jpeg(three)]]})["text_area"]
    assert area[1] > 2 * area[0] > 0


def test_clip_area_is_the_max_over_keyframes(stage):
    plain, titled = jpeg(texture(3)), jpeg(with_text(texture(4), ["THE END"]))
    out = stage({"keyframes": [[plain, titled, plain], [titled]]})
    assert out["text_area"][0] == pytest.approx(out["text_area"][1]) and out["text_area"][0] > 0


def test_stacked_detector_calls_equal_single_frames():
    frames = [with_text(texture(i), ["HELLO"]) if i % 2 else texture(i) for i in range(4)]
    keyframes = [[jpeg(f)] for f in frames]
    batched = TextAreaStage(TextConfig(batch_size=4, device="cpu", threads=1))(
        {"keyframes": keyframes}
    )["text_area"]
    single = TextAreaStage(TextConfig(batch_size=1, device="cpu", threads=1))(
        {"keyframes": keyframes}
    )["text_area"]
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_undecodable_row_gets_nan_and_the_batch_goes_on(stage):
    good = jpeg(with_text(texture(5), ["OPEN"]))
    out = stage({"keyframes": [[good], [b"\xff\xd8\xff broken"], []]})
    assert out["text_area"][0] > 0
    assert np.isnan(out["text_area"][1]) and np.isnan(out["text_area"][2])


def test_detector_boxes_lie_on_the_text():
    frame = texture(6)
    cv2.rectangle(frame, (0, 0), (447, 255), (40, 40, 40), -1)
    cv2.putText(frame, "CAPTION", (220, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 4)
    (boxes,) = TextDetector(threads=1).detect([frame])
    assert len(boxes) >= 1
    xs, ys = boxes[..., 0], boxes[..., 1]
    assert xs.min() >= 200 and ys.min() >= 150 and ys.max() <= 230


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([], 0.0),
        ([[[0, 0], [50, 0], [50, 100], [0, 100]]], 0.5),  # left half
        # two overlapping quarters: union is 3/8, not 1/2
        ([[[0, 0], [50, 0], [50, 50], [0, 50]], [[25, 0], [75, 0], [75, 50], [25, 50]]], 0.375),
    ],
)
def test_box_area_fraction_is_the_union_share(boxes, expected):
    assert box_area_fraction(np.array(boxes), 100, 100) == pytest.approx(expected, abs=0.02)


def test_text_overlays_of_a_real_video_match_the_ground_truth(shared_videos, stage):
    import json

    from curate.video import VideoReader

    truth = json.loads((shared_videos / "truth.json").read_text())["big_buck_bunny_0_30.webm"]
    with_text = [500, 540, 610, 700]  # inside the overlays truth lists (489-550, 598-710)
    without = [60, 250, 420, 470, 580]  # landscape, bird shots and the gap between overlays
    assert all(any(s <= i <= e for s, e in truth["text"]) for i in with_text)
    assert not any(s <= i <= e for s, e in truth["text"] for i in without)
    wanted, frames = set(with_text + without), {}
    for frame in VideoReader(shared_videos / "big_buck_bunny_0_30.webm"):
        if frame.index in wanted:
            frames[frame.index] = encode_image(frame.rgb(256))
        if frame.index >= max(wanted):
            break
    area = stage({"keyframes": [[frames[i]] for i in with_text + without]})["text_area"]
    assert (area[: len(with_text)] > 0.02).all()
    assert (area[len(with_text) :] == 0).all()
