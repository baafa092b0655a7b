"""T5 embeddings per caption, computed once and kept (LRU).

The text encoder is frozen and pads every prompt to a fixed length, so a caption's
embedding never changes during training: the trainer encodes each new caption once
(all the new captions of a batch in one encoder call) and reuses it afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from model.config import TextEncoderConfig
from model.text_encoder import TextEncoder, TextEncoderError
from pipelines.common.errors import UsageError


def load_text_encoder(cfg: TextEncoderConfig, device: torch.device) -> TextEncoder:
    """The frozen encoder of a model config. The offline tiny T5 of the CPU presets is
    rebuilt (deterministically) when its cache folder is gone; a load failure is one line."""
    if not Path(cfg.model).exists() and Path(cfg.model).name == "tiny-t5":
        from model.tiny_text_encoder import ensure_tiny_t5

        cfg.model = ensure_tiny_t5()
    try:
        return TextEncoder(cfg, device)
    except TextEncoderError as e:
        raise UsageError(str(e)) from None


class TextCache:
    """`cache(captions) -> (emb (B, L, dim), mask (B, L))` on the encoder's device."""

    def __init__(self, encoder: TextEncoder, size: int):
        self.encoder = encoder
        self.size = size
        self.entries: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = list(dict.fromkeys(c for c in captions if c not in self.entries))
        fresh = {}
        if missing:
            emb, mask = self.encoder(missing)  # (M, L, dim), (M, L)
            fresh = {c: (emb[i].float(), mask[i]) for i, c in enumerate(missing)}
        rows = []
        for caption in captions:
            entry = fresh.get(caption) or self.entries[caption]
            self.entries[caption] = entry
            self.entries.move_to_end(caption)
            rows.append(entry)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return torch.stack([e for e, _ in rows]), torch.stack([m for _, m in rows])
