"""Start a local Ray (the embedded default) or join a cluster, quietly."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from pipelines.common import console

# Passed to every worker, local or remote: model stages must not draw their own
# progress bars into lvd's, and offline/cache settings must hold on every node.
_WORKER_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}
_FORWARDED = ("HF_HUB_OFFLINE", "HF_HOME", "LVD_CACHE", "TORCH_HOME")
# Storage credentials and endpoints, so that workers reach the buckets the driver does
# (fsspec's own FSSPEC_<PROTOCOL>* variables and gcsfs's GCSFS_* are forwarded too).
_STORAGE = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "STORAGE_EMULATOR_HOST",  # a GCS emulator or gateway, as AWS_ENDPOINT_URL for S3
)


def start_ray(address: str | None, num_cpus: int | None, num_gpus: int | None):
    """Join `address` or start a local Ray bounded by num_cpus/num_gpus."""
    # Ray Data's own INFO/WARNING lines (plans, "progress bars disabled") would break
    # lvd's progress bar; they still reach Ray's log files.
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    if ray.is_initialized():
        return ray
    forwarded = [
        k for k in os.environ
        if k in (*_FORWARDED, *_STORAGE) or k.startswith(("FSSPEC_", "GCSFS_"))
    ]  # fmt: skip
    env = {**_WORKER_ENV, **{k: os.environ[k] for k in forwarded}}
    kwargs = dict(
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=not console.is_quiet(),  # quiet: workers' output stays in their logs
        runtime_env={"env_vars": env},
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # Local workers import the same lvd as this process (a source checkout or a
        # worktree may shadow the installed one).
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        )
        # Unix socket paths must stay short, so the temp dir lives in /tmp, not in --out.
        temp_dir = os.path.join(tempfile.gettempdir(), f"lvd-ray-{os.getuid()}")
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, _temp_dir=temp_dir, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # lvd draws one bar of its own: videos and clips
    ctx.print_on_execution_start = False
    # A stage's own exception (a model that cannot load) reaches the driver as itself,
    # so it can be told in one line, not wrapped in UserCodeException.
    ctx.raise_original_map_exception = True
    console.route_ray_loggers()  # after ray.data's import, which configures its loggers
    return ray
