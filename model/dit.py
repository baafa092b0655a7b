"""Diffusion transformer over spacetime patches of the VAE latent.

Follows DiT (Peebles & Xie 2023: adaLN-Zero blocks, `initialize_weights`), Sora and
CogVideoX (1x2x2 spacetime patches, 3D RoPE, text tokens joined to video tokens in one
sequence with separate "expert" adaLN modulation per modality, QK-norm) and PixArt-alpha
(the cross-attention alternative, `text_mode='cross'`). Frame conditioning is a mask
channel plus masked clean latents concatenated on channels (SVD, CogVideoX-I2V); optional
fps / motion micro-conditioning and a camera path (SVD-MV's orbits) are added to the
timestep embedding (SVD).

Call: `DiT(cfg)(x_t, t, text_emb, text_mask, cond=Cond(...))` -> velocity like x_t.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from model.conditioning import Cond
from model.config import DiTConfig
from model.rope import apply_rope, rope_3d


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def sinusoidal(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) -> (B, dim) cos/sin features at geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device) / half)
    args = values.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """Scalar per sample (timestep, fps, motion score) -> (B, cond_dim) via sinusoidal
    features and an MLP (DiT's TimestepEmbedder). `scale` maps the value into the range
    the frequencies resolve (timesteps in [0, 1] are scaled by 1000, as in DiT)."""

    def __init__(self, cond_dim: int, scale: float = 1.0, freq_dim: int = 256):
        super().__init__()
        self.scale, self.freq_dim = scale, freq_dim
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        features = sinusoidal(values * self.scale, self.freq_dim)  # (B, freq_dim)
        return self.mlp(features.to(self.mlp[0].weight.dtype))  # (B, cond_dim)


class CameraEmbedder(nn.Module):
    """A camera path (B, 2) = (elevation, azimuth step per frame), degrees, -> (B, cond_dim):
    one ScalarEmbedder each, summed; a path of zeros embeds to exactly zero, so samples
    without a camera get the timestep condition the other tasks trained with."""

    def __init__(self, cond_dim: int):
        super().__init__()
        self.elevation = ScalarEmbedder(cond_dim)
        self.step = ScalarEmbedder(cond_dim)

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        given = (camera != 0).any(dim=-1, keepdim=True)  # (B, 1)
        emb = self.elevation(camera[:, 0]) + self.step(camera[:, 1])  # (B, cond_dim)
        return emb * given.to(emb.dtype)


class Attention(nn.Module):
    """Multi-head self-attention (or cross-attention when `context` is given) with RMS
    QK-norm (stabilises bf16 training at scale) and torch SDPA (flash/efficient kernels)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        split = "b s (h d) -> b h s d"
        q = rearrange(self.q(x), split, h=self.num_heads)  # (B, heads, S, head_dim)
        kv = self.kv(x if context is None else context)  # (B, S_kv, 2D)
        k, v = (rearrange(part, split, h=self.num_heads) for part in kv.chunk(2, dim=-1))
        # norms and rotation in float32 (precise, and the fused RMSNorm kernel needs input
        # and weight in one dtype under autocast); SDPA then gets one dtype again
        q, k = self.q_norm(q.float()), self.k_norm(k.float())
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        q, k = q.to(v.dtype), k.to(v.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, S, hd)
        return self.proj(rearrange(out, "b h s d -> b s (h d)"))  # (B, S, D)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """One transformer block. 'expert': text and video tokens share attention and MLP
    weights but get their own adaLN shift/scale/gate (CogVideoX). 'cross': video-only
    self-attention, cross-attention to text, MLP (PixArt)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        dim = cfg.hidden_dim
        self.expert = cfg.text_mode == "expert"
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(dim, int(dim * cfg.mlp_ratio))
        # 6 modulations (shift, scale, gate for attention and MLP), doubled for text experts
        self.adaLN = nn.Linear(cfg.cond_dim, (12 if self.expert else 6) * dim)
        if not self.expert:
            self.norm_cross = nn.LayerNorm(dim, eps=1e-6)
            self.cross_attn = Attention(dim, cfg.num_heads)

    def forward(
        self,
        x: torch.Tensor,
        text: torch.Tensor,
        c: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, N, D) video tokens; text (B, L, D); c (B, cond_dim) already SiLU'd
        mods = self.adaLN(c).chunk(12 if self.expert else 6, dim=-1)  # each (B, D)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mods[:6]
        if self.expert:
            t_shift_a, t_scale_a, t_gate_a, t_shift_m, t_scale_m, t_gate_m = mods[6:]
            num_text = text.shape[1]
            h = torch.cat(
                [
                    modulate(self.norm1(text), t_shift_a, t_scale_a),
                    modulate(self.norm1(x), shift_a, scale_a),
                ],
                dim=1,
            )  # (B, L + N, D)
            h = self.attn(h, rope, mask)  # (B, L + N, D)
            text = text + t_gate_a[:, None] * h[:, :num_text]
            x = x + gate_a[:, None] * h[:, num_text:]
            h = torch.cat(
                [
                    modulate(self.norm2(text), t_shift_m, t_scale_m),
                    modulate(self.norm2(x), shift_m, scale_m),
                ],
                dim=1,
            )
            h = self.mlp(h)  # (B, L + N, D)
            text = text + t_gate_m[:, None] * h[:, :num_text]
            x = x + gate_m[:, None] * h[:, num_text:]
            return x, text
        x = x + gate_a[:, None] * self.attn(modulate(self.norm1(x), shift_a, scale_a), rope)
        x = x + self.cross_attn(self.norm_cross(x), mask=mask, context=text)  # (B, N, D)
        x = x + gate_m[:, None] * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        return x, text


class FinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        patch_volume = math.prod(cfg.patch_size)
        self.norm = nn.LayerNorm(cfg.hidden_dim, elementwise_affine=False, eps=1e-6)
        self.adaLN = nn.Linear(cfg.cond_dim, 2 * cfg.hidden_dim)
        self.linear = nn.Linear(cfg.hidden_dim, patch_volume * cfg.latent_channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=-1)  # (B, D) each
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, N, p * C)


