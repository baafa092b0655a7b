"""Frozen T5 wrapper, loaded through the same from_pretrained path as a real model id:
a tiny T5 encoder and a sentencepiece tokenizer trained here are saved to a folder."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from model.config import TextEncoderConfig
from model.text_encoder import TextEncoder, TextEncoderError

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "a red ball rolls to the left",
    "a blue square moves up slowly",
    "the green circle spins in place",
    "two yellow shapes bounce on the floor",
    "a camera pans across a city at night",
]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_t5")
    spm_dir = tmp_path_factory.mktemp("spm")
    model = io.BytesIO()
    # T5's id layout: <pad>=0, </s>=1, <unk>=2
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 10),
        model_writer=model,
        vocab_size=60,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    (spm_dir / "spiece.model").write_bytes(model.getvalue())
    tokenizer = T5Tokenizer.from_pretrained(str(spm_dir), extra_ids=0)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=512, d_kv=8, num_heads=2, d_ff=64, num_layers=2
    )
    T5EncoderModel(config).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def encoder(tiny_t5) -> TextEncoder:
    return TextEncoder(TextEncoderConfig(model=tiny_t5, dim=512, max_length=12))


def test_outputs_have_fixed_length_and_mask(encoder):
    emb, mask = encoder(["a red ball", "a camera pans across a city at night slowly"])
    assert emb.shape == (2, 12, 512) and mask.shape == (2, 12)
    assert mask.dtype == torch.bool
    assert mask[0].sum() < mask[1].sum() <= 12
    assert mask[0, 0] and not mask[0, -1]


def test_padding_is_zero_and_outputs_are_cacheable(encoder):
    emb, mask = encoder(["a blue square", "two shapes"])
    assert emb[~mask].abs().max() == 0
    assert emb[mask].abs().max() > 0
    again, _ = encoder(["a blue square", "two shapes"])
    assert torch.equal(emb, again)
    alone, _ = encoder(["two shapes"])
    torch.testing.assert_close(alone[0], emb[1], atol=1e-5, rtol=1e-5)


def test_encoder_is_frozen(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.model.training


def test_long_prompts_are_truncated(encoder):
    emb, mask = encoder([" ".join(SENTENCES)])
    assert emb.shape == (1, 12, 512) and mask.all()


def test_a_single_string_is_rejected(encoder):
    with pytest.raises(TypeError, match="list of strings"):
        encoder("a red ball")


def test_dimension_mismatch_names_the_config_key(tiny_t5):
    with pytest.raises(TextEncoderError, match=r"text_encoder\.dim"):
        TextEncoder(TextEncoderConfig(model=tiny_t5, dim=4096))


def test_missing_local_folder_fails_in_one_line(tmp_path):
    with pytest.raises(TextEncoderError) as err:
        TextEncoder(TextEncoderConfig(model=str(tmp_path / "nothing")))
    assert "text_encoder.model" in str(err.value) and "\n" not in str(err.value)


def test_absent_hub_model_fails_fast_offline():
    # a fresh interpreter (imports included) with HF_HUB_OFFLINE=1 must give up in seconds
    code = (
        "from model.config import TextEncoderConfig\n"
        "from model.text_encoder import TextEncoder, TextEncoderError\n"
        "try:\n"
        "    TextEncoder(TextEncoderConfig(model='lvd-test/no-such-t5'))\n"
        "except TextEncoderError as e:\n"
        "    print(e)\n"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    elapsed_s = time.perf_counter() - start
    assert "lvd-test/no-such-t5" in out.stdout and "text_encoder.model" in out.stdout, out
    assert elapsed_s < 30
