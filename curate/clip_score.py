"""CLIP embeddings, aesthetic score and caption alignment for clips (`ClipStage`).

Stable Video Diffusion scored every clip with CLIP: an aesthetic score from the LAION
predictor on the CLIP image embedding, and a text-image similarity between the caption
and the frames. Here open_clip embeds every keyframe (ViT-L/14 with OpenAI's weights by
default, the embedding the LAION head was trained on); per clip we keep

- clip_embedding: the mean of the L2-normalised keyframe embeddings, normalised again
  (unit length, float16), ready for cosine similarity or deduplication;
- aesthetic_score: the LAION head's rating averaged over the keyframes;
- text_score: cosine of the caption's CLIP text embedding with clip_embedding (NaN
  without a caption).

The model loads through open_clip's own factory: a built-in name with a pretrained tag
or checkpoint file, `hf-hub:org/repo`, or a local folder (`local-dir:`), which is how
the tiny test model loads too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curate.aesthetic import aesthetic_scores, load_head
from curate.config import ClipConfig
from curate.errors import ModelLoadError
from curate.images import column, decode_keyframes
from curate.weights import env_offline, first_line, hub_reachable, resolve_device

log = logging.getLogger(__name__)


def load_open_clip(
    model_name: str, pretrained: str, device: torch.device, dtype: torch.dtype
) -> tuple[torch.nn.Module, Any, Any]:
    """(model in eval mode, image preprocess, tokenizer) through open_clip's factory."""
    import open_clip

    name = model_name
    if Path(model_name).expanduser().is_dir():
        name = f"local-dir:{Path(model_name).expanduser().resolve()}"
    has_schema = name.startswith(("local-dir:", "hf-hub:"))
    kwargs: dict[str, Any] = {}
    needs_hub = name.startswith("hf-hub:")
    if not has_schema and pretrained and not Path(pretrained).expanduser().is_file():
        tag = open_clip.get_pretrained_cfg(name, pretrained)
        if not tag:
            raise ModelLoadError(
                f"clip.pretrained {pretrained!r} is neither a checkpoint file nor an open_clip "
                f"tag of {model_name!r} (known: {', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'})"
            )
        # OpenAI's CLIP weights were trained with QuickGELU; open_clip only warns when the
        # architecture config disagrees, so take the activation from the tag.
        kwargs["force_quick_gelu"] = bool(tag.get("quick_gelu", False))
        needs_hub = True
    if needs_hub and not env_offline() and not hub_reachable():
        raise ModelLoadError(
            f"clip model {model_name!r} (pretrained {pretrained!r}) needs the Hugging Face hub, "
            "which is unreachable: set HF_HUB_OFFLINE=1 to use cached weights, or set "
            "clip.model / clip.pretrained to local files"
        )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name,
            pretrained=None if has_schema else (pretrained or None),
            precision="fp16" if dtype == torch.float16 else "fp32",
            device=device,
            **kwargs,
        )
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as e:  # open_clip raises RuntimeError, ValueError, FileNotFoundError...
        raise ModelLoadError(
            f"clip model {model_name!r} (pretrained {pretrained!r}) could not be loaded "
            f"(offline? set clip.model / clip.pretrained to local files): {first_line(e)}"
        ) from None
    return model.eval(), preprocess, tokenizer


class ClipStage:
    """Adds `clip_embedding` (float16, unit length), `aesthetic_score` and `text_score`.

    Input columns: `keyframes` (per row a sequence of encoded images) and `caption`
    (from CaptionStage or the input; missing or empty -> text_score NaN). A row whose
    keyframes do not decode gets NaN everywhere.
    """

    def __init__(self, cfg: ClipConfig):
        self.cfg = cfg
        self.device, self.dtype = resolve_device(cfg.device, "clip.device")
        self.model, self.preprocess, self.tokenizer = load_open_clip(
            cfg.model, cfg.pretrained, self.device, self.dtype
        )
        self.embed_dim = self._embed_dim()
        self.head = (
            load_head(cfg.aesthetic_weights, self.embed_dim, self.device)
            if cfg.aesthetic_weights
            else None
        )
        self._warned_bad_rows = False

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        keyframes = list(batch["keyframes"])
        n = len(keyframes)
        embedding_sums = np.zeros((n, self.embed_dim), np.float64)
        score_sums = np.zeros(n, np.float64)
        counts = np.zeros(n, np.int64)

        # Keyframes of several rows share a model call; memory stays at batch_size images.
        pending: list[torch.Tensor] = []
        owners: list[int] = []
        for i, frames in enumerate(keyframes):
            images = decode_keyframes(frames)
            for image in images or ():
                pending.append(self.preprocess(image))
                owners.append(i)
                if len(pending) == self.cfg.batch_size:
                    self._embed_into(pending, owners, embedding_sums, score_sums, counts)
                    pending, owners = [], []
        if pending:
            self._embed_into(pending, owners, embedding_sums, score_sums, counts)

        good = counts > 0
        if not good.all() and not self._warned_bad_rows:
            log.warning("clip: %d row(s) with undecodable keyframes get NaN scores", (~good).sum())
            self._warned_bad_rows = True
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = embedding_sums / counts[:, None]
            mean /= np.linalg.norm(mean, axis=1, keepdims=True)
            aesthetic = score_sums / counts if self.head is not None else np.full(n, np.nan)

        captions = column(batch, "caption", n)
        text_score = np.full(n, np.nan)
        with_text = [
            i for i in range(n) if good[i] and isinstance(captions[i], str) and captions[i].strip()
        ]
        for start in range(0, len(with_text), self.cfg.batch_size):
            rows = with_text[start : start + self.cfg.batch_size]
            text = self.embed_texts([captions[i].strip() for i in rows])
            text_score[rows] = np.einsum("nd,nd->n", text, mean[rows])

        return {
            **batch,
            "clip_embedding": mean.astype(np.float16),
            "aesthetic_score": aesthetic.astype(np.float32),
            "text_score": text_score.astype(np.float32),
        }

    @torch.inference_mode()
    def embed_images(self, images: list) -> np.ndarray:
        """L2-normalised image embeddings (N, D), float32, of PIL images."""
        x = torch.stack([self.preprocess(im) for im in images])
        return self._normalised(self.model.encode_image(x.to(self.device, self.dtype)))

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings (N, D), float32."""
        tokens = self.tokenizer(texts).to(self.device)
        return self._normalised(self.model.encode_text(tokens))

    @torch.inference_mode()
    def _embed_into(self, pending, owners, embedding_sums, score_sums, counts) -> None:
        x = torch.stack(pending).to(self.device, self.dtype)  # (B, 3, H, W)
        features = self.model.encode_image(x).float()  # (B, D)
        embeddings = self._normalised(features)
        np.add.at(embedding_sums, owners, embeddings)
        np.add.at(counts, owners, 1)
        if self.head is not None:
            np.add.at(score_sums, owners, aesthetic_scores(self.head, features).cpu().numpy())

    @staticmethod
    def _normalised(features: torch.Tensor) -> np.ndarray:
        features = features.float()
        return (features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()

    @torch.inference_mode()
    def _embed_dim(self) -> int:
        # Not every open_clip image tower records its output size: run one blank image.
        size = self.model.visual.image_size
        height, width = (size, size) if isinstance(size, int) else size
        probe = torch.zeros(1, 3, height, width, device=self.device, dtype=self.dtype)
        return int(self.model.encode_image(probe).shape[-1])
