"""Model config: one dataclass per part (VAE, DiT, text encoder, diffusion), bundled in
`ModelConfig`, and `PRESETS` from tiny (CPU tests) to xl (~10B DiT).

Each field's docstring is its documentation; `__post_init__` checks values and starts
every message with the field name (the loader prefixes the section, e.g.
"dit.depth must be > 0"). Sizes follow CogVideoX (VAE, expert DiT, T5-XXL at 226 tokens)
and DiT's habit of presets as plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _power_of_two(name: str, value: int) -> None:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two (1, 2, 4, 8, ...), got {value}")


@dataclass
class VAEConfig:
    in_channels: int = 3
    """Pixel channels (RGB)."""
    latent_channels: int = 16
    """Channels of the latent (CogVideoX: 16)."""
    base_channels: int = 128
    """Channels of the first (full resolution) level; level i has base * channel_mults[i]."""
    channel_mults: tuple[int, ...] = (1, 2, 2, 4)
    """Channel multiplier per resolution level; there are len - 1 downsamples."""
    num_res_blocks: int = 2
    """Residual blocks per encoder level (the decoder has one more, as in SD/CogVideoX)."""
    spatial_downsample: int = 8
    """Spatial compression (power of two); must equal 2 ** (len(channel_mults) - 1)."""
    temporal_downsample: int = 4
    """Temporal compression (power of two, <= spatial_downsample); videos need
    1 + temporal_downsample * k frames."""
    norm_groups: int = 32
    """Groups of the per-frame GroupNorm (must divide every level's channels)."""
    scaling_factor: float = 0.7
    """Latents are multiplied by this after encoding (and divided before decoding) so
    the DiT sees roughly unit variance (CogVideoX-5B uses 0.7); after training a VAE, set
    it from vae.estimate_scaling_factor."""
    logvar_clamp: float = 20.0
    """Posterior log-variance is clamped to [-clamp, clamp / 2] for numerical safety."""
    chunk_latent_frames: int = 2
    """Latent frames per chunk in chunked encode/decode (memory grows with this, not with
    clip length)."""
    tile_px: int = 512
    """Frames larger than this (either side, pixels) are encoded/decoded in spatial tiles."""
    tile_overlap_px: int = 64
    """Overlap between neighbouring tiles in pixels; blended linearly."""
    kl_weight: float = 1e-6
    """Weight of the KL term of the VAE loss."""
    l2_weight: float = 0.0
    """Weight of a mean squared error term beside the L1 one (CogVideoX's VAE trains on
    L2): it weighs large errors more, so a small object's wrong colour is not outvoted
    by many background pixels that are nearly right."""
    perceptual_weight: float = 0.0
    """Weight of the VGG16 perceptual term (0 = off; needs vgg16 weights, see vae_loss)."""
    perceptual_weights_path: str = ""
    """Local safetensors/pt file with torchvision vgg16 weights; empty = torchvision's."""
    adversarial_weight: float = 0.0
    """Weight of the 3D PatchGAN hinge term for the generator (0 = off)."""

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        for name in ("in_channels", "latent_channels", "base_channels", "norm_groups"):
            _positive(name, getattr(self, name))
        if not self.channel_mults or any(m <= 0 for m in self.channel_mults):
            raise ValueError(f"channel_mults must be positive integers, got {self.channel_mults}")
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")
        _power_of_two("spatial_downsample", self.spatial_downsample)
        _power_of_two("temporal_downsample", self.temporal_downsample)
        if self.spatial_downsample != 2 ** (len(self.channel_mults) - 1):
            raise ValueError(
                f"spatial_downsample ({self.spatial_downsample}) must equal "
                f"2 ** (len(channel_mults) - 1) = {2 ** (len(self.channel_mults) - 1)}"
            )
        if self.temporal_downsample > self.spatial_downsample:
            raise ValueError(
                f"temporal_downsample ({self.temporal_downsample}) must be <= "
                f"spatial_downsample ({self.spatial_downsample})"
            )
        for mult in self.channel_mults:
            if (self.base_channels * mult) % self.norm_groups:
                raise ValueError(
                    f"norm_groups ({self.norm_groups}) must divide every level's channels "
                    f"(base_channels * mult = {self.base_channels * mult})"
                )
        _positive("scaling_factor", self.scaling_factor)
        _positive("logvar_clamp", self.logvar_clamp)
        _positive("chunk_latent_frames", self.chunk_latent_frames)
        _positive("tile_px", self.tile_px)
        if self.tile_px % self.spatial_downsample:
            raise ValueError(f"tile_px must be a multiple of {self.spatial_downsample}")
        if self.tile_overlap_px % self.spatial_downsample or not (
            0 <= self.tile_overlap_px < self.tile_px
        ):
            raise ValueError(
                f"tile_overlap_px must be a multiple of {self.spatial_downsample} in "
                f"[0, tile_px), got {self.tile_overlap_px}"
            )
        for name in ("kl_weight", "l2_weight", "perceptual_weight", "adversarial_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DiTConfig:
    latent_channels: int = 16
    """Channels of the VAE latent the DiT denoises (must match vae.latent_channels)."""
    hidden_dim: int = 2048
    """Transformer width D."""
    depth: int = 28
    """Number of DiT blocks."""
    num_heads: int = 16
    """Attention heads; head_dim = hidden_dim / num_heads must be a multiple of 8 (3D RoPE)."""
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of hidden_dim."""
    cond_dim: int = 512
    """Width of the timestep (+ micro-conditioning) embedding feeding adaLN (CogVideoX: 512)."""
    patch_size: tuple[int, int, int] = (1, 2, 2)
    """Spacetime patch (time, height, width) in latent cells (Sora/CogVideoX: 1x2x2)."""
    text_dim: int = 4096
    """Width of the text encoder's output (T5-XXL: 4096)."""
    text_mode: Literal["expert", "cross"] = "expert"
    """How text joins video: 'expert' = one sequence, per-modality adaLN (CogVideoX);
    'cross' = video self-attention then cross-attention to text (PixArt)."""
    frame_conditioning: bool = True
    """Concatenate a conditioning mask and masked clean latents on channels, so one model
    does text-to-video, image-to-video, interpolation and continuation."""
    micro_conditioning: bool = False
    """Add fps and motion_score embeddings to the timestep embedding (SVD)."""
    pooled_text: bool = False
    """Add the caption's mean token, through one linear layer, to the timestep embedding
    that drives every block's adaLN (SD3 and Flux pool their text the same way): each
    word then moves every block's modulation by its own amount, whatever words come with
    it, beside the per-token attention."""
    camera_conditioning: bool = False
    """Add a camera-path embedding (elevation, azimuth step per frame) to the timestep
    embedding (SVD-MV's orbits); a zero path means "no camera given"."""
    rope_theta: float = 10000.0
    """Base of the rotary frequencies."""
    gradient_checkpointing: bool = False
    """Recompute block activations in backward (saves memory, costs ~1 extra forward)."""

    def __post_init__(self):
        self.patch_size = tuple(self.patch_size)
        for name in ("latent_channels", "hidden_dim", "depth", "num_heads", "cond_dim"):
            _positive(name, getattr(self, name))
        _positive("mlp_ratio", self.mlp_ratio)
        _positive("text_dim", self.text_dim)
        _positive("rope_theta", self.rope_theta)
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide hidden_dim ({self.hidden_dim})"
            )
        if (self.hidden_dim // self.num_heads) % 8:
            raise ValueError(
                f"num_heads: head_dim = hidden_dim / num_heads = "
                f"{self.hidden_dim // self.num_heads} must be a multiple of 8 for 3D RoPE"
            )
        if len(self.patch_size) != 3 or any(p < 1 for p in self.patch_size):
            raise ValueError(f"patch_size must be three positive ints, got {self.patch_size}")
        if self.text_mode not in ("expert", "cross"):
            raise ValueError(f"text_mode must be 'expert' or 'cross', got {self.text_mode!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads


@dataclass
class TextEncoderConfig:
    model: str = "google/t5-v1_1-xxl"
    """Hugging Face id or local folder of a T5 or UMT5 encoder (and its tokenizer)."""
    dim: int = 4096
    """d_model of that encoder; checked at load (must match dit.text_dim)."""
    max_length: int = 226
    """Prompts are padded/truncated to this many tokens (CogVideoX: 226)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """Weights dtype of the frozen encoder on CUDA (CPU always runs float32)."""

    def __post_init__(self):
        if not self.model:
            raise ValueError("model must be a Hugging Face id or a local folder")
        _positive("dim", self.dim)
        _positive("max_length", self.max_length)
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")


@dataclass
class DiffusionConfig:
    logit_mean: float = 0.0
    """Mean of the logit-normal timestep density (SD3: 0)."""
    logit_std: float = 1.0
    """Std of the logit-normal timestep density (SD3: 1)."""
    shift: float = 0.0
    """Fixed timestep shift; 0 = shift by token count: max(1, sqrt(tokens / shift_base_tokens))."""
    shift_base_tokens: int = 256
    """Token count at which the automatic shift is 1 (SD3: a 256x256 image)."""
    text_drop_rate: float = 0.1
    """Share of training samples whose text is replaced by the null text (for CFG)."""
    token_drop_rate: float = 0.0
    """Share of caption tokens hidden from the DiT in training, each on its own (at least
    one kept a sample): a word must then steer the video without the words it came with,
    which helps prompts whose words no training caption held together."""
    cond_probs: tuple[float, float, float, float] = (0.7, 0.15, 0.05, 0.1)
    """Training share of tasks: text-to-video, image-to-video, interpolation, continuation."""
    sample_steps: int = 50
    """Default number of sampler steps."""
    cfg_scale: float = 6.0
    """Default classifier-free guidance scale (1 = no guidance)."""

    def __post_init__(self):
        self.cond_probs = tuple(float(p) for p in self.cond_probs)
        _positive("logit_std", self.logit_std)
        if self.shift < 0:
            raise ValueError(f"shift must be >= 0 (0 = automatic), got {self.shift}")
        _positive("shift_base_tokens", self.shift_base_tokens)
        for name in ("text_drop_rate", "token_drop_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if len(self.cond_probs) != 4 or any(p < 0 for p in self.cond_probs):
            raise ValueError(f"cond_probs must be 4 non-negative numbers, got {self.cond_probs}")
        if not math.isclose(sum(self.cond_probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"cond_probs must sum to 1, got {sum(self.cond_probs)}")
        _positive("sample_steps", self.sample_steps)
        _positive("cfg_scale", self.cfg_scale)


@dataclass
class ModelConfig:
    """Everything that defines a latent video diffusion model (saved with every checkpoint)."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    def __post_init__(self):
        if self.dit.latent_channels != self.vae.latent_channels:
            raise ValueError(
                f"dit.latent_channels ({self.dit.latent_channels}) must equal "
                f"vae.latent_channels ({self.vae.latent_channels})"
            )
        if self.dit.text_dim != self.text_encoder.dim:
            raise ValueError(
                f"dit.text_dim ({self.dit.text_dim}) must equal "
                f"text_encoder.dim ({self.text_encoder.dim})"
            )


# Presets. tiny runs forward+backward in well under a second on CPU (tests); small is the
# CPU demo (a few M parameters, trains on coloured shapes in minutes); base (~1.6B DiT,
# CogVideoX-2B-sized but head_dim 128 for fast attention kernels), large (~5B) and xl
# (~10B) are GPU sizes. The T5 default is the real T5-XXL; tests and the demo point
# text_encoder.model at a local folder.


def tiny() -> ModelConfig:
    return ModelConfig(
        vae=VAEConfig(
            base_channels=8, channel_mults=(1, 2, 2, 2), num_res_blocks=1, norm_groups=4,
            tile_px=64, tile_overlap_px=16,
        ),
        dit=DiTConfig(hidden_dim=64, depth=2, num_heads=2, cond_dim=64, text_dim=512),
        text_encoder=TextEncoderConfig(model="google/t5-v1_1-small", dim=512, max_length=16),
        diffusion=DiffusionConfig(sample_steps=8),
    )  # fmt: skip


def small() -> ModelConfig:
    return ModelConfig(
        vae=VAEConfig(
            base_channels=32, channel_mults=(1, 1, 2, 2), num_res_blocks=1, norm_groups=8,
            tile_px=128, tile_overlap_px=32,
        ),
        dit=DiTConfig(hidden_dim=192, depth=6, num_heads=3, cond_dim=192, text_dim=512),
        text_encoder=TextEncoderConfig(model="google/t5-v1_1-small", dim=512, max_length=32),
        diffusion=DiffusionConfig(sample_steps=25),
    )  # fmt: skip


def base() -> ModelConfig:
    return ModelConfig(dit=DiTConfig(hidden_dim=2048, depth=28, num_heads=16, cond_dim=512))


def large() -> ModelConfig:
    return ModelConfig(dit=DiTConfig(hidden_dim=3072, depth=42, num_heads=24, cond_dim=512))


def xl() -> ModelConfig:
    return ModelConfig(dit=DiTConfig(hidden_dim=4096, depth=48, num_heads=32, cond_dim=512))


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "tiny": tiny,
    "small": small,
    "base": base,
    "large": large,
    "xl": xl,
}


def preset(name: str) -> ModelConfig:
    """The ModelConfig of a named preset; unknown names raise a one-line ValueError."""
    if name not in PRESETS:
        raise ValueError(f"model preset '{name}' is unknown; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
