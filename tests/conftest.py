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
