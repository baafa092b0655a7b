import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """../shared/data/videos (real videos with ground truth); skip when absent."""
    if not (SHARED_VIDEOS / "truth.json").is_file():
        pytest.skip("real test videos (../shared/data/videos) are not here")
    return SHARED_VIDEOS


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on 2 shared cores: a second torch thread only adds contention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny captioner, CLIP and aesthetic head, saved and loaded like real weights."""
    from curate.tiny_models import ensure_tiny_models

    return ensure_tiny_models(tmp_path_factory.mktemp("tiny"))
