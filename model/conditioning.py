"""Conditioning frames: which latent frames are given clean, for one model that does
text-to-video (none), image-to-video (the first), frame interpolation (first and last)
and continuation (a prefix). The DiT sees them as a mask channel plus the masked clean
latents concatenated to the noisy input (the channel-concat of SVD and CogVideoX-I2V).

Because the VAE is causal and encodes the first frame alone, an image encodes to exactly
latent frame 0 of a video, and the first 1 + 4m frames of a clip encode to its first
1 + m latent frames, which is what image-to-video and continuation need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TASKS = ("text", "image", "interpolate", "continue")
"""Training tasks in the order of DiffusionConfig.cond_probs."""


@dataclass
class Cond:
    """Clean latents (B, C, T, H, W) and a per-latent-frame mask (B, T), True = given."""

    latents: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self):
        if self.mask.shape != self.latents.shape[:1] + self.latents.shape[2:3]:
            raise ValueError(
                f"mask must be (B, T) = {tuple(self.latents.shape[:1] + self.latents.shape[2:3])}"
                f" for latents {tuple(self.latents.shape)}, got {tuple(self.mask.shape)}"
            )
        self.mask = self.mask.bool()

    def channels(self) -> torch.Tensor:
        """(B, C + 1, T, H, W): masked clean latents, then the mask as a channel."""
        b, _, t, h, w = self.latents.shape
        mask = self.mask[:, None, :, None, None].to(self.latents.dtype)  # (B, 1, T, 1, 1)
        return torch.cat([self.latents * mask, mask.expand(b, 1, t, h, w)], dim=1)


def frame_mask(task: str, num_latent_frames: int, prefix: int = 1, batch: int = 1) -> torch.Tensor:
    """(batch, T) mask of the given latent frames for a named task; `prefix` is the number
    of given frames for 'continue'."""
    mask = torch.zeros(batch, num_latent_frames, dtype=torch.bool)
    if task == "image":
        mask[:, 0] = True
    elif task == "interpolate":
        mask[:, [0, -1]] = True
    elif task == "continue":
        if not 0 < prefix < num_latent_frames:
            raise ValueError(
                f"prefix must be in [1, {num_latent_frames - 1}] latent frames, got {prefix}"
            )
        mask[:, :prefix] = True
    elif task != "text":
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return mask


def random_cond(
    latents: torch.Tensor,
    probs: tuple[float, ...],
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> Cond:
    """Training conditioning: each sample draws a task with `probs` (DiffusionConfig.
    cond_probs); 'continue' gives a random prefix of 1 .. T-1 latent frames. Single-frame
    latents (images) only ever get the text task. `generator` may be one CPU generator
    per sample (see model.diffusion.Generators)."""
    b, _, t = latents.shape[:3]
    mask = torch.zeros(b, t, dtype=torch.bool)
    if t > 1:
        weights = torch.tensor(probs, dtype=torch.float)
        if isinstance(generator, (list, tuple)):
            if len(generator) != b:
                raise ValueError(f"{len(generator)} generators for a batch of {b}")
            tasks = torch.cat([torch.multinomial(weights, 1, generator=g) for g in generator])
            prefixes = torch.cat([torch.randint(1, t, (1,), generator=g) for g in generator])
        else:
            tasks = torch.multinomial(weights, b, replacement=True, generator=generator)
            prefixes = torch.randint(1, t, (b,), generator=generator)
        for i, (task, prefix) in enumerate(zip(tasks.tolist(), prefixes.tolist(), strict=True)):
            mask[i] = frame_mask(TASKS[task], t, prefix)[0]
    return Cond(latents, mask.to(latents.device))
