"""Tiny randomly initialised models for `--preset tiny`, tests and offline demos.

Each builder writes a model folder in exactly the format a user's local model has
(transformers `save_pretrained` with a processor and tokenizer; an open_clip folder with
`open_clip_config.json` and safetensors weights; the aesthetic head as safetensors), so
the stages load them through the same code as real models. Everything is built offline:
the tokenizers come from small vocabularies written here. Seeds are fixed, so two
builds are identical; folders appear atomically (built under a temporary name, then
renamed), so concurrent workers can call `ensure_tiny_models` safely.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from curate.weights import cache_root

VERSION = "1"  # bump when a builder changes, so stale caches are rebuilt
CLIP_EMBED_DIM = 32

# A caption vocabulary for the tiny BLIP: WordPiece with whole words and single letters.
_WORD_TEXT = """
a an the of on in with and at is are to from man woman person people child dog cat bird
horse car bus road street tree trees grass field sky cloud water sea beach river mountain
city building house room table red blue green white black video close up view walking
running sitting standing moving
"""
WORDS = _WORD_TEXT.split()
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]

QWEN_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen2-VL's chat layout, reduced to what the caption stage sends: a user turn of images
# and text, then the assistant's turn.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def ensure_tiny_models(root: Path | str | None = None) -> dict[str, str]:
    """Build (once) and return local paths of the tiny models.

    Keys: caption (BLIP folder), vlm (Qwen2-VL folder), clip (open_clip folder),
    aesthetic (head weights for the tiny CLIP's embedding size). Default root:
    $LVD_CACHE/tiny-models (LVD_CACHE defaults to ~/.cache/lvd).
    """
    root = Path(root) if root is not None else cache_root() / "tiny-models"
    return {
        "caption": str(_ensure(root / "blip", build_tiny_blip)),
        "vlm": str(_ensure(root / "qwen2-vl", build_tiny_qwen2_vl)),
        "clip": str(_ensure(root / "open-clip", build_tiny_open_clip)),
        "aesthetic": str(_ensure(root / "aesthetic", build_tiny_aesthetic) / "head.safetensors"),
    }


def _ensure(folder: Path, build: Callable[[Path], None]) -> Path:
    stamp = folder / ".complete"
    if stamp.is_file() and stamp.read_text() == VERSION:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        # A private RNG stream: building models never shifts the caller's random state.
        with torch.random.fork_rng(devices=[]), _quiet_transformers():
            torch.manual_seed(0)
            build(tmp)
        (tmp / ".complete").write_text(VERSION)
        if folder.exists() and not (stamp.is_file() and stamp.read_text() == VERSION):
            shutil.rmtree(folder, ignore_errors=True)  # stale: built by an older VERSION
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (stamp.is_file() and stamp.read_text() == VERSION):
                raise  # nobody else finished it either
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@contextlib.contextmanager
def _quiet_transformers():
    """No "Writing model shards" progress bars for models that take milliseconds to save."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def build_tiny_blip(folder: Path) -> None:
    """A 2-layer BLIP captioner (32-wide, 32x32 input) with a WordPiece tokenizer."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = specials + WORDS + LETTERS + [f"##{c}" for c in LETTERS]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab_file))
    # BLIP starts decoding from [DEC]; as the bos token it is dropped from decoded text.
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    width = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            encoder_hidden_size=32,
            initializer_range=0.5,
            max_position_embeddings=64,
            bos_token_id=vocab.index("[DEC]"),
            eos_token_id=vocab.index("[SEP]"),
            sep_token_id=vocab.index("[SEP]"),
            pad_token_id=vocab.index("[PAD]"),
            **width,
        ),
        # BLIP's default vision init (std 1e-10) would make every image look the same.
        vision_config=dict(image_size=32, patch_size=8, initializer_range=0.2, **width),
        projection_dim=32,
    )
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_tiny_qwen2_vl(folder: Path) -> None:
    """A 2-layer Qwen2-VL (32-wide) with a byte-level BPE tokenizer and a chat template."""
    from transformers import (
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    for token in QWEN_SPECIALS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS)})
    # Small images: 4 to 16 merged 28x28 patches, i.e. 1 to 4 vision tokens per frame.
    pixels = dict(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            # head_dim 16 -> 8 rotary frequencies split over (time, height, width).
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3]},
            bos_token_id=vocab["<|endoftext|>"],
            eos_token_id=vocab["<|im_end|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = vocab["<|im_end|>"]
    model.generation_config.pad_token_id = vocab["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def build_tiny_open_clip(folder: Path) -> None:
    """A 2-layer ViT/text-transformer CLIP (32-d embeddings, 32x32 input) as an open_clip
    local folder: open_clip_config.json plus open_clip_model.safetensors. It uses
    open_clip's bundled BPE tokenizer, which needs no download."""
    import open_clip
    from safetensors.torch import save_file

    model_cfg = {
        "embed_dim": CLIP_EMBED_DIM,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 32,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 2,
        },
    }
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"size": 32}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    model = open_clip.CLIP(**model_cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))


def build_tiny_aesthetic(folder: Path) -> None:
    """LAION aesthetic head weights for the tiny CLIP's embedding size."""
    from curate.aesthetic import AestheticHead, save_head

    save_head(AestheticHead(CLIP_EMBED_DIM), folder / "head.safetensors")


def _byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values (byte-level BPE's base vocab)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]
