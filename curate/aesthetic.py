"""The LAION improved aesthetic predictor head (christophschuhmann/improved-aesthetic-predictor).

A small MLP trained on L2-normalised CLIP ViT-L/14 image embeddings to predict the
1-10 ratings of SAC, LAION-Logos and AVA; LAION-Aesthetics and Stable Video Diffusion
filtered on it. Its layers are Linear(768, 1024), Dropout(0.2), Linear(1024, 128),
Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), with no
activation between them, and its released weights
(sac+logos+ava1-l14-linearMSE.pth) are a state dict with keys layers.{0,2,4,6,7}.*. This
module keeps that layout, so the released file loads as is; layer sizes are read from
the weights, so a head for another embedding size (the tiny test CLIP's) loads the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from curate.errors import ModelLoadError
from curate.weights import fetch, first_line

HIDDEN = (1024, 128, 64, 16)
LINEAR_INDICES = (0, 2, 4, 6, 7)  # positions of the Linear layers in `layers`


class AestheticHead(nn.Module):
    """Embedding (L2-normalised) -> aesthetic rating (about 1-10 with the LAION weights)."""

    def __init__(self, input_dim: int = 768, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        h1, h2, h3, h4 = hidden
        self.layers = nn.Sequential(
            nn.Linear(input_dim, h1),
            nn.Dropout(0.2),
            nn.Linear(h1, h2),
            nn.Dropout(0.2),
            nn.Linear(h2, h3),
            nn.Dropout(0.1),
            nn.Linear(h3, h4),
            nn.Linear(h4, 1),
        )

    @property
    def input_dim(self) -> int:
        return self.layers[0].in_features

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings).squeeze(-1)  # (N, D) -> (N,)


def save_head(head: AestheticHead, path: Path | str) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path))


def load_head(source: str, embed_dim: int, device: torch.device | str = "cpu") -> AestheticHead:
    """The head from a local .pth/.pt/.safetensors file or a URL (cached after the first
    download), checked against the CLIP model's embedding size; eval mode, fp32."""
    setting = "clip.aesthetic_weights"
    path = fetch(source, "aesthetic head", setting)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        sizes = [tuple(state[f"layers.{i}.weight"].shape) for i in LINEAR_INDICES]
        head = AestheticHead(sizes[0][1], tuple(s[0] for s in sizes[:4]))
        head.load_state_dict(state)
    except Exception as e:  # missing keys, wrong shapes, not a state dict, corrupt file
        raise ModelLoadError(
            f"aesthetic head {str(path)!r} is not a LAION aesthetic predictor state dict "
            f"(set {setting}): {first_line(e)}"
        ) from None
    if head.input_dim != embed_dim:
        raise ModelLoadError(
            f"aesthetic head {str(path)!r} takes {head.input_dim}-d embeddings but the CLIP "
            f"model gives {embed_dim}-d ones (set {setting} to a head trained for clip.model)"
        )
    return head.to(device).eval()


@torch.no_grad()
def aesthetic_scores(head: AestheticHead, embeddings: torch.Tensor) -> torch.Tensor:
    """Scores of (N, D) image embeddings, L2-normalised here as the head was trained."""
    x = embeddings.float()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return head(x.to(next(head.parameters()).device))
