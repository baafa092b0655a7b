"""What one training step computes for each kind of stage, and the check that it was finite.

The losses are wrapped in small modules (`VAELoss`, `FlowLoss`, `DiscLoss`) because
DDP and FSDP wrap a module and synchronise the gradients of what its forward used;
the trained network sits inside as `.net`, so its weights are named `net.*`.

Randomness of a step is drawn per global sample, never per batch: sample j of the
global batch at step s of stage k gets its own generator seeded by (seed, k, s, j), for
its timestep, noise, text dropout, conditioning task and VAE posterior draw. A rank
holding samples j = rank, rank + N, ... of the global batch therefore draws exactly what
a single process draws for them, and N processes at batch B/N equal one at batch B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.conditioning import Cond, frame_mask
from model.config import DiffusionConfig
from model.diffusion import flow_matching_loss
from model.dit import DiT
from model.precision import autocast
from model.vae import VAE
from model.vae_loss import PatchDiscriminator3d, Perceptual, discriminator_loss, vae_loss
from pipelines.common.errors import UsageError
from pipelines.training.config import StageConfig
from pipelines.training.data import to_unit_range
from pipelines.training.optim import EMA, set_lr


def mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def sample_generators(
    seed: int, stage_index: int, step: int, positions: list[int]
) -> list[torch.Generator]:
    """CPU generators for the samples at `positions` of the global batch of `step`."""
    return [torch.Generator().manual_seed(mix_seed(seed, stage_index, step, j)) for j in positions]


class VAELoss(nn.Module):
    """L1 + KL (+ perceptual, + adversarial against a discriminator passed in)."""

    def __init__(self, vae: VAE, perceptual: Perceptual | None = None):
        super().__init__()
        self.net = vae
        self.perceptual = perceptual

    def forward(self, video, generators, discriminator: PatchDiscriminator3d | None = None):
        return vae_loss(self.net, video, generators, self.perceptual, discriminator)


class DiscLoss(nn.Module):
    """Hinge loss of the VAE's 3D PatchGAN discriminator."""

    def __init__(self, discriminator: PatchDiscriminator3d):
        super().__init__()
        self.net = discriminator

    def forward(self, video: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        return discriminator_loss(self.net, video, recon)


class FlowLoss(nn.Module):
    """Rectified-flow loss of the DiT, averaged per sample so batch slices add up."""

    def __init__(self, dit: DiT, diffusion: DiffusionConfig):
        super().__init__()
        self.net = dit
        self.diffusion = diffusion

    def forward(
        self, x0, text_emb, text_mask, generators, fps=None, motion_score=None, camera=None
    ):
        cond = None  # a task drawn per sample; an orbit always starts from its first frame
        if camera is not None:
            cond = Cond(x0, frame_mask("image", x0.shape[2], batch=x0.shape[0]).to(x0.device))
        return flow_matching_loss(
            self.net, x0, text_emb, text_mask, self.diffusion, cond=cond, generator=generators,
            fps=fps, motion_score=motion_score, reduction="samples", camera=camera,
        )  # fmt: skip


@dataclass
class StageRun:
    """The pieces of the stage in progress (what a checkpoint must capture)."""

    name: str
    stage: StageConfig
    root: torch.nn.Module  # the loss module the step calls (maybe DDP/FSDP)
    net: torch.nn.Module  # the trained network inside it
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    disc: PatchDiscriminator3d | None = None  # the VAE's adversary, its loss root and opt
    disc_root: torch.nn.Module | None = None
    disc_opt: torch.optim.Optimizer | None = None


def vae_step(run: StageRun, batch: dict, generators, device, precision: str) -> tuple:
    """The VAE's loss on a batch of pixels (and, with a discriminator, what disc_step needs)."""
    video = to_unit_range(batch["video"].to(device, non_blocking=True))
    if run.disc is not None:
        run.disc.requires_grad_(False)  # the generator's adversarial term must not train it
    with autocast(device, precision):
        loss, logs, recon = run.root(video, generators, run.disc)
    if run.disc is not None:
        logs.update(_video=video, _recon=recon.detach())
    return loss, logs


def disc_step(run: StageRun, video: torch.Tensor, recon: torch.Tensor, precision: str) -> dict:
    """One discriminator update at the VAE's current learning rate."""
    run.disc.requires_grad_(True)
    set_lr(run.disc_opt, run.optimizer.param_groups[0]["lr"])
    with autocast(video.device, precision):
        loss = run.disc_root(video, recon)
    loss.backward()
    run.disc_opt.step()
    run.disc_opt.zero_grad(set_to_none=True)
    return {"disc_loss": loss.detach()}


def dit_step(run: StageRun, batch: dict, generators, device, precision: str, vae, text) -> tuple:
    """The flow-matching loss on cached latents, or on pixels encoded here by the frozen
    VAE with captions embedded by `text()` (the trainer's text cache)."""
    if "latents" in batch:  # from the latent cache
        x0 = batch["latents"].to(device, non_blocking=True).float()
        emb = batch["text_emb"].to(device, non_blocking=True).float()
        mask = batch["text_mask"].to(device, non_blocking=True)
    else:
        video = to_unit_range(batch["video"].to(device, non_blocking=True))
        with torch.no_grad(), autocast(device, precision):
            x0 = vae.encode(video).float()  # (B, C, T_lat, h, w), scaled
        emb, mask = text()(batch["caption"])
    extra = {}
    if run.net.cfg.micro_conditioning:
        fps = torch.full((x0.shape[0],), run.stage.fps, device=device)
        extra = {"fps": fps, "motion_score": batch["motion_score"].to(device)}
    if run.name == "mv":
        extra["camera"] = orbit_steps(batch["camera"], run.stage.fps).to(device)
    with autocast(device, precision):
        return run.root(x0, emb, mask, generators, **extra)


def orbit_steps(camera: torch.Tensor, fps: float) -> torch.Tensor:
    """(B, 2) elevation and degrees a second -> elevation and degrees a sampled frame:
    the DiT's camera input, whatever rate the stage samples clips at."""
    return torch.stack([camera[:, 0], camera[:, 1] / fps], dim=1)


class TrainingStopped(UsageError):
    """Training cannot go on (a non-finite loss); the message is one line."""


NO_BAD_STEP = 2**62


class FiniteWatch:
    """Remembers the first step whose loss or gradient norm was not finite, on the
    device (no host sync per step); `check` is called at log and checkpoint steps."""

    def __init__(self, device: torch.device):
        self.step = torch.full((), NO_BAD_STEP, dtype=torch.long, device=device)
        self.value = torch.zeros((), device=device)

    def update(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        newly = (~finite) & (self.step == NO_BAD_STEP)
        self.step = torch.where(newly, torch.full_like(self.step, step), self.step)
        self.value = torch.where(newly, loss.detach().float(), self.value)

    def check(self, d, stage: str, last_checkpoint) -> None:
        """Raise TrainingStopped on every rank if any rank saw a non-finite step."""
        step = d.all_reduce(self.step.clone(), "min")
        if int(step) == NO_BAD_STEP:
            return
        value = float(self.value)
        kind = "nan" if math.isnan(value) else ("inf" if math.isinf(value) else "finite")
        what = f"loss is {kind}" if kind != "finite" else "the gradient norm is not finite"
        where = (
            f"the last good checkpoint is {last_checkpoint}"
            if last_checkpoint
            else "no checkpoint was written yet"
        )
        raise TrainingStopped(f"{what} at {stage} step {int(step)}; {where}")
