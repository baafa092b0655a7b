"""Save and load model weights as safetensors beside the resolved config as JSON.

A model folder holds config.json (the whole ModelConfig: VAE, DiT, text encoder,
diffusion) and vae.safetensors and/or dit.safetensors. Files are written under a
temporary name and renamed, so a killed save never leaves a half-written file. The
trainer's checkpoints (optimizer, data position, RNG) build on these files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model as _load_weights
from safetensors.torch import save_model as _save_weights

from model.config import ModelConfig
from model.config_dict import from_dict
from model.dit import DiT
from model.vae import VAE

CONFIG_NAME = "config.json"
WEIGHT_NAMES = {"vae": "vae.safetensors", "dit": "dit.safetensors"}


@dataclass
class LatentVideoModel:
    """What `load_model` returns: the config and whichever networks the folder holds."""

    config: ModelConfig
    vae: VAE | None = None
    dit: DiT | None = None


def _replace_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(
    directory: str | Path,
    config: ModelConfig,
    vae: VAE | None = None,
    dit: DiT | None = None,
) -> Path:
    """Write config.json and the given networks' weights into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, net in (("vae", vae), ("dit", dit)):
        if net is None:
            continue
        if dataclasses.asdict(net.cfg) != dataclasses.asdict(getattr(config, name)):
            raise ValueError(f"{name}: the network's config differs from config.{name}")
        # safetensors' save_model handles tied/shared tensors; metadata aids inspection
        _replace_atomically(
            directory / WEIGHT_NAMES[name],
            lambda p, net=net: _save_weights(net, str(p), metadata={"format": "pt"}),
        )
    text = json.dumps(dataclasses.asdict(config), indent=2)
    _replace_atomically(directory / CONFIG_NAME, lambda p: p.write_text(text + "\n"))
    return directory


def load_config(directory: str | Path) -> ModelConfig:
    """The ModelConfig saved in a model folder (one-line errors for missing/bad files)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no model at {directory}: {CONFIG_NAME} is missing")
    try:
        return from_dict(ModelConfig, json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad model config: {e}") from None


def load_model(
    directory: str | Path,
    device: torch.device | str = "cpu",
    parts: tuple[str, ...] = ("vae", "dit"),
) -> LatentVideoModel:
    """Rebuild the networks in `parts` from a folder written by save_model, in eval
    mode on `device`. A part whose weights file is absent is left None."""
    directory = Path(directory)
    config = load_config(directory)
    model = LatentVideoModel(config)
    for name in parts:
        if name not in WEIGHT_NAMES:
            raise ValueError(f"parts: unknown part {name!r}; choose from {sorted(WEIGHT_NAMES)}")
        path = directory / WEIGHT_NAMES[name]
        if not path.is_file():
            continue
        net = (VAE if name == "vae" else DiT)(getattr(config, name))
        missing, unexpected = _load_weights(net, str(path), strict=False, device="cpu")
        if missing or unexpected:
            raise ValueError(
                f"{path}: weights do not match config.{name} "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        setattr(model, name, net.to(device).eval())
    return model
