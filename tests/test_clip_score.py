"""ClipStage on a tiny random open_clip model loaded from a local folder (the way a user's
own open_clip model loads), and the LAION aesthetic head on known weights."""

import numpy as np
import pytest
import torch

from curate.aesthetic import AestheticHead, aesthetic_scores, load_head, save_head
from curate.clip_score import ClipStage
from curate.config import AESTHETIC_URL, ClipConfig
from curate.errors import ModelLoadError
from curate.images import decode_image, encode_image
from curate.tiny_models import CLIP_EMBED_DIM

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(tiny, **overrides) -> ClipConfig:
    settings = dict(
        model=tiny["clip"], pretrained="", aesthetic_weights=tiny["aesthetic"], device="cpu"
    )
    return ClipConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def stage(tiny):
    return ClipStage(tiny_config(tiny))


def keyframe(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    return encode_image(rgb, "png")


def rows(count: int, frames: int = 3) -> list[list[bytes]]:
    return [[keyframe(frames * r + k) for k in range(frames)] for r in range(count)]


def test_columns_shapes_and_types(stage):
    out = stage({"keyframes": rows(4), "caption": ["a dog", "", None, "red car"]})
    embedding = out["clip_embedding"]
    assert embedding.shape == (4, CLIP_EMBED_DIM) and embedding.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(embedding.astype(np.float32), axis=1), 1, atol=2e-3)
    assert np.isfinite(out["aesthetic_score"]).all()
    assert np.isfinite(out["text_score"][[0, 3]]).all()
    assert np.isnan(out["text_score"][[1, 2]]).all()  # no caption, no text score


def test_embedding_is_the_normalised_mean_of_keyframe_embeddings(stage):
    frames = rows(1)[0]
    per_frame = stage.embed_images([decode_image(f) for f in frames])
    mean = per_frame.mean(0)
    expected = mean / np.linalg.norm(mean)
    got = stage({"keyframes": [frames]})["clip_embedding"][0].astype(np.float32)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_text_score_is_cosine_of_caption_and_frames(stage):
    frames = rows(1)[0]
    out = stage({"keyframes": [frames], "caption": ["a man walking a dog"]})
    per_frame = stage.embed_images([decode_image(f) for f in frames]).mean(0)
    text = stage.embed_texts(["a man walking a dog"])[0]
    expected = text @ per_frame / np.linalg.norm(per_frame)
    assert out["text_score"][0] == pytest.approx(expected, abs=1e-5)


def test_aesthetic_score_is_mean_over_keyframes(stage):
    frames = rows(1)[0]
    per_frame = stage.embed_images([decode_image(f) for f in frames])
    expected = aesthetic_scores(stage.head, torch.from_numpy(per_frame)).mean().item()
    assert stage({"keyframes": [frames]})["aesthetic_score"][0] == pytest.approx(expected, abs=1e-5)


def test_batch_equals_single_rows(tiny, stage):
    keyframes = rows(5)
    captions = ["a dog", "a cat", None, "sky", "a red car"]
    small_batches = ClipStage(tiny_config(tiny, batch_size=2))  # rows straddle model calls
    batched = small_batches({"keyframes": keyframes, "caption": captions})
    for i in range(5):
        single = stage({"keyframes": [keyframes[i]], "caption": [captions[i]]})
        for name in ("aesthetic_score", "text_score"):
            np.testing.assert_allclose(batched[name][i], single[name][0], atol=1e-5)
        np.testing.assert_allclose(
            batched["clip_embedding"][i].astype(np.float32),
            single["clip_embedding"][0].astype(np.float32),
            atol=1e-3,
        )


def test_undecodable_row_gets_nan_and_the_batch_goes_on(stage):
    keyframes = rows(3)
    keyframes[1] = [keyframe(5), keyframe(6)[:40]]  # truncated PNG
    out = stage({"keyframes": keyframes, "caption": ["a", "b", "c"]})
    assert np.isnan(out["aesthetic_score"][1]) and np.isnan(out["text_score"][1])
    assert np.isnan(out["clip_embedding"][1].astype(np.float32)).all()
    assert np.isfinite(out["aesthetic_score"][[0, 2]]).all()


