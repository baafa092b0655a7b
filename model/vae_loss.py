"""VAE training loss: L1 reconstruction + KL, with optional extras: an L2 term, a
perceptual term (VGG16 features, LPIPS without its learned per-channel weights) and an
adversarial term (3D PatchGAN with hinge loss, as in MAGVIT and Open-Sora's VAE). The
extras are off by default (weights 0) and cost nothing then.

The KL is summed over latent elements and divided by the number of pixel values, which
is SD/CogVideoX's "sum over pixels + kl_weight * sum over latents" divided through by
the pixel count: kl_weight = 1e-6 means what it means there.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.vae import VAE

# ImageNet statistics that torchvision's VGG16 expects on [0, 1] inputs
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_VGG_TAPS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3


class Perceptual(nn.Module):
    """Mean squared distance between unit-normalised VGG16 features of each frame."""

    def __init__(self, weights_path: str = ""):
        super().__init__()
        from torchvision.models import VGG16_Weights, vgg16
        from torchvision.models.vgg import cfgs, make_layers

        try:
            if weights_path:
                # only the conv layers we tap: the file may hold just these
                features = make_layers(cfgs["D"])[: _VGG_TAPS[-1] + 1]
                state = _read_state_dict(Path(weights_path))
                prefix = "features."
                features.load_state_dict(
                    {
                        k[len(prefix) :]: v
                        for k, v in state.items()
                        if k.startswith(prefix) and int(k.split(".")[1]) <= _VGG_TAPS[-1]
                    }
                )
            else:
                features = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features
        except (OSError, RuntimeError, ValueError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeError(
                f"VGG16 weights for the perceptual loss could not be loaded ({reason}); "
                "set vae.perceptual_weights_path or vae.perceptual_weight=0"
            ) from None
        self.features = features[: _VGG_TAPS[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        # (B, 3, T, H, W) in [-1, 1] -> frames (B*T, 3, H, W) normalised for VGG
        frames = torch.cat([recon, video]).float()
        frames = rearrange(frames, "b c t h w -> (b t) c h w")
        h = ((frames + 1) / 2 - self.mean) / self.std
        loss = frames.new_zeros(())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _VGG_TAPS:
                a, b = F.normalize(h, dim=1).chunk(2)  # recon, target features
                loss = loss + (a - b).pow(2).sum(1).mean()
        return loss


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


class PatchDiscriminator3d(nn.Module):
    """3D PatchGAN: strided spatial convs (time kept, so 1-frame clips work) ending in
    one real/fake logit per spacetime patch."""

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        prev = in_channels
        for i in range(layers):
            ch = channels * 2 ** min(i, 3)
            mods += [nn.Conv3d(prev, ch, (3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1))]
            if i > 0:
                mods += [nn.GroupNorm(min(32, ch // 4), ch)]
            mods += [nn.LeakyReLU(0.2)]
            prev = ch
        mods += [nn.Conv3d(prev, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)  # (B, 1, T, H / 2^layers, W / 2^layers) logits


def vae_loss(
    vae: VAE,
    video: torch.Tensor,
    generator: torch.Generator | list[torch.Generator] | None = None,
    perceptual: Perceptual | None = None,
    discriminator: PatchDiscriminator3d | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Generator-side VAE loss for video (B, 3, T, H, W) in [-1, 1]: (loss, logs of
    detached tensors, reconstruction). Pass `perceptual` / `discriminator` when their
    weights in vae.cfg are > 0; train the discriminator with `discriminator_loss`."""
    cfg = vae.cfg
    recon, posterior = vae(video, generator)  # (B, 3, T, H, W)
    l1 = (recon - video).abs().mean()
    kl = posterior.kl().mean() / video[0].numel()
    loss = l1 + cfg.kl_weight * kl
    logs = {"l1": l1.detach(), "kl": kl.detach()}
    if cfg.l2_weight > 0:
        l2 = (recon - video).pow(2).mean()
        loss = loss + cfg.l2_weight * l2
        logs["l2"] = l2.detach()
    if cfg.perceptual_weight > 0:
        if perceptual is None:
            raise ValueError("vae.perceptual_weight > 0 needs a Perceptual module")
        p = perceptual(recon, video)
        loss = loss + cfg.perceptual_weight * p
        logs["perceptual"] = p.detach()
    if cfg.adversarial_weight > 0:
        if discriminator is None:
            raise ValueError("vae.adversarial_weight > 0 needs a PatchDiscriminator3d")
        g = -discriminator(recon).mean()  # hinge generator loss
        loss = loss + cfg.adversarial_weight * g
        logs["adversarial"] = g.detach()
    logs["loss"] = loss.detach()
    return loss, logs, recon


def discriminator_loss(
    discriminator: PatchDiscriminator3d, video: torch.Tensor, recon: torch.Tensor
) -> torch.Tensor:
    """Hinge loss for the discriminator (reconstruction detached)."""
    real = discriminator(video)
    fake = discriminator(recon.detach())
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
