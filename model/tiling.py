"""Spatial tiling with linear blending, for VAE encode/decode of frames too large to run
in one pass (the overlap-and-blend scheme of diffusers' tiled VAE, written generically:
any function that maps a (B, C, T, h, w) tile to (B, C', T', h*s, w*s) can be tiled).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length `tile` covering [0, size) with at least `overlap`
    shared cells; the last tile is pushed back to end exactly at `size`."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def _ramp(length: int, overlap: int, ramp_in: bool, ramp_out: bool) -> torch.Tensor:
    # Weights rise across the overlap at edges shared with a neighbour and stay 1 at the
    # frame border; the +0.5 keeps every weight > 0 so the normalising sum never is 0.
    w = torch.ones(length)
    if overlap > 0:
        ramp = (torch.arange(min(overlap, length)) + 0.5) / overlap
        if ramp_in:
            w[: len(ramp)] = torch.minimum(w[: len(ramp)], ramp)
        if ramp_out:
            w[length - len(ramp) :] = torch.minimum(w[length - len(ramp) :], ramp.flip(0))
    return w


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """Apply `fn` to overlapping spatial tiles of `x` (B, C, T, H, W) and blend the outputs.

    `scale` is the output/input spatial ratio of `fn` (1/8 for an encoder, 8 for a
    decoder); tile starts times `scale` must be integers (callers use tiles and overlaps
    that are multiples of the downsampling factor). Each output pixel is the weighted
    mean of the tiles covering it, so a purely local `fn` is reproduced exactly.
    """
    height, width = x.shape[-2:]
    out = weight = None
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for top in rows:
        for left in cols:
            y = fn(x[..., top : top + tile, left : left + tile])  # (B, C', T', h', w')
            if out is None:
                out_h, out_w = round(height * scale), round(width * scale)
                out = y.new_zeros(*y.shape[:-2], out_h, out_w)
                weight = y.new_zeros(out_h, out_w)
            h, w = y.shape[-2:]
            ov = round(overlap * scale)
            wy = _ramp(h, ov, top > 0, top + tile < height)
            wx = _ramp(w, ov, left > 0, left + tile < width)
            tile_w = (wy[:, None] * wx[None, :]).to(y)  # (h', w')
            oy, ox = round(top * scale), round(left * scale)
            out[..., oy : oy + h, ox : ox + w] += y * tile_w
            weight[oy : oy + h, ox : ox + w] += tile_w
    return out / weight
