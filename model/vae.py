"""3D causal VAE after CogVideoX (Yang et al. 2024) and diffusers' AutoencoderKLCogVideoX.

Every temporal operation looks only at the past: convolutions pad with copies of the
first frame (never future frames), normalisation is per frame, and there is no attention.
Hence (1) a 1-frame video is encoded as an image, and (2) a clip can be processed in time
chunks that carry a small cache (the last k-1 frames each conv saw) and give the same
result as one pass, with memory set by the chunk, not the clip length.

Frame arithmetic (4k+1 rule, for the default temporal_downsample = 4): the first frame
is encoded alone into latent frame 0; every following group of 4 frames becomes one
latent frame. A video of T = 1 + 4k frames gives 1 + k latent frames and decodes back to
1 + 4k frames. Each 2x temporal downsample keeps the first frame apart and averages the
following pairs (1 + 2m -> 1 + m); each 2x upsample keeps the first frame and doubles
the rest. Clips of other lengths must be trimmed by the caller (we raise, not guess).

Shapes: video (B, 3, T, H, W) in [-1, 1]; latents (B, 16, 1 + (T-1)/4, H/8, W/8),
multiplied by `scaling_factor`.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.config import VAEConfig
from model.diffusion import randn
from model.tiling import tiled_apply


class ChunkCache:
    """State carried from one time chunk to the next: the last frames each causal conv
    saw, keyed by module name, and whether the chunk being processed holds frame 0."""

    def __init__(self) -> None:
        self.frames: dict[str, torch.Tensor] = {}
        self.first_chunk = True


def _is_first(cache: ChunkCache | None) -> bool:
    return cache is None or cache.first_chunk


def check_frames(num_frames: int, temporal_downsample: int) -> None:
    """Raise a one-line ValueError unless num_frames = 1 + temporal_downsample * k."""
    if num_frames < 1:
        raise ValueError(f"video has {num_frames} frames; the VAE needs at least 1")
    if (num_frames - 1) % temporal_downsample:
        k = (num_frames - 1) // temporal_downsample
        raise ValueError(
            f"video has {num_frames} frames; the VAE needs 1 + {temporal_downsample}k frames "
            f"(first frame alone, then groups of {temporal_downsample}): trim to "
            f"{1 + temporal_downsample * k}"
        )


def _onednn() -> bool:
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled


def _per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # 2D ops applied to each frame independently: fold time into the batch.
    b = x.shape[0]
    y = module(rearrange(x, "b c t h w -> (b t) c h w"))
    return rearrange(y, "(b t) c h w -> b c t h w", b=b)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over (channels, H, W) of each frame separately: statistics over time
    would let later frames change earlier latents and break exact chunking."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _per_frame(super().forward, x)


class CausalConv3d(nn.Module):
    """3D conv that pads time only on the past side. With a ChunkCache, the pad is the
    previous chunk's last (k_t - 1) input frames; on the first chunk (or without a cache)
    it is the first frame repeated, as in CogVideoX."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3):
        super().__init__()
        self.time_pad = kernel - 1
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, padding=(0, kernel // 2, kernel // 2))
        self.cache_key = ""  # set by VAE to the module's name

    def forward(self, x: torch.Tensor, cache: ChunkCache | None = None) -> torch.Tensor:
        if self.time_pad == 0:
            return self.conv(x)
        if _is_first(cache):
            past = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)
        else:
            past = cache.frames[self.cache_key]
        x = torch.cat([past, x], dim=2)  # (B, C, T + k - 1, H, W)
        if cache is not None:
            # clone: a slice would keep the whole chunk alive until the next chunk
            cache.frames[self.cache_key] = x[:, :, -self.time_pad :].clone()
        return self._conv(x)  # (B, C_out, T, H, W)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        # PyTorch's CPU heuristic sends small batch-1 inputs (B*C*T*H <= 20480, i.e. most
        # time chunks) to its native im2col conv3d, which is ~10x slower than oneDNN and
        # allocates a C*27*T*H*W buffer; call oneDNN directly for float32 on the CPU
        if x.device.type == "cpu" and x.dtype == torch.float32 and _onednn():
            c = self.conv
            return torch.ops.aten.mkldnn_convolution(
                x.contiguous(), c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups
            )
        return self.conv(x)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, groups: int):
        super().__init__()
        self.norm1 = FrameGroupNorm(groups, in_ch, eps=1e-6)
        self.conv1 = CausalConv3d(in_ch, out_ch)
        self.norm2 = FrameGroupNorm(groups, out_ch, eps=1e-6)
        self.conv2 = CausalConv3d(out_ch, out_ch)
        self.skip = nn.Conv3d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cache: ChunkCache | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)  # (B, C_out, T, H, W)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return self.skip(x) + h


