"""3D rotary position embedding over (time, height, width) of the patch grid
(RoFormer's RoPE, split per axis as in CogVideoX: 1/4 of each head for time, the rest
shared by height and width). Text tokens placed before the video tokens get the identity
rotation, so they carry no position.
"""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Head channels given to (time, height, width); each even, summing to head_dim."""
    dim_t = 2 * (head_dim // 8)
    dim_h = 2 * ((head_dim - dim_t) // 4)
    return dim_t, dim_h, head_dim - dim_t - dim_h


def _angles(positions: torch.Tensor, dim: int, theta: float) -> torch.Tensor:
    inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    return positions.double()[:, None] * inv_freq[None, :]  # (N, dim/2)


def rope_3d(
    grid: tuple[int, int, int],
    head_dim: int,
    theta: float = 10000.0,
    num_prefix: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (num_prefix + T*H*W, head_dim) in float32, for tokens in
    't h w' order after `num_prefix` unrotated (text) tokens."""
    t, h, w = grid
    pos_t, pos_h, pos_w = torch.meshgrid(
        torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"
    )
    dims = axis_dims(head_dim)
    angles = torch.cat(
        [
            _angles(pos.flatten(), dim, theta)
            for pos, dim in zip((pos_t, pos_h, pos_w), dims, strict=True)
        ],
        dim=-1,
    )  # (N, head_dim / 2)
    angles = torch.cat([torch.zeros(num_prefix, head_dim // 2, dtype=angles.dtype), angles])
    angles = torch.cat([angles, angles], dim=-1)  # (L + N, head_dim), rotate-half layout
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, S, head_dim) by the tables (S, head_dim); keeps x's dtype.
    Computed in float32: bf16 angles lose position detail on long sequences."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated * sin).to(x.dtype)
