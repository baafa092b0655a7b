"""Parameters and FLOPs per sample of a preset for a clip shape.

DiT FLOPs are analytic (matmuls and attention, 2 FLOPs per multiply-add, as in
Kaplan et al. and PaLM's MFU accounting; norms, RoPE and activations are ignored);
a test checks them against torch's FlopCounterMode. Training costs 3x the forward
(backward = 2x); activation recomputation under gradient checkpointing is not counted,
by the MFU convention. VAE FLOPs are counted by FlopCounterMode on the meta device, so
nothing is allocated even for xl at 720p.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from model.config import DiTConfig, ModelConfig, preset
from model.dit import DiT
from model.vae import VAE


def dit_forward_flops(cfg: DiTConfig, grid: tuple[int, int, int], text_len: int) -> int:
    """Forward FLOPs of the DiT for one sample whose patch grid is (T, H, W) tokens."""
    n, length, d = math.prod(grid), text_len, cfg.hidden_dim
    hidden = int(d * cfg.mlp_ratio)
    in_ch = cfg.latent_channels * 2 + 1 if cfg.frame_conditioning else cfg.latent_channels
    patch = math.prod(cfg.patch_size)
    flops = 2 * n * in_ch * patch * d  # patch embedding
    flops += 2 * length * (cfg.text_dim * d + d * d)  # text projection MLP
    flops += 2 * n * d * patch * cfg.latent_channels  # final layer
    per_block_cond = 2 * cfg.cond_dim * d * (12 if cfg.text_mode == "expert" else 6)
    if cfg.text_mode == "expert":
        s = n + length
        block = 2 * s * d * 4 * d  # q, k, v, out projections over text + video
        block += 4 * s * s * d  # Q K^T and A V
        block += 4 * s * d * hidden  # MLP
    else:
        block = 2 * n * d * 4 * d + 4 * n * n * d  # self-attention
        block += 2 * n * d * 2 * d + 2 * length * d * 2 * d + 4 * n * length * d  # cross
        block += 4 * n * d * hidden  # MLP
    flops += cfg.depth * (block + per_block_cond)
    embed = 2 * (256 * cfg.cond_dim + cfg.cond_dim**2)
    flops += embed * (3 if cfg.micro_conditioning else 1) + 2 * cfg.cond_dim * 2 * d
    return flops


def count_params(module_cls, cfg) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in module_cls(cfg).parameters())


def _counted_flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def vae_flops(cfg: ModelConfig, frames: int, height: int, width: int) -> tuple[int, int]:
    """(encode, decode) FLOPs of one clip in a single pass, counted on the meta device."""
    with torch.device("meta"):
        vae = VAE(cfg.vae)
        video = torch.empty(1, cfg.vae.in_channels, frames, height, width)
        latents = torch.empty(1, *vae.latent_shape(frames, height, width))
    return _counted_flops(lambda: vae.encoder(video)), _counted_flops(lambda: vae.decoder(latents))


def model_stats(
    cfg: ModelConfig | str, frames: int, height: int, width: int, vae: bool = True
) -> dict[str, float]:
    """Parameters and per-sample FLOPs of a preset (name or ModelConfig) for a clip of
    frames x height x width pixels (frames = 1 + 4k), text at its max_length."""
    if isinstance(cfg, str):
        cfg = preset(cfg)
    s, t = cfg.vae.spatial_downsample, cfg.vae.temporal_downsample
    latent = (1 + (frames - 1) // t, height // s, width // s)
    pt, ph, pw = cfg.dit.patch_size
    grid = (latent[0] // pt, latent[1] // ph, latent[2] // pw)
    forward = dit_forward_flops(cfg.dit, grid, cfg.text_encoder.max_length)
    stats = {
        "dit_params": count_params(DiT, cfg.dit),
        "vae_params": count_params(VAE, cfg.vae),
        "video_tokens": math.prod(grid),
        "text_tokens": cfg.text_encoder.max_length,
        "dit_forward_flops": forward,
        "dit_train_flops": 3 * forward,
    }
    if vae:
        stats["vae_encode_flops"], stats["vae_decode_flops"] = vae_flops(cfg, frames, height, width)
    return stats
