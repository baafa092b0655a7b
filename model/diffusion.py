"""Rectified flow training (Liu et al. 2022; SD3, Esser et al. 2024): small functions for
timestep sampling, noising and the loss, wired in Python (sgm's split, not its YAML).

Convention: x_t = (1 - t) x_0 + t noise with t in [0, 1], t = 1 pure noise; the DiT
predicts the velocity v = noise - x_0, so sampling integrates dx/dt = v from 1 to 0.
Timesteps are logit-normal (SD3) and shifted towards noise for longer sequences: more
tokens carry more redundant signal, so the same t destroys less of it (SD3's
resolution-dependent shift, applied to the token count of video, as Open-Sora does).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from model.conditioning import Cond, random_cond
from model.config import DiffusionConfig

Generators = torch.Generator | list[torch.Generator] | None
"""One generator for the batch, or one per sample: with one per sample, a sample's noise,
timestep, text dropout and task do not depend on which other samples share its batch,
so a global batch split over N processes draws exactly what one process draws."""


def _draw(fn, shape: tuple[int, ...], generator: Generators, device, dtype) -> torch.Tensor:
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([_draw(fn, (1, *shape[1:]), g, device, dtype) for g in generator])
    gen_device = generator.device if generator is not None else device
    return fn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def randn(
    shape: tuple[int, ...],
    generator: Generators,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gaussian noise drawn on the generator's device (so a CPU seed gives the same
    numbers everywhere), then moved. A list of generators draws sample by sample."""
    return _draw(torch.randn, shape, generator, device, dtype)


def rand(shape: tuple[int, ...], generator: Generators, device: torch.device | str) -> torch.Tensor:
    """Uniform [0, 1) numbers, drawn like `randn`."""
    return _draw(torch.rand, shape, generator, device, torch.float32)


def num_tokens(latent_shape: tuple[int, ...], patch_size: tuple[int, int, int]) -> int:
    """Video tokens of a latent (..., T, H, W) cut into patches."""
    t, h, w = latent_shape[-3:]
    return (t // patch_size[0]) * (h // patch_size[1]) * (w // patch_size[2])


def timestep_shift(tokens: int, cfg: DiffusionConfig) -> float:
    """The shift for a sequence length: cfg.shift if set, else sqrt(tokens / base),
    never below 1 (sequences shorter than the base keep the plain logit-normal; a shift
    < 1 would starve tiny models of high-noise steps)."""
    if cfg.shift > 0:
        return cfg.shift
    return max(1.0, math.sqrt(tokens / cfg.shift_base_tokens))


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Map t to shift t / (1 + (shift - 1) t): shift > 1 moves timesteps towards noise."""
    return shift * t / (1 + (shift - 1) * t)


def sample_timesteps(
    batch: int,
    cfg: DiffusionConfig,
    tokens: int,
    generator: Generators = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(batch,) training timesteps: sigmoid of N(logit_mean, logit_std), then shifted."""
    u = randn((batch,), generator, device) * cfg.logit_std + cfg.logit_mean
    return shift_timesteps(torch.sigmoid(u), timestep_shift(tokens, cfg))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t noise, t (B,) broadcast over the other dims."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise


def drop_tokens(mask: torch.Tensor, rate: float, generator: Generators) -> torch.Tensor:
    """The text mask (B, L) with each valid token hidden at `rate`; a sample that would
    lose every token keeps its own mask."""
    kept = mask & (rand(tuple(mask.shape), generator, mask.device) >= rate)
    return torch.where(kept.any(1, keepdim=True), kept, mask)


def flow_matching_loss(
    dit: torch.nn.Module,
    x0: torch.Tensor,
    text_emb: torch.Tensor,
    text_mask: torch.Tensor | None,
    cfg: DiffusionConfig,
    cond: Cond | None = None,
    generator: Generators = None,
    fps: torch.Tensor | None = None,
    motion_score: torch.Tensor | None = None,
    reduction: Literal["elements", "samples"] = "elements",
    camera: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Velocity-matching MSE for one batch of scaled latents x0 (B, C, T, H, W).

    Caption tokens are hidden at cfg.token_drop_rate, then text is replaced by the DiT's
    null text at cfg.text_drop_rate (classifier-free guidance). `cond` None draws a
    conditioning task per sample with cfg.cond_probs (when the DiT takes frame
    conditioning). Given frames are excluded from the loss:
    their answer is in the input. `generator` may be a list, one per sample (see
    `Generators`). reduction 'elements' averages over every generated element of the
    batch; 'samples' averages each sample first, then the batch, so the mean of the
    losses of equal parts of a batch equals the loss of the whole (data parallelism).
    Returns (loss, logs of detached tensors)."""
    b = x0.shape[0]
    if reduction not in ("elements", "samples"):
        raise ValueError(f"reduction must be 'elements' or 'samples', got {reduction!r}")
    if text_mask is None:
        text_mask = torch.ones(text_emb.shape[:2], dtype=torch.bool, device=x0.device)
    if cfg.token_drop_rate > 0:
        text_mask = drop_tokens(text_mask, cfg.token_drop_rate, generator)
    if cfg.text_drop_rate > 0:
        drop = rand((b,), generator, x0.device)
        text_emb, text_mask = dit.drop_text(text_emb, text_mask, drop < cfg.text_drop_rate)
    if cond is None and dit.cfg.frame_conditioning:
        cond = random_cond(x0, cfg.cond_probs, generator)

    tokens = num_tokens(x0.shape, dit.cfg.patch_size)
    t = sample_timesteps(b, cfg, tokens, generator, x0.device)  # (B,)
    noise = randn(tuple(x0.shape), generator, x0.device, x0.dtype)
    x_t = add_noise(x0, noise, t)  # (B, C, T, H, W)
    v_pred = dit(
        x_t, t, text_emb, text_mask, cond=cond, fps=fps, motion_score=motion_score, camera=camera
    )
    err = F.mse_loss(v_pred.float(), (noise - x0).float(), reduction="none")  # (B,C,T,H,W)
    keep = torch.ones_like(err[:, :1, :, :1, :1])  # (B, 1, T, 1, 1)
    if cond is not None:
        keep = (~cond.mask)[:, None, :, None, None].to(err.dtype)
    dims = (1, 2, 3, 4) if reduction == "samples" else (0, 1, 2, 3, 4)
    loss = (err * keep).sum(dims) / keep.expand_as(err).sum(dims).clamp(min=1)
    loss = loss.mean()
    # detached tensors, not floats: calling .item() every step would stall a GPU
    return loss, {"loss": loss.detach(), "t_mean": t.mean().detach()}
