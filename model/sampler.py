"""Samplers for the rectified-flow DiT: Euler and Heun (second order, EDM's Algorithm 1
with the last step Euler), classifier-free guidance with the DiT's learned null text,
and conditioning frames held on their noising path (so their marginals match training)
and exactly clean at t = 0.

`sample(dit, vae, text_emb, text_mask, frames=, height=, width=, ...)` -> video;
`sample_latents(...)` stops before the VAE.
"""

from __future__ import annotations

from typing import Literal

import torch

from model.conditioning import Cond
from model.config import DiffusionConfig
from model.diffusion import add_noise, num_tokens, randn, shift_timesteps, timestep_shift
from model.dit import DiT
from model.precision import autocast
from model.vae import VAE


def timestep_schedule(steps: int, shift: float) -> torch.Tensor:
    """steps + 1 times from 1 (noise) to 0 (data), shifted like training timesteps."""
    return shift_timesteps(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift)


@torch.no_grad()
def sample_latents(
    dit: DiT,
    text_emb: torch.Tensor,
    text_mask: torch.Tensor | None,
    latent_shape: tuple[int, int, int, int],
    *,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    method: Literal["euler", "heun"] = "euler",
    cond: Cond | None = None,
    fps: torch.Tensor | None = None,
    motion_score: torch.Tensor | None = None,
    camera: torch.Tensor | None = None,
    diffusion: DiffusionConfig | None = None,
) -> torch.Tensor:
    """Scaled latents (B, C, T, H, W) for text embeddings (B, L, text_dim).

    latent_shape is (C, T, H, W) (VAE.latent_shape gives it). The seed fixes the initial
    noise (drawn on the CPU, so it is the same on every device). cfg_scale 1 disables
    guidance; the unconditional branch is the null text with the same conditioning
    frames. steps and cfg_scale default to diffusion.sample_steps and .cfg_scale; the
    shift comes from `diffusion` (default DiffusionConfig()) and the token count, as in
    training.
    """
    diffusion = diffusion or DiffusionConfig()
    steps = diffusion.sample_steps if steps is None else steps
    cfg_scale = diffusion.cfg_scale if cfg_scale is None else cfg_scale
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = next(dit.parameters()).device
    b = text_emb.shape[0]
    text_emb = text_emb.to(device)
    if text_mask is None:
        text_mask = torch.ones(text_emb.shape[:2], dtype=torch.bool)
    text_mask = text_mask.to(device)
    guided = cfg_scale != 1.0
    if guided:
        null_emb, null_mask = dit.null_text_batch(b, text_emb.shape[1], device)
        text_emb = torch.cat([text_emb, null_emb.to(text_emb.dtype)])  # (2B, L, text_dim)
        text_mask = torch.cat([text_mask, null_mask])
    if cond is not None:
        cond = Cond(cond.latents.to(device).float(), cond.mask.to(device))
    branch_cond = cond
    if guided and cond is not None:
        branch_cond = Cond(torch.cat([cond.latents] * 2), torch.cat([cond.mask] * 2))

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        xs = torch.cat([x, x]) if guided else x
        ts = torch.full((xs.shape[0],), t, device=device)
        extra = {}
        if fps is not None:
            extra["fps"] = fps.to(device).repeat(2 if guided else 1)
        if motion_score is not None:
            extra["motion_score"] = motion_score.to(device).repeat(2 if guided else 1)
        if camera is not None:  # both branches see the camera: guidance is on the text
            extra["camera"] = camera.to(device).repeat(2 if guided else 1, 1)
        with autocast(device):
            v = dit(xs, ts, text_emb, text_mask, cond=branch_cond, **extra).float()
        if not guided:
            return v
        v_text, v_null = v.chunk(2)
        return v_null + cfg_scale * (v_text - v_null)

    generator = torch.Generator().manual_seed(seed)
    noise = randn((b, *latent_shape), generator, device)  # (B, C, T, H, W)
    times = timestep_schedule(
        steps, timestep_shift(num_tokens(latent_shape, dit.cfg.patch_size), diffusion)
    )

    def hold_given(x: torch.Tensor, t: float) -> torch.Tensor:
        # given frames follow their own noising path (1 - t) x0 + t noise, exactly what
        # the DiT saw in training, and land on the clean latents at t = 0
        if cond is None:
            return x
        given = add_noise(cond.latents, noise, torch.full((b,), t, device=device))
        return torch.where(cond.mask[:, None, :, None, None], given, x)

    x = hold_given(noise, 1.0)
    for t_now, t_next in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
        dt = t_next - t_now  # negative: integrating from noise to data
        v = velocity(x, t_now)
        x_next = x + dt * v
        if method == "heun" and t_next > 0:
            x_next = x + dt * 0.5 * (v + velocity(hold_given(x_next, t_next), t_next))
        x = hold_given(x_next, t_next)
    return x


@torch.no_grad()
def sample(
    dit: DiT,
    vae: VAE,
    text_emb: torch.Tensor,
    text_mask: torch.Tensor | None,
    *,
    frames: int,
    height: int,
    width: int,
    **kwargs,
) -> torch.Tensor:
    """Video (B, 3, frames, height, width) in [-1, 1]; frames = 1 + 4k, sides divisible
    by 8. Keyword arguments are those of `sample_latents` (steps, cfg_scale, seed,
    method, cond, fps, motion_score, camera, diffusion)."""
    latents = sample_latents(
        dit, text_emb, text_mask, vae.latent_shape(frames, height, width), **kwargs
    )
    with autocast(latents.device):
        video = vae.decode(latents.to(next(vae.parameters()).device))
    return video.float().clamp(-1, 1)


@torch.no_grad()
def encode_given_frames(vae: VAE, frames: torch.Tensor, num_latent_frames: int, task: str) -> Cond:
    """Conditioning for generation from pixel frames (B, 3, n, H, W) in [-1, 1]:
    'image': n = 1, the first frame of the video; 'continue': n = 1 + 4m, the video's
    first frames (its 1 + m latent frames are given); 'interpolate': n = 2, first and
    last frame, each encoded as an image. (The last latent frame of a training clip
    summarises 4 frames, not one image: a static end frame matches it best.)"""
    n = frames.shape[2]
    if task == "interpolate":
        if n != 2:
            raise ValueError(f"interpolate needs 2 frames (first, last), got {n}")
        first, last = (vae.encode(frames[:, :, i : i + 1]) for i in (0, 1))
        given = [first, last]
    elif task in ("image", "continue"):
        if task == "image" and n != 1:
            raise ValueError(f"image-to-video needs 1 frame, got {n}")
        given = [vae.encode(frames)]
    else:
        raise ValueError(f"task must be 'image', 'continue' or 'interpolate', got {task!r}")
    b, c, _, h, w = given[0].shape
    latents = given[0].new_zeros(b, c, num_latent_frames, h, w)
    mask = torch.zeros(b, num_latent_frames, dtype=torch.bool, device=latents.device)
    if given[0].shape[2] >= num_latent_frames:
        raise ValueError(
            f"{given[0].shape[2]} given latent frames leave nothing to generate in "
            f"{num_latent_frames}"
        )
    latents[:, :, : given[0].shape[2]] = given[0]
    mask[:, : given[0].shape[2]] = True
    if task == "interpolate":
        latents[:, :, -1:] = given[1]
        mask[:, -1] = True
    return Cond(latents, mask)
