"""Start a local Ray (the embedded default) or join a cluster, quietly."""

from __future__ import annotations

import logging
import os
import tempfile


def start_ray(address: str | None, num_cpus: int | None, num_gpus: int | None):
    """Join `address` or start a local Ray bounded by num_cpus/num_gpus."""
    import ray

    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kwargs = dict(
        include_dashboard=False,
        logging_level=logging.WARNING,
        configure_logging=True,
        log_to_driver=True,
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # Unix socket paths must stay short, so the temp dir lives in /tmp, not in --out.
        temp_dir = os.path.join(tempfile.gettempdir(), f"lvd-ray-{os.getuid()}")
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, _temp_dir=temp_dir, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # lvd draws one bar of its own: videos and clips
    ctx.print_on_execution_start = False
    return ray
