"""Frozen T5 (or UMT5) text encoder through Hugging Face transformers, as in Imagen,
CogVideoX (T5-XXL, 226 tokens) and lucidrains' short T5 wrappers.

Prompts are padded/truncated to a fixed max_length, so the outputs have one shape and
are deterministic (eval mode, no grad): the trainer can compute them once per caption
and cache them. Padding positions are zeroed so cached tensors do not depend on what the
encoder happens to emit there; the DiT masks them anyway.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoTokenizer,
    MT5EncoderModel,
    T5EncoderModel,
    UMT5EncoderModel,
)

from model.config import TextEncoderConfig

_ENCODERS = {"t5": T5EncoderModel, "umt5": UMT5EncoderModel, "mt5": MT5EncoderModel}


class TextEncoderError(RuntimeError):
    """The text encoder could not be loaded; the message is one line for the user."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class TextEncoder(nn.Module):
    """`TextEncoder(cfg)(prompts) -> (emb (B, max_length, dim), mask (B, max_length))`."""

    def __init__(self, cfg: TextEncoderConfig, device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg = cfg
        device = torch.device(device)
        hint = "download it, or set text_encoder.model to a local T5/UMT5 folder"
        looks_local = cfg.model.startswith(("/", ".", "~"))
        if looks_local and not Path(cfg.model).expanduser().is_dir():
            raise TextEncoderError(
                f"text encoder folder '{cfg.model}' does not exist: set text_encoder.model "
                "to a T5/UMT5 id or an existing folder"
            )
        try:
            hf_config = AutoConfig.from_pretrained(cfg.model)
            model_cls = _ENCODERS.get(hf_config.model_type)
            if model_cls is None:
                raise TextEncoderError(
                    f"text encoder '{cfg.model}' is a {hf_config.model_type} model, not "
                    f"T5/UMT5: set text_encoder.model to a T5 or UMT5 id or folder"
                )
            # CPU runs float32: bf16 matmuls there are slow and lossy
            dtype = getattr(torch, cfg.dtype) if device.type == "cuda" else torch.float32
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            self.model = model_cls.from_pretrained(cfg.model, dtype=dtype)
        except TextEncoderError:
            raise
        except (OSError, ValueError, KeyError) as e:
            raise TextEncoderError(
                f"text encoder '{cfg.model}' could not be loaded ({_first_line(e)}); {hint}"
            ) from None
        if hf_config.d_model != cfg.dim:
            raise TextEncoderError(
                f"text encoder '{cfg.model}' has d_model {hf_config.d_model} but "
                f"text_encoder.dim is {cfg.dim}: set text_encoder.dim (and dit.text_dim)"
            )
        self.model.to(device).eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (B, max_length, dim) with padding zeroed, and mask (B, max_length)
        bool (True = a real token, including the closing </s>)."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, not one string")
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.cfg.max_length,
            truncation=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.device)  # (B, L)
        mask = tokens.attention_mask.to(self.device).bool()  # (B, L)
        emb = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return emb * mask[..., None].to(emb.dtype), mask  # (B, L, dim), (B, L)
