"""The model hooks the trainer relies on: per-sample generators and per-sample loss
reduction, so a batch split across processes computes what the whole batch computes."""

import torch

from model.config import preset
from model.diffusion import flow_matching_loss, randn
from model.dit import DiT
from model.vae import VAE


def _gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_per_sample_noise_does_not_depend_on_the_batch():
    whole = randn((4, 3, 2), _gens([1, 2, 3, 4]), "cpu")
    halves = torch.cat(
        [randn((2, 3, 2), _gens([1, 2]), "cpu"), randn((2, 3, 2), _gens([3, 4]), "cpu")]
    )
    assert torch.equal(whole, halves)
    assert not torch.equal(whole[0], whole[1])


def test_split_batch_loss_and_gradients_equal_the_whole_batch():
    cfg = preset("tiny")
    torch.manual_seed(0)
    dit = DiT(cfg.dit)
    with torch.no_grad():  # open the adaLN-zero gates so every block contributes
        for p in dit.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x0 = torch.randn(4, 16, 3, 4, 4)
    emb, mask = torch.randn(4, 5, cfg.dit.text_dim), torch.ones(4, 5, dtype=torch.bool)
    mask[1, 3:] = False

    def loss_and_grads(parts):
        dit.zero_grad()
        total = 0.0
        for idx in parts:
            loss, _ = flow_matching_loss(
                dit, x0[idx], emb[idx], mask[idx], cfg.diffusion,
                generator=_gens([10 + i for i in idx]), reduction="samples",
            )  # fmt: skip
            (loss / len(parts)).backward()
            total += loss.item() / len(parts)
        return total, [p.grad.clone() for p in dit.parameters()]

    whole, g_whole = loss_and_grads([[0, 1, 2, 3]])
    split, g_split = loss_and_grads([[0, 1], [2, 3]])
    assert abs(whole - split) < 1e-5 * abs(whole)
    for a, b in zip(g_whole, g_split, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_vae_posterior_sample_per_sample_generators():
    vae = VAE(preset("tiny").vae)
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        whole, _ = vae(video, _gens([5, 6]))
        first, _ = vae(video[:1], _gens([5]))
    torch.testing.assert_close(whole[:1], first, rtol=1e-5, atol=1e-5)
