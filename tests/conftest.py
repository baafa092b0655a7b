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
def ray_local():
    """A local Ray of 2 CPUs for one test module (ray.init costs seconds)."""
    from pipelines.common.ray_start import start_ray

    ray = start_ray(None, 2, None)
    yield ray
    ray.shutdown()


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


# A real S3-protocol server on localhost (moto's server mode) for the storage tests. Its
# endpoint and fake credentials are set when the test session starts, before any Ray
# starts, so that Ray's workers inherit them as a cluster's workers would.
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3_PORT = _free_port()
os.environ.update(
    AWS_ENDPOINT_URL=f"http://127.0.0.1:{S3_PORT}",
    AWS_ACCESS_KEY_ID="lvd-test",
    AWS_SECRET_ACCESS_KEY="lvd-test-secret",
    AWS_DEFAULT_REGION="us-east-1",
)


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto S3 server that runs for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    yield os.environ["AWS_ENDPOINT_URL"]
    server.stop()


# A Google Cloud Storage emulator (gcp-storage-emulator, the JSON API gcsfs speaks) for
# the gs:// tests, set up the same way. gcsfs reaches it through STORAGE_EMULATOR_HOST,
# without credentials (fsspec's config for gs) and without its gRPC bucket-type lookup,
# which the emulator does not answer.
GCS_PORT = _free_port()
os.environ.update(
    STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{GCS_PORT}",
    FSSPEC_GS='{"token": "anon", "project": "lvd-test"}',
    GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
)


@pytest.fixture(scope="session")
def gcs_server():
    """The endpoint of a GCS emulator that runs for the whole session."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", GCS_PORT, in_memory=True)
    server.start()
    yield os.environ["STORAGE_EMULATOR_HOST"]
    server.stop()


@pytest.fixture
def bucket(s3_server, request):
    """A fresh, empty bucket for one test: its name."""
    import uuid

    import boto3

    name = f"lvd-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
