"""The trainer's checkpointer: saves what it is handed, and hands it back on resume.

After torchtitan's CheckpointManager: the trainer passes its stateful parts (networks,
EMAs, optimizers, and itself for the step counters) to `save`, and asks for them back
one by one when it resumes; the checkpointer never reaches into the trainer. Every part
is gathered on every rank (a collective under FSDP), rank 0 writes the folder through
pipelines/training/checkpoints.py (atomic, sealed by a manifest) and the others wait.

A checkpoint folder holds NAME.safetensors per network, ema_NAME.safetensors per EMA
(its update count in the file's metadata), optimizer.pt (mid-stage only), NAME.json per
state, rng.pt, and config.json, so that it is also a model folder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from model.checkpoint import load_config
from model.config import ModelConfig
from pipelines.training import checkpoints as ckpt
from pipelines.training import distributed as ddp
from pipelines.training.optim import EMA


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Network:
    """A network whose full weights a checkpoint holds: `root` is the module training
    calls (maybe DDP/FSDP-wrapped) and the network's weights sit under `prefix` in it."""

    root: torch.nn.Module
    prefix: str = ""


Optimizers = dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]]  # name: (root, opt)


class Checkpointer:
    """RUN/checkpoints/step-N folders of one run; `last` is the newest whole one."""

    def __init__(self, run: Path, d: ddp.Dist, keep: int, resume_from: Path | None = None):
        self.run, self.d, self.keep = run, d, keep
        self.folder = resume_from  # what a resume reads from; None for a new run
        self.last = resume_from
        self.after_save: Callable[[Path], None] | None = None  # e.g. upload the run

    # -- saving ------------------------------------------------------------------------
    def save(
        self,
        step: int,
        *,
        networks: dict[str, Network],
        emas: dict[str, EMA],
        optimizers: Optimizers,
        states: dict[str, Stateful],
        model_config: ModelConfig,
    ) -> Path:
        """Gather on every rank, write on rank 0, then wait for it."""
        files = {}
        for name, net in networks.items():
            files[f"{name}.safetensors"] = _weights(ddp.full_state_dict(net.root, net.prefix))
        for name, ema in emas.items():
            meta = {"updates": str(ema.updates)}
            files[f"ema_{name}.safetensors"] = _weights(ema.full_state_dict(), meta)
        if optimizers:
            opt = {name: ddp.optimizer_state(root, o) for name, (root, o) in optimizers.items()}
            files["optimizer.pt"] = lambda p: ckpt.save_pickle(p, opt)
        for name, part in states.items():
            text = json.dumps(part.state_dict(), indent=1)
            files[f"{name}.json"] = lambda p, text=text: p.write_text(text)
        files["rng.pt"] = lambda p: ckpt.save_pickle(p, ckpt.rng_state())
        config = json.dumps(dataclasses.asdict(model_config), indent=2) + "\n"
        files["config.json"] = lambda p: p.write_text(config)
        if self.d.is_main:
            self.last = ckpt.write_checkpoint(self.run, step, files, self.keep)
            if self.after_save is not None:
                self.after_save(self.last)
        self.last = self.d.broadcast_object(self.last)
        self.d.barrier()
        return self.last

    # -- resuming ----------------------------------------------------------------------
    def has(self, file: str) -> bool:
        return self.folder is not None and (self.folder / file).is_file()

    def load_state(self, name: str, part: Stateful) -> None:
        part.load_state_dict(json.loads((self.folder / f"{name}.json").read_text()))

    def model_config(self) -> ModelConfig:
        return load_config(self.folder)

    def load_network(self, name: str, module: torch.nn.Module) -> None:
        module.load_state_dict(load_file(str(self.folder / f"{name}.safetensors")))

    def network_weights(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(self.folder / f"{name}.safetensors"))

    def load_ema(self, name: str, ema: EMA) -> bool:
        """The EMA's shadow weights and update count, if the checkpoint holds them."""
        file = f"ema_{name}.safetensors"
        if not self.has(file):
            return False
        path = str(self.folder / file)
        ema.load_full_state_dict(load_file(path))
        with safe_open(path, "pt") as f:
            ema.updates = int((f.metadata() or {}).get("updates", 0))
        return True

    def load_optimizers(self, optimizers: Optimizers) -> None:
        saved = ckpt.load_pickle(self.folder / "optimizer.pt")
        for name, (root, opt) in optimizers.items():
            ddp.load_optimizer_state(root, opt, saved[name])

    def restore_rng(self) -> None:
        ckpt.set_rng_state(ckpt.load_pickle(self.folder / "rng.pt"))


def _weights(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
    return lambda p: ckpt.save_weights(p, tensors, metadata)
