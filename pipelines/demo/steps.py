"""What both demos share: running one real `lvd` command as a step, reading a generated
video back, and the page's pictures (loss curves, frame strips)."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipelines.common.errors import UsageError


def run_step(name: str, argv: list[str], timings: dict[str, float]) -> None:
    from pipelines.cli import main

    print(f"\n== lvd demo: {name}: lvd {' '.join(argv)}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    code = main(argv)
    timings[name] = round(time.perf_counter() - t, 1)
    if code != 0:
        raise UsageError(f"step '{name}' failed (exit {code}); see the lines above")


def read_video(path: Path) -> np.ndarray:
    """All frames of a generated mp4 as (T, H, W, 3) uint8 RGB."""
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def loss_curves(train_dir: Path) -> str:
    """Loss against step for each training stage, from metrics.jsonl, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        json.loads(x) for x in (train_dir / "metrics.jsonl").read_text().splitlines() if x.strip()
    ]
    stages: dict[str, list[tuple[int, float]]] = {}
    for m in lines:
        if "loss" in m and "stage" in m:
            stages.setdefault(m["stage"], []).append((m["step"], m["loss"]))
    fig, axes = plt.subplots(
        1, max(1, len(stages)), figsize=(5 * max(1, len(stages)), 3), dpi=90, squeeze=False
    )
    for ax, (stage, points) in zip(axes[0], stages.items(), strict=False):
        steps, losses = zip(*points, strict=True)
        ax.plot(steps, losses, color="#4a7bb7")
        ax.set_yscale("log")
        ax.set_title(f"{stage} loss", fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return png


def frame_strip(frames: np.ndarray, scale: int = 3) -> str:
    import cv2

    strip = np.concatenate(list(frames), axis=1)
    strip = cv2.resize(
        strip, (strip.shape[1] * scale, strip.shape[0] * scale), interpolation=cv2.INTER_NEAREST
    )
    _, png = cv2.imencode(".png", strip[:, :, ::-1])
    return base64.b64encode(png.tobytes()).decode()


def write_results(out: Path, info: dict, results: list[dict], page: Path, total_s: float) -> None:
    """OUT/run.json (`info`, and the results without their frames), and where the page is."""
    from pipelines.common.run_json import write_run_json

    rows = [{k: v for k, v in r.items() if k != "frames"} for r in results]
    write_run_json(out, {"command": "demo", **info, "results": rows})
    print(f"\nlvd demo: done in {total_s / 60:.1f} min. Open {page}", file=sys.stderr)
