"""Rectified flow: timestep sampling and shift, the loss, the samplers, CFG, conditioning."""

import pytest
import torch

from model.conditioning import Cond, frame_mask, random_cond
from model.config import DiffusionConfig, tiny
from model.diffusion import (
    add_noise,
    drop_tokens,
    flow_matching_loss,
    randn,
    sample_timesteps,
    shift_timesteps,
    timestep_shift,
)
from model.dit import DiT
from model.sampler import encode_given_frames, sample, sample_latents, timestep_schedule
from model.vae import VAE


def trained_like_dit() -> DiT:
    """Tiny DiT with its adaLN-Zero weights randomised, so outputs are not all zero."""
    torch.manual_seed(0)
    dit = DiT(tiny().dit)
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "adaLN" in name or "final" in name:
                p.normal_(std=0.05)
    return dit.eval()


def text(b=1, length=16):
    torch.manual_seed(3)
    return torch.randn(b, length, 512), torch.ones(b, length, dtype=torch.bool)


def test_shift_keeps_endpoints_and_moves_towards_noise():
    t = torch.linspace(0, 1, 11)
    torch.testing.assert_close(shift_timesteps(t, 1.0), t)
    shifted = shift_timesteps(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert (shifted[1:-1] > t[1:-1]).all()


def test_automatic_shift_grows_with_token_count():
    cfg = DiffusionConfig(shift_base_tokens=256)
    assert timestep_shift(64, cfg) == 1.0
    assert timestep_shift(1024, cfg) == pytest.approx(2.0)
    assert timestep_shift(16384, cfg) == pytest.approx(8.0)
    assert timestep_shift(16384, DiffusionConfig(shift=3.0)) == 3.0


def test_timesteps_are_logit_normal_then_shifted():
    g = torch.Generator().manual_seed(0)
    cfg = DiffusionConfig(logit_mean=0.5, logit_std=0.8)
    t = sample_timesteps(20000, cfg, tokens=256, generator=g)
    assert ((t > 0) & (t < 1)).all()
    logits = torch.logit(t.double())
    assert logits.mean() == pytest.approx(0.5, abs=0.03)
    assert logits.std() == pytest.approx(0.8, abs=0.03)
    g = torch.Generator().manual_seed(0)
    longer = sample_timesteps(20000, cfg, tokens=4096, generator=g)  # shift 4
    torch.testing.assert_close(longer, shift_timesteps(t, 4.0))


def test_noising_interpolates_data_and_noise():
    x0, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    torch.testing.assert_close(add_noise(x0, noise, torch.tensor([0.0, 1.0]))[0], x0[0])
    torch.testing.assert_close(add_noise(x0, noise, torch.tensor([0.0, 1.0]))[1], noise[1])
    mid = add_noise(x0, noise, torch.tensor([0.25, 0.25]))
    torch.testing.assert_close(mid, 0.75 * x0 + 0.25 * noise)


def test_loss_is_velocity_mse_over_frames_not_given():
    dit = trained_like_dit()
    cfg = DiffusionConfig(text_drop_rate=0.0, shift=2.0)
    x0 = torch.randn(2, 16, 3, 4, 4)
    emb, mask = text(2)
    cond = Cond(x0, torch.tensor([[True, False, False], [True, False, True]]))
    loss, _ = flow_matching_loss(dit, x0, emb, mask, cfg, cond=cond, generator=_g(5))

    # the same draws, in the same order, by hand
    g = _g(5)
    t = sample_timesteps(2, cfg, 3 * 2 * 2, g)
    noise = randn((2, 16, 3, 4, 4), g, "cpu")
    with torch.no_grad():
        v = dit(add_noise(x0, noise, t), t, emb, mask, cond=cond)
    err = (v - (noise - x0)).square()
    expected = torch.cat([err[0, :, 1:].flatten(), err[1, :, 1].flatten()]).mean()
    torch.testing.assert_close(loss.detach(), expected)


def test_text_dropout_at_rate_one_trains_the_unconditional_model():
    dit = trained_like_dit()
    x0 = torch.randn(1, 16, 2, 4, 4)
    emb, mask = text(1)
    no_cond = Cond(torch.zeros_like(x0), torch.zeros(1, 2, dtype=torch.bool))
    dropped, _ = flow_matching_loss(
        dit, x0, emb, mask, DiffusionConfig(text_drop_rate=1.0), cond=no_cond, generator=_g(1)
    )
    # with rate 1 every sample draws one uniform and is dropped; replay without text
    g = _g(1)
    torch.rand(1, generator=g)
    cfg = DiffusionConfig(text_drop_rate=0.0)
    t = sample_timesteps(1, cfg, 4, g)
    noise = randn((1, 16, 2, 4, 4), g, "cpu")
    with torch.no_grad():
        v = dit(add_noise(x0, noise, t), t, None, None, cond=no_cond)
    torch.testing.assert_close(dropped.detach(), (v - (noise - x0)).square().mean())


def test_token_dropout_hides_words_apart_and_keeps_one_a_sample():
    mask = torch.zeros(4000, 8, dtype=torch.bool)
    mask[:, :5] = True  # five words, three pads
    mask[0, 1:] = False  # a one-word caption
    kept = drop_tokens(mask, 0.3, _g(0))
    assert not (kept & ~mask).any()  # padding stays hidden
    assert kept.any(1).all()  # no sample loses all its words
    assert kept[0].tolist() == mask[0].tolist()  # dropping its only word would, so it keeps it
    share = 1 - kept[:, :5].float().mean().item()
    assert 0.27 < share < 0.31  # ~0.3 minus the few samples that would have lost all 5
    assert (kept[:, 0] != kept[:, 1]).any()  # each word on its own draw
    assert drop_tokens(mask, 0.0, _g(0)).equal(mask)


def test_token_dropout_changes_what_the_dit_sees():
    dit = trained_like_dit()
    x0 = torch.randn(2, 16, 2, 4, 4)
    emb, mask = text(2)
    no_cond = Cond(torch.zeros_like(x0), torch.zeros(2, 2, dtype=torch.bool))
    losses = [
        flow_matching_loss(
            dit, x0, emb, mask, DiffusionConfig(text_drop_rate=0.0, token_drop_rate=rate),
            cond=no_cond, generator=_g(3),
        )[0].item()
        for rate in (1e-9, 0.9)  # both draw the same numbers; only the first hides nothing
    ]  # fmt: skip
    assert losses[0] != losses[1]


def test_random_conditioning_draws_every_task():
    latents = torch.zeros(400, 1, 5, 1, 1)
    cond = random_cond(latents, (0.25, 0.25, 0.25, 0.25), _g(0))
    rows = {tuple(r) for r in cond.mask.int().tolist()}
    assert (0, 0, 0, 0, 0) in rows  # text only
    assert (1, 0, 0, 0, 0) in rows  # image
    assert (1, 0, 0, 0, 1) in rows  # interpolation
    assert (1, 1, 1, 0, 0) in rows  # continuation
    assert not cond.mask.all(1).any()  # something is always left to generate
    images = random_cond(torch.zeros(8, 1, 1, 1, 1), (0.0, 1.0, 0.0, 0.0), _g(0))
    assert not images.mask.any()


def test_frame_mask_rejects_unknown_tasks_and_bad_prefixes():
    assert frame_mask("continue", 5, prefix=2)[0].tolist() == [True, True, False, False, False]
    with pytest.raises(ValueError, match="task"):
        frame_mask("inpaint", 5)
    with pytest.raises(ValueError, match="prefix"):
        frame_mask("continue", 5, prefix=5)


def test_schedule_runs_from_noise_to_data():
    times = timestep_schedule(10, 3.0)
    assert times[0] == 1 and times[-1] == 0 and len(times) == 11
    assert (times[1:] < times[:-1]).all()


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_seeded_sampling_is_deterministic(method):
    dit = trained_like_dit()
    emb, mask = text()
    kwargs = {"steps": 4, "cfg_scale": 3.0, "method": method}
    a = sample_latents(dit, emb, mask, (16, 2, 4, 4), seed=7, **kwargs)
    b = sample_latents(dit, emb, mask, (16, 2, 4, 4), seed=7, **kwargs)
    c = sample_latents(dit, emb, mask, (16, 2, 4, 4), seed=8, **kwargs)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0.1


def test_guidance_scale_one_is_the_plain_conditional_flow():
    dit = trained_like_dit()
    emb, mask = text()
    plain = sample_latents(dit, emb, mask, (16, 2, 4, 4), steps=3, cfg_scale=1.0, seed=0)
    guided = sample_latents(dit, emb, mask, (16, 2, 4, 4), steps=3, cfg_scale=5.0, seed=0)
    assert (plain - guided).abs().max() > 1e-3


def test_steps_and_guidance_default_to_the_diffusion_config():
    dit = trained_like_dit()
    emb, mask = text()
    cfg = DiffusionConfig(sample_steps=3, cfg_scale=2.0)
    implicit = sample_latents(dit, emb, mask, (16, 2, 4, 4), seed=0, diffusion=cfg)
    explicit = sample_latents(
        dit, emb, mask, (16, 2, 4, 4), seed=0, diffusion=cfg, steps=3, cfg_scale=2.0
    )
    assert torch.equal(implicit, explicit)


def test_given_frames_come_out_exactly():
    dit = trained_like_dit()
    emb, mask = text()
    given = torch.randn(1, 16, 3, 4, 4)
    cond = Cond(given, torch.tensor([[True, False, True]]))
    for method in ("euler", "heun"):
        out = sample_latents(
            dit, emb, mask, (16, 3, 4, 4), steps=3, seed=0, cond=cond, method=method
        )
        torch.testing.assert_close(out[:, :, [0, 2]], given[:, :, [0, 2]])
        assert (out[:, :, 1] - given[:, :, 1]).abs().max() > 0.1


def test_sample_decodes_a_clamped_video():
    dit = trained_like_dit()
    torch.manual_seed(0)
    vae = VAE(tiny().vae).eval()
    emb, mask = text(2)
    video = sample(dit, vae, emb, mask, frames=9, height=32, width=32, steps=2, seed=0)
    assert video.shape == (2, 3, 9, 32, 32)
    assert video.min() >= -1 and video.max() <= 1


def test_image_to_video_conditioning_from_pixels():
    torch.manual_seed(0)
    vae = VAE(tiny().vae).eval()
    image = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    cond = encode_given_frames(vae, image, 3, "image")
    assert cond.mask.tolist() == [[True, False, False]]
    torch.testing.assert_close(cond.latents[:, :, :1], vae.encode(image))
    assert cond.latents[:, :, 1:].abs().max() == 0
    ends = encode_given_frames(vae, torch.rand(1, 3, 2, 32, 32), 3, "interpolate")
    assert ends.mask.tolist() == [[True, False, True]]
    prefix = encode_given_frames(vae, torch.rand(1, 3, 5, 32, 32), 3, "continue")
    assert prefix.mask.tolist() == [[True, True, False]]
    with pytest.raises(ValueError, match="nothing to generate"):
        encode_given_frames(vae, torch.rand(1, 3, 9, 32, 32), 3, "continue")


def test_a_dit_trained_on_one_latent_samples_it():
    # end to end: flow-matching training on a single example, then Euler and Heun
    # sampling from fresh noise must land near it (an untrained DiT returns the noise)
    torch.manual_seed(0)
    cfg = tiny()
    cfg.diffusion = DiffusionConfig(text_drop_rate=0.0, cond_probs=(1, 0, 0, 0), shift=1.0)
    x0 = torch.randn(1, 16, 2, 4, 4)
    emb, _ = text()
    dit = DiT(cfg.dit)
    before = sample_latents(dit, emb, None, (16, 2, 4, 4), steps=10, cfg_scale=1.0, seed=1)
    opt = torch.optim.Adam(dit.parameters(), lr=3e-3)
    g = _g(0)
    for _ in range(400):
        batch = x0.expand(8, -1, -1, -1, -1)
        loss, _ = flow_matching_loss(
            dit, batch, emb.expand(8, -1, -1), None, cfg.diffusion, generator=g
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    dit.eval()

    def rel_err(z):
        return ((z - x0).norm() / x0.norm()).item()

    assert rel_err(before) > 1.0
    for method in ("euler", "heun"):
        z = sample_latents(
            dit, emb, None, (16, 2, 4, 4), steps=10, cfg_scale=1.0, seed=1, method=method,
            diffusion=cfg.diffusion,
        )  # fmt: skip
        assert rel_err(z) < 0.5, method


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
