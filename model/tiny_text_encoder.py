"""A tiny random T5 encoder with a sentencepiece tokenizer, built offline.

The CPU presets (tiny, small) and the demo use it in place of T5-XXL: it is written as
a normal Hugging Face folder (save_pretrained), so `TextEncoder` loads it through the
same code as a real model id. Its weights are random and frozen, which is enough to
give every word a distinct, fixed feature the DiT learns to read. Built once into
$LVD_CACHE/tiny-t5 (LVD_CACHE defaults to ~/.cache/lvd), deterministically, under a
temporary name renamed into place so concurrent processes can call it safely.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import torch

VERSION = "1"
DIM = 64

# Words the tokenizer learns whole: the demo's vocabulary plus common caption words.
_TEXT = """
a an the of on in at to from with and or is are moving moves rolls slides flies goes
left right up down towards away across around into out over under slowly quickly fast
red green blue yellow orange purple pink white black grey gray brown
circle square triangle ball box star shape shapes object disk ring cube
man woman person people child dog cat bird horse car bus train boat plane
road street tree grass field sky cloud water sea beach river mountain city building
house room table camera pans zooms view close up shot scene video background textured
one two three small large big little bright dark night day sunny
"""


def cache_root() -> Path:
    return Path(os.environ.get("LVD_CACHE", Path.home() / ".cache" / "lvd"))


def ensure_tiny_t5(root: Path | str | None = None) -> str:
    """Build (once) and return the folder of the tiny T5 encoder and its tokenizer."""
    folder = Path(root) if root is not None else cache_root() / "tiny-t5"
    stamp = folder / ".complete"
    if stamp.is_file() and stamp.read_text() == VERSION:
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build_tiny_t5(tmp)
        (tmp / ".complete").write_text(VERSION)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race; its folder is identical
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


def build_tiny_t5(folder: Path) -> None:
    import sentencepiece as spm
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    words = _TEXT.split()
    # A word-level model: every word of the list is one token, others are <unk>.
    lines = [" ".join(words[i : i + 6]) for i in range(0, len(words), 6)] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=len(set(words)) + 3,
        hard_vocab_limit=False, model_type="word", pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, num_threads=1, minloglevel=2, seed_sentencepiece_size=100000,
    )  # T5's id layout: <pad>=0, </s>=1, <unk>=2
    spm_dir = folder / "spm"
    spm_dir.mkdir()
    (spm_dir / "spiece.model").write_bytes(model.getvalue())
    tokenizer = T5Tokenizer.from_pretrained(str(spm_dir), extra_ids=0)
    tokenizer.save_pretrained(str(folder))
    shutil.rmtree(spm_dir)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        config = T5Config(vocab_size=len(tokenizer), d_model=DIM, d_kv=16, num_heads=4,
                          d_ff=128, num_layers=2)
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar for a tiny model
        T5EncoderModel(config).save_pretrained(str(folder))
    finally:
        torch.random.set_rng_state(state)
        if bars:
            hf_logging.enable_progress_bar()