class Downsample(nn.Module):
    """2x spatial (strided conv per frame) and optionally 2x temporal (first frame kept
    alone, following pairs averaged: 1 + 2m -> 1 + m frames)."""

    def __init__(self, ch: int, time: bool):
        super().__init__()
        self.time = time
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor, cache: ChunkCache | None) -> torch.Tensor:
        if self.time:
            head = x[:, :, :1] if _is_first(cache) else x[:, :, :0]
            rest = x[:, :, head.shape[2] :]
            rest = rearrange(rest, "b c (t two) h w -> b c t two h w", two=2).mean(3)
            x = torch.cat([head, rest], dim=2)  # (B, C, T', H, W)
        # pad right/bottom only so H, W halve exactly (as in SD's VAE)
        return _per_frame(lambda f: self.conv(F.pad(f, (0, 1, 0, 1))), x)  # (B,C,T',H/2,W/2)


class Upsample(nn.Module):
    """2x spatial (nearest + conv per frame) and optionally 2x temporal (first frame kept,
    the rest doubled: 1 + m -> 1 + 2m frames)."""

    def __init__(self, ch: int, time: bool):
        super().__init__()
        self.time = time
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: ChunkCache | None) -> torch.Tensor:
        if self.time:
            head = x[:, :, :1] if _is_first(cache) else x[:, :, :0]
            rest = x[:, :, head.shape[2] :].repeat_interleave(2, dim=2)
            x = torch.cat([head, rest], dim=2)  # (B, C, T', H, W)
        x = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")  # (B, C, T', 2H, 2W)
        return _per_frame(self.conv, x)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        time_levels = cfg.temporal_downsample.bit_length() - 1
        self.conv_in = CausalConv3d(cfg.in_channels, chans[0])
        self.blocks = nn.ModuleList()
        prev = chans[0]
        for level, ch in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                self.blocks.append(ResBlock(prev, ch, cfg.norm_groups))
                prev = ch
            if level < len(chans) - 1:
                # time is compressed at the highest resolutions first (CogVideoX), which
                # makes the expensive full-resolution layers see fewer frames
                self.blocks.append(Downsample(ch, time=level < time_levels))
        self.mid = nn.ModuleList([ResBlock(prev, prev, cfg.norm_groups) for _ in range(2)])
        self.norm_out = FrameGroupNorm(cfg.norm_groups, prev, eps=1e-6)
        self.conv_out = CausalConv3d(prev, 2 * cfg.latent_channels)

    def forward(self, x: torch.Tensor, cache: ChunkCache | None = None) -> torch.Tensor:
        h = self.conv_in(x, cache)  # (B, C0, T, H, W)
        for block in [*self.blocks, *self.mid]:
            h = block(h, cache)  # down to (B, C_L, T_lat, H/8, W/8)
        return self.conv_out(F.silu(self.norm_out(h)), cache)  # (B, 2 * z, T_lat, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        time_levels = cfg.temporal_downsample.bit_length() - 1
        prev = chans[-1]
        self.conv_in = CausalConv3d(cfg.latent_channels, prev)
        self.mid = nn.ModuleList([ResBlock(prev, prev, cfg.norm_groups) for _ in range(2)])
        self.blocks = nn.ModuleList()
        for up_index, level in enumerate(reversed(range(len(chans)))):
            for _ in range(cfg.num_res_blocks + 1):
                self.blocks.append(ResBlock(prev, chans[level], cfg.norm_groups))
                prev = chans[level]
            if level > 0:
                # time is expanded at the lowest resolutions first (CogVideoX)
                self.blocks.append(Upsample(prev, time=up_index < time_levels))
        self.norm_out = FrameGroupNorm(cfg.norm_groups, prev, eps=1e-6)
        self.conv_out = CausalConv3d(prev, cfg.in_channels)

    def forward(self, z: torch.Tensor, cache: ChunkCache | None = None) -> torch.Tensor:
        h = self.conv_in(z, cache)  # (B, C_L, T_lat, h, w)
        for block in [*self.mid, *self.blocks]:
            h = block(h, cache)  # up to (B, C0, T, H, W)
        return self.conv_out(F.silu(self.norm_out(h)), cache)  # (B, 3, T, H, W)


