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

from pathlib import Path

import numpy as np
import torch
from torch import nn

from curate.encode import write_video
from model.config import DiffusionConfig
from model.diffusion import flow_matching_loss
from model.dit import DiT
from model.sampler import sample
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


def video_to_uint8(video: torch.Tensor) -> list[np.ndarray]:
    """(3, T, H, W) in [-1, 1] -> T frames (H, W, 3) uint8."""
    frames = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return list(frames.permute(1, 2, 3, 0).cpu().numpy())


@torch.no_grad()
def write_reconstructions(
    folder: Path, vae: VAE, videos: torch.Tensor, fps: float, autocast
) -> list[Path]:
    """Each clip beside its reconstruction (left: input, right: VAE output)."""
    folder.mkdir(parents=True, exist_ok=True)
    with autocast():
        recon = vae.decode(vae.encode(videos))
    paths = []
    for i in range(videos.shape[0]):
        side = torch.cat([videos[i], recon[i].float()], dim=-1)  # (3, T, H, 2W)
        path = folder / f"recon-{i:02d}.mp4"
        write_video(path, video_to_uint8(side), fps)
        paths.append(path)
    return paths


@torch.no_grad()
def write_text_samples(
    folder: Path,
    dit: DiT,
    vae: VAE,
    text,
    prompts: list[str],
    *,
    frames: int,
    size: tuple[int, int],
    fps: float,
    steps: int,
    seed: int,
    diffusion: DiffusionConfig,
) -> list[Path]:
    """One video per prompt (seed + index), written as NN.mp4 with prompts.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, prompt in enumerate(prompts):
        emb, mask = text([prompt])
        extra = {}
        if dit.cfg.micro_conditioning:
            extra = {"fps": torch.tensor([fps]), "motion_score": torch.tensor([1.0])}
        video = sample(
            dit, vae, emb, mask, frames=frames, height=size[0], width=size[1], steps=steps,
            seed=seed + i, diffusion=diffusion, **extra,
        )  # fmt: skip
        path = folder / f"{i:02d}.mp4"
        write_video(path, video_to_uint8(video[0]), fps)
        paths.append(path)
    (folder / "prompts.txt").write_text(
        "".join(f"{i:02d}.mp4\t{p}\n" for i, p in enumerate(prompts))
    )
    return paths
