"""Captions for clips, as a Ray Data style stage (`CaptionStage`).

Stable Video Diffusion captioned each clip three ways (CoCa on the middle frame, V-BLIP
on the clip, an LLM summary of both). Here one Hugging Face image-text-to-text model does
it, in one of two modes: `image` runs an image captioner (BLIP by default) on the middle
keyframe; `vlm` shows several keyframes at once to a vision-language chat model (Qwen2-VL
by default) with an instruction. Both load through `AutoProcessor` and
`AutoModelForImageTextToText.from_pretrained`, so a hub id and a local folder (the tiny
test models too) take the same path. A caption that came with the input is kept.

Decoding is greedy, so captions are deterministic. A VLM row is batched only with rows
whose frames have the same sizes, hence prompts of the same length: no padding enters
the computation, which keeps a row's caption the same whatever batch it lands in.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from curate.config import CaptionConfig
from curate.errors import ModelLoadError
from curate.images import column, decode_keyframes, middle, spread
from curate.weights import first_line, hub_reachable, is_local, resolve_device

log = logging.getLogger(__name__)

SIDECAR, IMAGE, VLM = "sidecar", "image", "vlm"


def load_image_text_model(
    model_id: str, setting: str, device: torch.device, dtype: torch.dtype
) -> tuple[Any, torch.nn.Module]:
    """Processor and model (eval mode, on `device`) for a hub id or a local folder."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    # Without a reachable hub, ask transformers for the local cache only: it then fails
    # at once instead of retrying the network for minutes.
    local_only = not is_local(model_id) and not hub_reachable()
    try:
        processor = AutoProcessor.from_pretrained(model_id, local_files_only=local_only)
        model = AutoModelForImageTextToText.from_pretrained(
            model_id, dtype=dtype, local_files_only=local_only
        )
    except Exception as e:  # transformers raises OSError, ValueError, KeyError, ...
        raise ModelLoadError(
            f"caption model {model_id!r} could not be loaded (offline? set {setting} to a "
            f"local path): {first_line(e)}"
        ) from None
    return processor, model.to(device).eval()


class CaptionStage:
    """Adds `caption` and `caption_source` ("sidecar" | "image" | "vlm") to a batch.

    Input columns: `keyframes` (per row a sequence of encoded images: first, middle,
    last...), and optionally `caption` / `caption_source` from the input. A row whose
    keyframes do not decode gets an empty caption and a null source.
    """

    def __init__(self, cfg: CaptionConfig):
        self.cfg = cfg
        self.device, self.dtype = resolve_device(cfg.device, "caption.device")
        vlm = cfg.mode == VLM
        model_id = cfg.vlm_model if vlm else cfg.model
        setting = "caption.vlm_model" if vlm else "caption.model"
        self.processor, self.model = load_image_text_model(
            model_id, setting, self.device, self.dtype
        )
        if vlm and not getattr(self.processor, "chat_template", None):
            raise ModelLoadError(
                f"caption model {model_id!r} has no chat template, so it cannot take "
                f"several frames and a prompt (set {setting} to a chat VLM or caption.mode=image)"
            )
        self.source = VLM if vlm else IMAGE
        self.rows_per_call = max(1, cfg.batch_size // cfg.vlm_frames) if vlm else cfg.batch_size
        self._prompts: dict[int, str] = {}
        self._warned_bad_rows = False

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        keyframes = list(batch["keyframes"])
        n = len(keyframes)
        captions = column(batch, "caption", n)
        sources = column(batch, "caption_source", n)
        out_captions: list[str] = [""] * n
        out_sources: list[str | None] = [None] * n

        groups: dict[tuple, list[tuple[int, list]]] = {}
        bad_rows = 0
        for i in range(n):
            given = captions[i]
            if isinstance(given, str) and given.strip():
                out_captions[i] = given.strip()
                out_sources[i] = sources[i] if isinstance(sources[i], str) else SIDECAR
                continue
            images = decode_keyframes(keyframes[i])
            if images is None:
                bad_rows += 1
                continue
            if self.source == VLM:
                images = spread(images, self.cfg.vlm_frames)
                # Same sizes and frame count -> same prompt length: these rows batch unpadded.
                key = tuple(im.size for im in images)
            else:
                # Image captioners resize to one input size and take no prompt: one group.
                images, key = [middle(images)], ()
            groups.setdefault(key, []).append((i, images))
        if bad_rows and not self._warned_bad_rows:
            log.warning("caption: %d row(s) with undecodable keyframes get no caption", bad_rows)
            self._warned_bad_rows = True

        for rows in groups.values():
            for start in range(0, len(rows), self.rows_per_call):
                chunk = rows[start : start + self.rows_per_call]
                texts = self.caption_images([images for _, images in chunk])
                for (i, _), text in zip(chunk, texts, strict=True):
                    out_captions[i], out_sources[i] = text, self.source

        return {
            **batch,
            "caption": np.array(out_captions, dtype=object),
            "caption_source": np.array(out_sources, dtype=object),
        }

    @torch.inference_mode()
    def caption_images(self, images_per_row: list[list]) -> list[str]:
        """One caption per row: image mode takes each row's single image, vlm mode all."""
        if self.source == VLM:
            texts = [self._prompt(len(images)) for images in images_per_row]
            inputs = self.processor(
                text=texts, images=images_per_row, return_tensors="pt", padding=True
            )
        else:
            inputs = self.processor(images=[im[0] for im in images_per_row], return_tensors="pt")
        inputs = {
            k: v.to(self.device, self.dtype if v.is_floating_point() else v.dtype)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
        tokens = self.model.generate(
            **inputs, max_new_tokens=self.cfg.max_new_tokens, do_sample=False, num_beams=1
        )
        if "input_ids" in inputs:  # decoder-only models echo the prompt first
            tokens = tokens[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.batch_decode(tokens, skip_special_tokens=True)]

    def _prompt(self, num_frames: int) -> str:
        if num_frames not in self._prompts:
            content = [{"type": "image"}] * num_frames + [{"type": "text", "text": self.cfg.prompt}]
            self._prompts[num_frames] = self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        return self._prompts[num_frames]