def pooled(text_emb: torch.Tensor, text_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the valid tokens: (B, L, D), (B, L) -> (B, D)."""
    if text_mask is None:
        return text_emb.mean(1)
    weights = text_mask.to(text_emb.dtype)[..., None]  # (B, L, 1)
    return (text_emb * weights).sum(1) / weights.sum(1).clamp(min=1)


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        in_ch = cfg.latent_channels * (2 if cfg.frame_conditioning else 1)
        in_ch += 1 if cfg.frame_conditioning else 0  # + the mask channel
        self.patch_embed = nn.Linear(in_ch * math.prod(cfg.patch_size), cfg.hidden_dim)
        self.text_proj = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(cfg.hidden_dim, cfg.hidden_dim),
        )
        # learned stand-in for "no text": one token, used for CFG's unconditional branch
        # and for the training-time text dropout
        self.null_text = nn.Parameter(torch.zeros(cfg.text_dim))
        self.t_embed = ScalarEmbedder(cfg.cond_dim, scale=1000.0)
        if cfg.micro_conditioning:
            self.fps_embed = ScalarEmbedder(cfg.cond_dim)
            self.motion_embed = ScalarEmbedder(cfg.cond_dim)
        if cfg.camera_conditioning:
            self.camera_embed = CameraEmbedder(cfg.cond_dim)
        if cfg.pooled_text:
            self.text_pool = nn.Linear(cfg.text_dim, cfg.cond_dim)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg)
        self.gradient_checkpointing = cfg.gradient_checkpointing
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def basic(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

        self.apply(basic)
        embedders = [self.t_embed]
        if self.cfg.micro_conditioning:
            embedders += [self.fps_embed, self.motion_embed]
        if self.cfg.camera_conditioning:
            embedders += [self.camera_embed.elevation, self.camera_embed.step]
        for embedder in embedders:
            for layer in embedder.mlp[0], embedder.mlp[2]:
                nn.init.normal_(layer.weight, std=0.02)
        nn.init.normal_(self.null_text, std=0.02)
        # adaLN-Zero: every residual branch starts closed and the output starts at 0, so
        # the untrained network is the identity on tokens and predicts zero velocity
        for block in self.blocks:
            nn.init.zeros_(block.adaLN.weight)
            nn.init.zeros_(block.adaLN.bias)
            if not block.expert:
                # the ungated cross-attention branch starts closed too (PixArt)
                nn.init.zeros_(block.cross_attn.proj.weight)
                nn.init.zeros_(block.cross_attn.proj.bias)
        for layer in self.final.adaLN, self.final.linear:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _rope(
        self, grid: tuple[int, int, int], num_prefix: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # built on the CPU in float64 and moved once per shape: rebuilding and copying
        # the tables (18 MB for 17k tokens) every step would cost a host-device transfer
        key = (grid, num_prefix, str(device))
        if key not in self._rope_cache:
            if len(self._rope_cache) >= 16:  # many bucket shapes: keep memory bounded
                self._rope_cache.clear()
            self._rope_cache[key] = rope_3d(
                grid, self.cfg.head_dim, self.cfg.rope_theta, num_prefix, device
            )
        return self._rope_cache[key]

    def null_text_batch(
        self, batch: int, length: int, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional text: (B, L, text_dim) holding the learned null token at
        position 0 and zeros after, and its mask (B, L) with only position 0 valid."""
        device = device or self.null_text.device
        emb = torch.zeros(batch, length, self.cfg.text_dim, device=device)
        emb[:, 0] = self.null_text.to(device)
        mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
        mask[:, 0] = True
        return emb, mask

    def drop_text(
        self, text_emb: torch.Tensor, text_mask: torch.Tensor, drop: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the text of samples where `drop` (B,) is True by the null text."""
        null_emb, null_mask = self.null_text_batch(*text_emb.shape[:2], text_emb.device)
        emb = torch.where(drop[:, None, None], null_emb.to(text_emb.dtype), text_emb)
        return emb, torch.where(drop[:, None], null_mask, text_mask)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        text_emb: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        cond: Cond | None = None,
        fps: torch.Tensor | None = None,
        motion_score: torch.Tensor | None = None,
        camera: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_t (B, C, T, H, W) noisy latents, t (B,) in [0, 1] (1 = pure noise),
        text_emb (B, L, text_dim) with text_mask (B, L) bool (None = all valid; text_emb
        None = the null text), cond: given clean latent frames, camera (B, 2): elevation
        and azimuth step per frame in degrees (None or zeros = no camera). Returns the
        predicted velocity (noise - data), shaped like x_t."""
        b, _, frames, height, width = x_t.shape
        pt, ph, pw = self.cfg.patch_size
        if frames % pt or height % ph or width % pw:
            raise ValueError(
                f"latent (T, H, W) = {(frames, height, width)} must be divisible by "
                f"patch_size {self.cfg.patch_size}"
            )
        if text_emb is None:
            text_emb, text_mask = self.null_text_batch(b, 1, x_t.device)
        if text_emb.shape[-1] != self.cfg.text_dim:
            raise ValueError(
                f"text embeddings have width {text_emb.shape[-1]}, the DiT expects "
                f"dit.text_dim = {self.cfg.text_dim}"
            )
        if self.cfg.frame_conditioning:
            if cond is None:
                cond = Cond(torch.zeros_like(x_t), torch.zeros(b, frames, device=x_t.device))
            x_t = torch.cat([x_t, cond.channels().to(x_t.dtype)], dim=1)  # (B, 2C+1, T, H, W)
        grid = (frames // pt, height // ph, width // pw)
        x = rearrange(
            x_t, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw
        )
        x = self.patch_embed(x)  # (B, N, D)
        text = self.text_proj(text_emb.to(x.dtype))  # (B, L, D)

        c = self.t_embed(t)  # (B, cond_dim)
        if self.cfg.micro_conditioning:
            if fps is None or motion_score is None:
                raise ValueError("this DiT has micro_conditioning: pass fps and motion_score")
            c = c + self.fps_embed(fps) + self.motion_embed(motion_score)
        if camera is not None:
            if not self.cfg.camera_conditioning:
                raise ValueError("this DiT has no camera_conditioning: it takes no camera path")
            c = c + self.camera_embed(camera.to(c.device))
        if self.cfg.pooled_text:
            c = c + self.text_pool(pooled(text_emb.to(c.dtype), text_mask))
        c = F.silu(c)

        expert = self.cfg.text_mode == "expert"
        num_text = text.shape[1]
        rope = self._rope(grid, num_text if expert else 0, x.device)  # (L + N or N, hd)
        mask = None
        # an all-valid mask is dropped so SDPA can use its fastest (flash) kernel
        if text_mask is not None and not bool(text_mask.all()):
            keys = text_mask.bool()
            if expert:
                keys = torch.cat([keys, keys.new_ones(b, x.shape[1])], dim=1)  # (B, L + N)
            mask = keys[:, None, None, :]  # (B, 1, 1, keys)

        for block in self.blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x, text = checkpoint(block, x, text, c, rope, mask, use_reentrant=False)
            else:
                x, text = block(x, text, c, rope, mask)  # (B, N, D), (B, L, D)

        out = self.final(x, c)  # (B, N, pt * ph * pw * C)
        return rearrange(
            out,
            "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)",
            t=grid[0], h=grid[1], w=grid[2], pt=pt, ph=ph, pw=pw,
        )  # fmt: skip