def test_no_aesthetic_weights_gives_nan_scores(tiny):
    out = ClipStage(tiny_config(tiny, aesthetic_weights=""))({"keyframes": rows(2)})
    assert np.isnan(out["aesthetic_score"]).all()
    assert np.isfinite(out["clip_embedding"].astype(np.float32)).all()


def test_unknown_pretrained_tag_is_one_line(tiny):
    with pytest.raises(ModelLoadError, match=r"clip.pretrained 'nope' is neither") as e:
        ClipStage(ClipConfig(model="ViT-B-32", pretrained="nope", device="cpu"))
    assert "\n" not in str(e.value)


def test_default_weights_offline_fail_fast_naming_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LVD_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as e:
        ClipStage(ClipConfig(device="cpu"))
    message = str(e.value)
    assert "ViT-L-14" in message and "clip.pretrained" in message and "\n" not in message


# -- aesthetic head --------------------------------------------------------------------


def known_head(dim: int = 4) -> AestheticHead:
    """A head whose output is 2 * x[0] + 1: each Linear passes its first input on."""
    head = AestheticHead(dim)
    with torch.no_grad():
        for layer in head.layers:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
                layer.weight[0, 0] = 1.0
        head.layers[7].weight[0, 0] = 2.0
        head.layers[7].bias[0] = 1.0
    return head.eval()


def test_aesthetic_head_on_known_inputs():
    embeddings = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-6.0, 0.0, 8.0, 0.0]])
    # Inputs are L2-normalised first: x[0] is 0.6, 0 and -0.6.
    scores = aesthetic_scores(known_head(), embeddings)
    torch.testing.assert_close(scores, torch.tensor([2.2, 1.0, -0.2]))


def test_aesthetic_head_loads_pth_and_safetensors_alike(tmp_path):
    head = known_head(8)
    torch.save(head.state_dict(), tmp_path / "head.pth")  # the released file's format
    save_head(head, tmp_path / "head.safetensors")
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    expected = aesthetic_scores(head, x)
    for name in ("head.pth", "head.safetensors"):
        loaded = load_head(str(tmp_path / name), embed_dim=8)
        torch.testing.assert_close(aesthetic_scores(loaded, x), expected)


def test_aesthetic_head_of_the_wrong_size_is_refused(tmp_path):
    save_head(known_head(8), tmp_path / "head.safetensors")
    with pytest.raises(ModelLoadError, match=r"takes 8-d embeddings .* gives 768-d"):
        load_head(str(tmp_path / "head.safetensors"), embed_dim=768)


def test_aesthetic_file_that_is_not_a_head_is_refused(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelLoadError, match="not a LAION aesthetic predictor"):
        load_head(str(tmp_path / "other.pth"), embed_dim=768)


def test_aesthetic_url_offline_fails_fast_and_a_cached_copy_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LVD_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"clip.aesthetic_weights"):
        load_head(AESTHETIC_URL, embed_dim=768)
    cached = tmp_path / "weights" / "sac+logos+ava1-l14-linearMSE.pth"
    cached.parent.mkdir(parents=True)
    torch.save(known_head(768).state_dict(), cached)
    assert load_head(AESTHETIC_URL, embed_dim=768).input_dim == 768


def test_aesthetic_url_is_downloaded_once_into_the_cache(monkeypatch, tmp_path):
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    torch.save(known_head(16).state_dict(), served / "my+head.pth")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("LVD_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_port}/my%2Bhead.pth"
    try:
        assert load_head(url, embed_dim=16).input_dim == 16
    finally:
        server.shutdown()
        server.server_close()
    assert [f.name for f in (tmp_path / "cache" / "weights").iterdir()] == ["my+head.pth"]
    assert load_head(url, embed_dim=16).input_dim == 16  # server gone: the cached copy


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_device_without_a_gpu_names_the_setting(tiny):
    with pytest.raises(ModelLoadError, match=r"clip.device is 'cuda' but torch sees no CUDA GPU"):
        ClipStage(tiny_config(tiny, device="cuda"))
