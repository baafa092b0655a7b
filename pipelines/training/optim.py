"""Optimizer, learning-rate schedule and EMA for the trainer (nanoGPT's habits).

AdamW with decoupled weight decay on matrices only (norm gains, biases and the null
text token are not decayed), a linear warmup then cosine decay to lr * min_lr_ratio
computed from the step alone (so a resumed run needs no scheduler state beyond the
step), and an exponential moving average of the weights with the usual warmup
min(decay, (1 + n) / (10 + n)) so short runs get a useful average too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipelines.training.config import StageConfig, TrainConfig


def build_optimizer(params: list[nn.Parameter], cfg: TrainConfig, lr: float) -> torch.optim.AdamW:
    decay = [p for p in params if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in params if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # foreach: one kernel per group, not per tensor (works for plain and sharded params)
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, foreach=True)


def lr_at(step: int, stage: StageConfig) -> float:
    """Learning rate of optimizer step `step` (0-based) of a stage."""
    if step < stage.warmup_steps:
        return stage.lr * (step + 1) / stage.warmup_steps
    span = max(1, stage.steps - stage.warmup_steps)
    progress = min(1.0, (step - stage.warmup_steps) / span)
    floor = stage.lr * stage.min_lr_ratio
    return floor + (stage.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class EMA:
    """Shadow copies of a network's parameters (sharded like them under FSDP)."""

    def __init__(self, named_params: list[tuple[str, nn.Parameter]], decay: float):
        self.names = [name for name, _ in named_params]
        self.params = [p for _, p in named_params]
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        params = [
            p.detach().float() if p.dtype != torch.float32 else p.detach() for p in self.params
        ]
        torch._foreach_lerp_(self.shadow, params, 1.0 - decay)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """{name: full CPU tensor}; a collective under FSDP (every rank must call it)."""
        out = {}
        for name, tensor in zip(self.names, self.shadow, strict=True):
            if hasattr(tensor, "full_tensor"):  # a DTensor shard
                tensor = tensor.full_tensor()
            out[name] = tensor.detach().to("cpu")
        return out

    @torch.no_grad()
    def load_full_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        for name, tensor in zip(self.names, self.shadow, strict=True):
            full = weights[name]
            if hasattr(tensor, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                full = distribute_tensor(
                    full.to(tensor.device), tensor.device_mesh, tensor.placements
                )
            tensor.copy_(full)
