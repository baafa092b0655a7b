"""What one training step computes, and the sample videos, for each kind of stage.

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

import numpy as np
import torch
from torch import nn

from model.config import DiffusionConfig
from model.diffusion import flow_matching_loss
from model.dit import DiT
from model.vae import VAE
from model.vae_loss import PatchDiscriminator3d, Perceptual, discriminator_loss, vae_loss


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

    def forward(self, x0, text_emb, text_mask, generators, fps=None, motion_score=None):
        return flow_matching_loss(
            self.net, x0, text_emb, text_mask, self.diffusion, generator=generators,
            fps=fps, motion_score=motion_score, reduction="samples",
        )  # fmt: skip
