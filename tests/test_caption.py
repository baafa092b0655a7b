"""CaptionStage on tiny random BLIP and Qwen2-VL models saved to disk and loaded back
through the same from_pretrained path a hub id takes."""

import numpy as np
import pytest

from curate.caption import CaptionStage
from curate.config import CaptionConfig
from curate.errors import ModelLoadError
from curate.images import encode_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_stage(tiny):
    return CaptionStage(CaptionConfig(model=tiny["caption"], max_new_tokens=8, device="cpu"))


@pytest.fixture(scope="module")
def vlm_stage(tiny):
    cfg = CaptionConfig(
        mode="vlm", vlm_model=tiny["vlm"], vlm_frames=3, max_new_tokens=6, device="cpu"
    )
    return CaptionStage(cfg)


def keyframe(seed: int, size_hw=(72, 128)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size_hw, 3), dtype=np.uint8)
    return encode_image(rgb, "png")


def rows(count: int, frames: int = 3) -> list[list[bytes]]:
    return [[keyframe(frames * r + k) for k in range(frames)] for r in range(count)]


def test_image_mode_captions_the_middle_keyframe(image_stage):
    first, mid, last = keyframe(1), keyframe(2), keyframe(3)
    out = image_stage({"keyframes": [[first, mid, last], [mid], [first]]})
    assert list(out["caption_source"]) == ["image"] * 3
    assert out["caption"][0] == out["caption"][1]
    assert all(isinstance(c, str) for c in out["caption"])


def test_captions_depend_on_the_image(image_stage):
    out = image_stage({"keyframes": rows(6, frames=1)})
    assert len(set(out["caption"])) > 1


def test_image_batch_equals_single_rows(image_stage):
    keyframes = rows(5)
    batched = image_stage({"keyframes": keyframes})["caption"]
    single = [image_stage({"keyframes": [k]})["caption"][0] for k in keyframes]
    assert list(batched) == single


def test_sidecar_captions_are_kept_and_others_filled(image_stage):
    batch = {
        "keyframes": rows(3),
        "caption": ["a dog on a beach", None, ""],
        "caption_source": ["sidecar", None, None],
        "clip_id": ["a", "b", "c"],
    }
    out = image_stage(batch)
    assert out["caption"][0] == "a dog on a beach"
    assert list(out["caption_source"]) == ["sidecar", "image", "image"]
    assert list(out["clip_id"]) == ["a", "b", "c"]  # other columns pass through


def test_undecodable_row_gets_empty_caption_and_the_batch_goes_on(image_stage):
    keyframes = rows(3)
    keyframes[1] = [b"not an image", keyframe(99)]
    out = image_stage({"keyframes": keyframes})
    assert out["caption"][1] == "" and out["caption_source"][1] is None
    good = image_stage({"keyframes": [keyframes[0], keyframes[2]]})
    assert [out["caption"][0], out["caption"][2]] == list(good["caption"])


def test_numpy_object_columns_as_ray_hands_them_over(image_stage):
    keyframes = rows(3)
    as_lists = image_stage({"keyframes": keyframes})
    column = np.empty(3, dtype=object)
    for i, frames in enumerate(keyframes):
        column[i] = np.array(frames, dtype=object)
    as_numpy = image_stage({"keyframes": column, "caption": np.array([None] * 3, dtype=object)})
    assert list(as_numpy["caption"]) == list(as_lists["caption"])


def test_a_second_load_gives_the_same_captions(tiny, image_stage):
    again = CaptionStage(CaptionConfig(model=tiny["caption"], max_new_tokens=8, device="cpu"))
    keyframes = rows(3)
    assert list(again({"keyframes": keyframes})["caption"]) == list(
        image_stage({"keyframes": keyframes})["caption"]
    )


def test_vlm_mode_captions_several_keyframes(vlm_stage):
    keyframes = rows(2, frames=5)
    out = vlm_stage({"keyframes": keyframes})
    assert list(out["caption_source"]) == ["vlm", "vlm"]
    # vlm_frames=3 of 5 keyframes: first, middle and last.
    picked = [[k[0], k[2], k[4]] for k in keyframes]
    assert list(vlm_stage({"keyframes": picked})["caption"]) == list(out["caption"])


def test_vlm_batch_equals_single_rows_with_mixed_sizes(vlm_stage):
    keyframes = [
        [keyframe(1), keyframe(2), keyframe(3)],
        [keyframe(4, (96, 96)), keyframe(5, (96, 96))],
        [keyframe(6), keyframe(7), keyframe(8)],
        [keyframe(9, (56, 112))],
    ]
    batched = vlm_stage({"keyframes": keyframes})["caption"]
    single = [vlm_stage({"keyframes": [k]})["caption"][0] for k in keyframes]
    assert list(batched) == single


def test_vlm_model_without_chat_template_is_refused(tiny):
    with pytest.raises(ModelLoadError, match=r"no chat template.*caption.vlm_model"):
        CaptionStage(CaptionConfig(mode="vlm", vlm_model=tiny["caption"], device="cpu"))


@pytest.mark.parametrize(
    ("cfg", "setting"),
    [
        (CaptionConfig(device="cpu"), "caption.model"),
        (CaptionConfig(mode="vlm", vlm_model="/no/such/folder", device="cpu"), "caption.vlm_model"),
    ],
)
def test_unavailable_model_is_one_line_naming_the_setting(cfg, setting):
    # conftest sets HF_HUB_OFFLINE=1: the default hub id is not cached here.
    with pytest.raises(ModelLoadError) as e:
        CaptionStage(cfg)
    message = str(e.value)
    assert setting in message and "\n" not in message
    assert (cfg.model if cfg.mode == "image" else cfg.vlm_model) in message
