"""Training checkpoints: atomic folders, a manifest that proves them whole, keep-last-N.

RUN/checkpoints/step-XXXXXXXX/ (XXXXXXXX = optimizer steps over all stages) holds

    config.json           the model config (model.checkpoint format, current VAE scale)
    vae.safetensors       VAE weights (being trained in the vae stage, frozen after)
    dit.safetensors       DiT weights being trained (raw, not EMA)
    ema_vae.safetensors   EMA of the VAE (vae stage only), ema_dit.safetensors (DiT)
    disc.safetensors      the VAE's 3D PatchGAN discriminator, when adversarial_weight > 0
    optimizer.pt          AdamW states by parameter name (mid-stage checkpoints only)
    trainer.json          stage, step, data position, EMA counters, the resolved config
    rng.pt                torch (CPU and CUDA), numpy and Python RNG states
    COMPLETE.json         written last: every file's size and CRC-32

so a checkpoint folder is also a model folder that model.checkpoint.load_model reads.
Everything is written into a hidden temporary folder, fsynced, and renamed into place;
a folder without a valid manifest is never used. Resume picks the newest checkpoint
whose files match their manifest and falls back to older ones when the newest is
corrupt or was cut short (a crash, a full disk).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from model.checkpoint import WEIGHT_NAMES, load_model, save_model
from pipelines.common.errors import UsageError

MARKER = "COMPLETE.json"
PREFIX = "step-"


def folder_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def crc32(path: Path) -> int:
    value = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            value = zlib.crc32(chunk, value)
    return value


def save_weights(
    path: Path, weights: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Weights as safetensors, in the format model.checkpoint.load_model reads."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})


def write_checkpoint(
    run: Path, step: int, writers: dict[str, Callable[[Path], None]], keep: int
) -> Path:
    """Call each writer with its file path inside a temporary folder, seal it with the
    manifest, rename it to step-XXXXXXXX and delete all but the newest `keep`."""
    root = run / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / folder_name(step)
    tmp = root / f".tmp-{folder_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, write in writers.items():
            write(tmp / name)
        manifest = {}
        for path in sorted(tmp.iterdir()):
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            manifest[path.name] = {"size": path.stat().st_size, "crc32": crc32(path)}
        (tmp / MARKER).write_text(json.dumps({"step": step, "files": manifest}, indent=1))
        _fsync_dir(tmp)
        if final.exists():  # a rerun after resuming from an older checkpoint
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune(run, keep)
    return final


def replace_folder(tmp: Path, folder: Path) -> None:
    """Put the finished folder `tmp` at `folder`. The old folder is moved aside before the
    rename and deleted after it, so a kill at any moment leaves a whole folder behind."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def write_model_folder(folder: Path, model_cfg, info: dict | None = None, **weights) -> None:
    """A model folder (config.json + weights [+ train.json]) written beside and renamed."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, model_cfg)
    for net, tensors in weights.items():
        save_weights(tmp / WEIGHT_NAMES[net], tensors)
    if info is not None:
        (tmp / "train.json").write_text(json.dumps(info, indent=1) + "\n")
    replace_folder(tmp, folder)


def set_aside(run: Path, resume_from: Path | None) -> None:
    """Damaged checkpoints newer than the one resumed from are renamed bad-step-*: the
    steps they held are trained again and their names will be reused."""
    if resume_from is None:
        return
    for folder in complete_checkpoints(run):
        if folder.name > resume_from.name:
            target = folder.with_name(f"bad-{folder.name}")
            shutil.rmtree(target, ignore_errors=True)
            folder.rename(target)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_checkpoints(run: Path) -> list[Path]:
    """Folders with a manifest, oldest first (not yet checked against it)."""
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{PREFIX}*") if (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def problem(folder: Path, full: bool = True) -> str | None:
    """Why a checkpoint cannot be used (None when it is whole): a missing manifest, a
    missing or resized file, or (with `full`) a CRC-32 that does not match."""
    try:
        manifest = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return "no readable manifest"
    for name, info in manifest.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != info["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {info['size']}"
        if full and crc32(path) != info["crc32"]:
            return f"{name} fails its checksum"
    return None


def latest_valid(run: Path) -> tuple[Path | None, list[str]]:
    """The newest whole checkpoint and a line for each newer one that was skipped."""
    skipped = []
    for folder in reversed(complete_checkpoints(run)):
        reason = problem(folder)
        if reason is None:
            return folder, skipped
        skipped.append(f"{folder.name}: {reason}")
    return None, skipped


def prune(run: Path, keep: int) -> None:
    """Keep the newest `keep` complete checkpoints; drop temporary leftovers of crashes."""
    root = run / "checkpoints"
    for tmp in root.glob(".tmp-*"):
        if not tmp.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)
    complete = complete_checkpoints(run)
    for old in complete[: max(0, len(complete) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_pickle(path: Path, obj) -> None:
    torch.save(obj, path)


def load_pickle(path: Path):
    # our own files (optimizer and RNG states hold numpy arrays and Python tuples)
    return torch.load(path, map_location="cpu", weights_only=False)


def model_folder(path: str | Path) -> Path:
    """A model folder given a model folder, a checkpoint, or a training run (its final/,
    else its newest whole checkpoint)."""
    p = Path(path)
    if (p / "config.json").is_file():
        return p
    if (p / "final" / "config.json").is_file():
        return p / "final"
    newest, _ = latest_valid(p)
    if newest is not None:
        return newest
    raise UsageError(f"{p} is neither a model folder nor a training run with a checkpoint")


def pretrained_dit(source: str | Path) -> dict[str, torch.Tensor]:
    """The DiT weights of a model folder or run (`init_from`)."""
    model = load_model(model_folder(source), "cpu", parts=("dit",))
    if model.dit is None:
        raise UsageError(f"init_from {source} holds no DiT weights")
    return model.dit.state_dict()


def pretrained_vae(source: str | Path, vae_cfg) -> tuple[dict[str, torch.Tensor], float]:
    """The VAE weights and latent scale of a model folder or run (`vae_from`), checked
    against the VAE config the run trains with (the scale aside)."""
    model = load_model(model_folder(source), "cpu", parts=("vae",))
    if model.vae is None:
        raise UsageError(f"{source} holds no VAE weights")
    unscaled = dataclasses.replace(model.config.vae, scaling_factor=1.0)
    if unscaled != dataclasses.replace(vae_cfg, scaling_factor=1.0):
        raise UsageError(f"the VAE in {source} differs from model.vae in this config")
    return model.vae.state_dict(), model.config.vae.scaling_factor