class DiagonalGaussian:
    """The VAE posterior N(mean, exp(logvar)) over unscaled latents."""

    def __init__(self, moments: torch.Tensor, logvar_clamp: float = 20.0):
        self.mean, logvar = moments.chunk(2, dim=1)  # (B, z, T, h, w) each
        self.logvar = logvar.clamp(-logvar_clamp, logvar_clamp / 2)

    def sample(
        self, generator: torch.Generator | list[torch.Generator] | None = None
    ) -> torch.Tensor:
        """A draw from the posterior; `generator` may be one per sample (the noise of a
        sample then does not depend on its batch, as data-parallel training needs)."""
        shape, like = self.mean.shape, self.mean
        if isinstance(generator, (list, tuple)):  # float32 on each generator's device
            noise = randn(shape, generator, like.device).to(like.dtype)
        else:
            noise = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL to N(0, I) summed over latent elements, per sample: (B,)."""
        kl = 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)
        return kl.flatten(1).sum(1)


class VAE(nn.Module):
    """3D causal VAE. `encode(video) -> latents` and `decode(latents) -> video` are the
    inference API (chunked in time, tiled in space, scaled); `forward` is the training
    pass (one full pass, unscaled posterior)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        for name, module in self.named_modules():
            if isinstance(module, CausalConv3d):
                module.cache_key = name

    # -- shapes ----------------------------------------------------------------------
    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T_lat, h, w) of the latents of a frames x height x width video."""
        self._check_video_shape(frames, height, width)
        s, t = self.cfg.spatial_downsample, self.cfg.temporal_downsample
        return (self.cfg.latent_channels, 1 + (frames - 1) // t, height // s, width // s)

    def num_frames(self, latent_frames: int) -> int:
        """Pixel frames decoded from `latent_frames` latent frames (1 + 4 (n - 1))."""
        return 1 + self.cfg.temporal_downsample * (latent_frames - 1)

    def _check_video_shape(self, frames: int, height: int, width: int) -> None:
        check_frames(frames, self.cfg.temporal_downsample)
        s = self.cfg.spatial_downsample
        if height % s or width % s:
            raise ValueError(
                f"video is {width}x{height}; the VAE needs width and height divisible by {s}"
            )

    # -- training --------------------------------------------------------------------
    def encode_dist(self, video: torch.Tensor) -> DiagonalGaussian:
        """Posterior over unscaled latents, one full pass (training; keeps the graph)."""
        self._check_video_shape(*video.shape[2:])
        return DiagonalGaussian(self.encoder(video), self.cfg.logvar_clamp)

    def forward(
        self, video: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        """Training pass: (reconstruction (B, 3, T, H, W), posterior)."""
        posterior = self.encode_dist(video)
        return self.decoder(posterior.sample(generator)), posterior

    # -- inference -------------------------------------------------------------------
    def encode(
        self,
        video: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        chunked: bool = True,
        tiled: bool | None = None,
    ) -> torch.Tensor:
        """Video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k -> scaled latents (B, 16, 1 + k,
        H/8, W/8): the posterior mean, or a sample if `sample`. Chunked in time unless
        `chunked=False`; tiled in space when a side exceeds tile_px (or `tiled=True`)."""
        self._check_video_shape(*video.shape[2:])
        run = self._encode_chunks if chunked else self.encoder
        moments = self._maybe_tiled(
            run, video, tiled, self.cfg.tile_px, self.cfg.tile_overlap_px, 1 / self._s
        )
        posterior = DiagonalGaussian(moments, self.cfg.logvar_clamp)
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.cfg.scaling_factor

    def decode(
        self, latents: torch.Tensor, chunked: bool = True, tiled: bool | None = None
    ) -> torch.Tensor:
        """Scaled latents (B, 16, n, h, w) -> video (B, 3, 1 + 4 (n - 1), 8h, 8w), roughly
        in [-1, 1] (not clamped)."""
        z = latents / self.cfg.scaling_factor
        run = self._decode_chunks if chunked else self.decoder
        tile, overlap = self.cfg.tile_px // self._s, self.cfg.tile_overlap_px // self._s
        return self._maybe_tiled(run, z, tiled, tile, overlap, self._s)

    @property
    def _s(self) -> int:
        return self.cfg.spatial_downsample

    @staticmethod
    def _maybe_tiled(run, x, tiled: bool | None, tile: int, overlap: int, scale: float):
        # tile and overlap are in x's units (pixels to encode, latent cells to decode).
        # Tiles see their own GroupNorm statistics, so seams are blended, not exact.
        if tiled is None:
            tiled = max(x.shape[-2:]) > tile
        if not tiled:
            return run(x)
        return tiled_apply(run, x, tile, overlap, scale)

    def _encode_chunks(self, video: torch.Tensor) -> torch.Tensor:
        # frame 0 alone, then groups of temporal_downsample * chunk_latent_frames frames;
        # every chunk after the first is a multiple of 4 frames, so the pair averaging in
        # the time downsamples never straddles two chunks
        step = self.cfg.temporal_downsample * self.cfg.chunk_latent_frames
        return self._run_chunks(self.encoder, video, step)

    def _decode_chunks(self, z: torch.Tensor) -> torch.Tensor:
        return self._run_chunks(self.decoder, z, self.cfg.chunk_latent_frames)

    @staticmethod
    def _run_chunks(net: nn.Module, x: torch.Tensor, step: int) -> torch.Tensor:
        cache = ChunkCache()
        bounds = [0, *range(1, x.shape[2], step), x.shape[2]]
        outs = []
        for start, end in itertools.pairwise(bounds):
            outs.append(net(x[:, :, start:end], cache))  # (B, C', T_chunk', h', w')
            cache.first_chunk = False
        return torch.cat(outs, dim=2)


@torch.no_grad()
def estimate_scaling_factor(vae: VAE, videos: list[torch.Tensor]) -> float:
    """1 / std of the unscaled posterior means over some training clips (B, 3, T, H, W):
    the value for vae.cfg.scaling_factor after VAE training, so the DiT sees latents of
    roughly unit variance (the LDM recipe)."""
    means = [vae.encode(v, sample=False) / vae.cfg.scaling_factor for v in videos]
    return 1.0 / torch.cat([m.flatten() for m in means]).float().std().item()
