"""Parameter and FLOP accounting, checked against torch's FlopCounterMode."""

import itertools

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from model.config import tiny
from model.dit import DiT
from model.flops import dit_forward_flops, model_stats
from model.vae import VAE


@pytest.mark.parametrize("mode", ["expert", "cross"])
@pytest.mark.parametrize("micro", [False, True])
def test_analytic_dit_flops_match_the_counted_ones(mode, micro):
    cfg = tiny().dit
    cfg.text_mode, cfg.micro_conditioning = mode, micro
    dit = DiT(cfg)
    x, text = torch.randn(1, 16, 3, 8, 6), torch.randn(1, 10, 512)
    extra = {"fps": torch.tensor([8.0]), "motion_score": torch.tensor([1.0])} if micro else {}
    counter = FlopCounterMode(display=False)
    # the math backend decomposes attention into matmuls the counter sees on CPU
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        dit(x, torch.rand(1), text, None, **extra)
    assert counter.get_total_flops() == dit_forward_flops(cfg, (3, 4, 3), 10)


def test_stats_count_the_real_parameters():
    stats = model_stats("tiny", 9, 32, 32)
    cfg = tiny()
    assert stats["dit_params"] == sum(p.numel() for p in DiT(cfg.dit).parameters())
    assert stats["vae_params"] == sum(p.numel() for p in VAE(cfg.vae).parameters())
    assert stats["video_tokens"] == 3 * 2 * 2
    assert stats["dit_train_flops"] == 3 * stats["dit_forward_flops"]
    assert stats["vae_encode_flops"] > 0
    assert stats["vae_decode_flops"] > stats["vae_encode_flops"]


def test_preset_sizes():
    small = model_stats("small", 17, 64, 64, vae=False)
    assert 1e6 < small["dit_params"] < 10e6
    base = model_stats("base", 49, 480, 720, vae=False)
    assert base["dit_params"] > 1e9
    assert base["video_tokens"] >= 16_000
    sizes = [model_stats(n, 1, 64, 64, vae=False)["dit_params"] for n in ("base", "large", "xl")]
    assert sizes == sorted(sizes) and sizes[-1] > 8e9


@pytest.mark.parametrize("op", ["vae_encode_flops", "vae_decode_flops"])
def test_vae_flops_grow_linearly_with_frames(op):
    # Chunked causal coding: frame 0 alone, then every 8 more frames cost the same.
    flops = [model_stats("tiny", n, 64, 64)[op] for n in (1, 9, 17, 25)]
    steps = [b - a for a, b in itertools.pairwise(flops)]
    assert steps[0] > flops[0] > 0
    assert steps == [steps[0]] * 3
