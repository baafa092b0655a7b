"""run.json: the machine-readable summary every `lvd` command writes beside its output."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipelines.common import storage

PACKAGES = (
    "lvd",
    "torch",
    "torchvision",
    "ray",
    "av",
    "scenedetect",
    "opencv-python-headless",
    "open_clip_torch",
    "transformers",
    "pyarrow",
    "numpy",
)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM: since its exec, unlike getrusage's
    ru_maxrss, which also counts the forked parent's pages)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def write_run_json(folder: Path, info: dict[str, Any]) -> Path:
    """Write folder/run.json atomically (local or object storage), with versions and a
    timestamp added."""
    data = {"written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(), **info}
    path = folder / "run.json"
    storage.write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
    return path


def read_run_json(folder: Path) -> dict[str, Any]:
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_run(folder: Path, started: float, this_run: dict[str, Any], **summary: Any) -> Path:
    """run.json with `summary` at the top level and this invocation in its `runs` list
    (earlier invocations kept). An invocation that records more than once (running,
    then done) updates its own entry, which its start time names."""
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))
    runs = list(read_run_json(folder).get("runs", []))
    entry = {"started_at": started_at, **this_run}
    if runs and runs[-1].get("started_at") == started_at:
        runs[-1] = {**runs[-1], **entry}
    else:
        runs.append(entry)
    return write_run_json(folder, {**summary, "runs": runs})
