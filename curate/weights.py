"""Where model weights come from: the device to run on, local paths, the Hugging Face
hub (offline-aware), and plain URLs downloaded once into lvd's cache.

Every failure here becomes one `ModelLoadError` line naming the model and the config key
to change. An unreachable hub is detected with one short socket probe, so a machine
without network fails (or falls back to the local cache) in seconds instead of sitting
through huggingface_hub's retry loop.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import torch

from curate.errors import ModelLoadError

HUB_HOST = "huggingface.co"


def cache_root() -> Path:
    """lvd's cache folder: $LVD_CACHE, else ~/.cache/lvd."""
    return Path(os.environ.get("LVD_CACHE") or Path.home() / ".cache" / "lvd")


def resolve_device(name: str, setting: str) -> tuple[torch.device, torch.dtype]:
    """'auto' -> CUDA with fp16 when a GPU is visible, else CPU with fp32."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"{setting} is {name!r} but torch sees no CUDA GPU")
        return torch.device(name), torch.float16
    return torch.device("cpu"), torch.float32


def env_offline() -> bool:
    """HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set to a true value."""
    values = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return any((v or "").strip().lower() in ("1", "true", "yes", "on") for v in values)


def hub_reachable() -> bool:
    """False when offline mode is set; else one TCP connect, remembered per process."""
    return not env_offline() and _probe_hub()


@functools.cache
def _probe_hub(timeout_s: float = 3.0) -> bool:
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or f"https://{HUB_HOST}")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or HUB_HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def is_local(model: str) -> bool:
    return Path(model).expanduser().exists()


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 240 else line[:240] + "..."


def cached_path(url: str) -> Path:
    """Where `fetch` keeps the download of a URL."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return cache_root() / "weights" / name


def fetch(source: str, what: str, setting: str) -> Path:
    """A local file as is, or a URL downloaded once into cache_root()/weights."""
    if not source.startswith(("http://", "https://")):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"{what} file {source!r} not found (set {setting})")
        return path
    dest = cached_path(source)
    if dest.is_file():
        return dest
    if env_offline():
        raise ModelLoadError(
            f"{what} {source!r} is not in the cache {dest.parent} and downloads are off "
            f"(HF_HUB_OFFLINE): set {setting} to a local file"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Temporary name, then rename: a killed download never leaves a half file behind.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source, timeout=20) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    except OSError as e:
        raise ModelLoadError(
            f"{what} {source!r} could not be downloaded (offline? set {setting} to a local "
            f"file): {first_line(e)}"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest
