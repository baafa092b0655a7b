"""Videos written as H.264 mp4: the trainer's samples and reconstructions, and what
`lvd generate` writes. One loop turns prompts into videos for both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from curate.encode import write_video
from model.config import DiffusionConfig
from model.dit import DiT
from model.precision import autocast
from model.sampler import Cond, sample
from model.vae import VAE
from pipelines.common.progress import progress_bar
from pipelines.training.data import to_unit_range


def video_to_uint8(video: torch.Tensor) -> list[np.ndarray]:
    """(3, T, H, W) in [-1, 1] -> T frames (H, W, 3) uint8."""
    frames = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return list(frames.permute(1, 2, 3, 0).cpu().numpy())


@torch.no_grad()
def write_prompt_videos(
    paths: list[Path],
    prompts: list[str],
    dit: DiT,
    vae: VAE,
    text,
    *,
    frames: int,
    size: tuple[int, int],
    fps: float,
    steps: int,
    seed: int,
    diffusion: DiffusionConfig,
    cfg_scale: float | None = None,
    cond: Cond | None = None,
    motion_score: float = 1.0,
    camera: torch.Tensor | None = None,
    progress: bool = False,
) -> None:
    """Video i for prompts[i] with seed + i, written to paths[i]. `text` maps a list of
    prompts to (embeddings, mask); an empty prompt is the DiT's null text, unguided; fps
    and motion_score feed the DiT's micro-conditioning when it has it; `cond` holds given
    frames (image-to-video, interpolation); `camera` (1, 2) is an orbit's path."""
    extra = {}
    if dit.cfg.micro_conditioning:
        extra = {"fps": torch.tensor([fps]), "motion_score": torch.tensor([motion_score])}
    jobs = list(enumerate(zip(prompts, paths, strict=True)))
    for i, (prompt, path) in progress_bar(jobs, unit="video") if progress else jobs:
        if prompt:
            emb, mask, scale = *text([prompt]), cfg_scale
        else:
            emb, mask, scale = *dit.null_text_batch(1, 1), 1.0
        video = sample(
            dit, vae, emb, mask, frames=frames, height=size[0], width=size[1], steps=steps,
            cfg_scale=scale, seed=seed + i, cond=cond, diffusion=diffusion, camera=camera,
            **extra,
        )  # fmt: skip
        write_video(path, video_to_uint8(video[0]), fps)


def write_text_samples(
    folder: Path, dit: DiT, vae: VAE, text, prompts: list[str], **settings
) -> list[Path]:
    """The trainer's samples: NN.mp4 per prompt, with prompts.txt naming each one's
    prompt. `settings` are those of write_prompt_videos."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:02d}.mp4" for i in range(len(prompts))]
    write_prompt_videos(paths, prompts, dit, vae, text, **settings)
    (folder / "prompts.txt").write_text(
        "".join(f"{p.name}\t{q}\n" for p, q in zip(paths, prompts, strict=True))
    )
    return paths


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


def write_vae_samples(
    folder: Path, vae_cfg, weights: dict, videos: torch.Tensor, fps: float, device, precision
) -> None:
    """Reconstructions by a VAE holding `weights` (the run's EMA ones) of `videos` (uint8)."""
    with torch.random.fork_rng(devices=[]):  # the run's RNG stream stays as it is
        vae = VAE(vae_cfg).to(device).eval()
    vae.load_state_dict(weights)
    pixels = to_unit_range(videos.to(device))
    write_reconstructions(folder, vae, pixels, fps, lambda: autocast(device, precision))


def write_dit_samples(
    folder: Path, dit_cfg, weights: dict, vae: VAE, text, prompts: list[str], device, **settings
) -> None:
    """Text samples by a DiT holding `weights`; `settings` as for write_prompt_videos."""
    with torch.random.fork_rng(devices=[]):
        dit = DiT(dit_cfg).to(device).eval()
    dit.load_state_dict(weights)
    write_text_samples(folder, dit, vae, text, prompts, **settings)
