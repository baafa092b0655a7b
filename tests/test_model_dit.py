"""DiT: adaLN-Zero start, shapes, text masking, conditioning, RoPE, checkpointing, overfit."""

import pytest
import torch

from model.conditioning import Cond
from model.config import DiTConfig, tiny
from model.diffusion import flow_matching_loss
from model.dit import DiT
from model.rope import apply_rope, axis_dims, rope_3d

MODES = ["expert", "cross"]


def make_dit(mode: str = "expert", **overrides) -> DiT:
    torch.manual_seed(0)
    cfg = tiny().dit
    cfg.text_mode = mode
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return DiT(cfg)


def randomize_zero_init(dit: DiT) -> DiT:
    """Give the adaLN-Zero weights random values, as after some training, so outputs
    depend on every input."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "adaLN" in name or "final" in name or "cross_attn.proj" in name:
                p.normal_(std=0.05)
    return dit


def inputs(b=2, t=3, h=4, w=4, length=16):
    torch.manual_seed(2)
    x = torch.randn(b, 16, t, h, w)
    text = torch.randn(b, length, 512)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[:, 6:] = False
    return x, torch.rand(b), text, mask


@pytest.mark.parametrize("mode", MODES)
def test_output_is_zero_at_initialisation(mode):
    dit = make_dit(mode, micro_conditioning=True)
    x, t, text, mask = inputs()
    cond = Cond(torch.randn_like(x), torch.tensor([[True, False, False]] * 2))
    out = dit(x, t, text, mask, cond=cond, fps=torch.tensor([8.0, 24.0]), motion_score=t)
    assert out.shape == x.shape
    assert out.abs().max() == 0


@pytest.mark.parametrize("mode", MODES)
def test_blocks_are_identity_at_initialisation(mode):
    dit = make_dit(mode)
    tokens = torch.randn(2, 48, 64)
    text_tokens = torch.randn(2, 16, 64)
    c = torch.randn(2, 64)
    rope = rope_3d((3, 4, 4), 32, num_prefix=16 if mode == "expert" else 0)
    for block in dit.blocks:
        out, out_text = block(tokens, text_tokens, c, rope, None)
        torch.testing.assert_close(out, tokens)
        torch.testing.assert_close(out_text, text_tokens)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("frames", [1, 5, 9, 17, 49])
def test_output_shape_matches_input(mode, frames):
    # latents of a frames x 32 x 48 clip: 1 + (frames - 1) / 4 latent frames of 4 x 6
    dit = randomize_zero_init(make_dit(mode))
    x, t, text, mask = inputs(t=1 + (frames - 1) // 4, h=4, w=6)
    out = dit(x, t, text, mask)
    assert out.shape == x.shape
    assert torch.isfinite(out).all() and out.abs().max() > 0


@pytest.mark.parametrize("mode", MODES)
def test_padded_text_tokens_are_ignored(mode):
    dit = randomize_zero_init(make_dit(mode)).eval()
    x, t, text, mask = inputs()
    changed = text.clone()
    changed[:, 6:] = torch.randn_like(changed[:, 6:]) * 10
    with torch.no_grad():
        torch.testing.assert_close(dit(x, t, text, mask), dit(x, t, changed, mask))


@pytest.mark.parametrize("mode", MODES)
def test_real_text_tokens_change_the_output(mode):
    dit = randomize_zero_init(make_dit(mode)).eval()
    x, t, text, mask = inputs()
    changed = text.clone()
    changed[:, 2] = torch.randn_like(changed[:, 2])
    with torch.no_grad():
        assert (dit(x, t, text, mask) - dit(x, t, changed, mask)).abs().max() > 1e-4


def test_pooled_text_reads_the_caption_through_adaln_and_ignores_padding():
    dit = randomize_zero_init(make_dit(pooled_text=True)).eval()
    x, t, text, mask = inputs()
    padded = text.clone()
    padded[:, 6:] = torch.randn_like(padded[:, 6:]) * 10
    with torch.no_grad():
        torch.testing.assert_close(dit(x, t, text, mask), dit(x, t, padded, mask))
        plain = dit(x, t, text, mask)
        dit.text_pool.weight.zero_()  # the pooled path closed: only attention reads text
        assert (plain - dit(x, t, text, mask)).abs().max() > 1e-4
    # the DiT without it has no such layer and the same parameters otherwise
    names = {n for n, _ in make_dit().named_parameters()}
    assert {n for n, _ in dit.named_parameters()} - names == {"text_pool.weight", "text_pool.bias"}


def test_all_valid_mask_equals_no_mask():
    dit = randomize_zero_init(make_dit()).eval()
    x, t, text, _ = inputs()
    full = torch.ones(2, 16, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(dit(x, t, text, full), dit(x, t, text, None))


@pytest.mark.parametrize("mode", MODES)
def test_dropped_text_is_the_null_text(mode):
    dit = randomize_zero_init(make_dit(mode)).eval()
    x, t, text, mask = inputs()
    emb, emb_mask = dit.drop_text(text, mask, torch.tensor([True, False]))
    torch.testing.assert_close(emb[1], text[1])
    assert emb_mask[0].tolist() == [True] + [False] * 15
    with torch.no_grad():
        dropped = dit(x, t, emb, emb_mask)[:1]
        unconditional = dit(x[:1], t[:1], None, None)
    torch.testing.assert_close(dropped, unconditional, atol=1e-5, rtol=1e-4)


def test_conditioning_frames_enter_only_where_masked():
    dit = randomize_zero_init(make_dit()).eval()
    x, t, text, mask = inputs()
    given = torch.randn_like(x)
    frames = torch.tensor([[True, False, False]] * 2)
    with torch.no_grad():
        base = dit(x, t, text, mask, cond=Cond(given, frames))
        other_given = given.clone()
        other_given[:, :, 0] += 1.0
        moved = dit(x, t, text, mask, cond=Cond(other_given, frames))
        hidden = given.clone()
        hidden[:, :, 1:] += 1.0  # frames the mask does not give
        same = dit(x, t, text, mask, cond=Cond(hidden, frames))
    assert (base - moved).abs().max() > 1e-4
    torch.testing.assert_close(base, same)


def test_micro_conditioning_needs_and_uses_fps_and_motion():
    dit = randomize_zero_init(make_dit(micro_conditioning=True)).eval()
    x, t, text, mask = inputs()
    with pytest.raises(ValueError, match="fps and motion_score"):
        dit(x, t, text, mask)
    torch.nn.init.normal_(dit.fps_embed.mlp[2].weight)
    with torch.no_grad():
        a = dit(x, t, text, mask, fps=torch.tensor([8.0, 8.0]), motion_score=t)
        b = dit(x, t, text, mask, fps=torch.tensor([24.0, 24.0]), motion_score=t)
    assert (a - b).abs().max() > 1e-4


def test_wrong_text_width_and_patch_misfit_are_clear_errors():
    dit = make_dit()
    x, t, text, mask = inputs()
    with pytest.raises(ValueError, match=r"dit\.text_dim"):
        dit(x, t, text[..., :100], mask)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        dit(torch.randn(2, 16, 3, 5, 4), t, text, mask)


def test_gradient_checkpointing_gives_the_same_gradients():
    x, t, text, mask = inputs()
    grads = []
    for checkpointing in (False, True):
        dit = randomize_zero_init(make_dit(gradient_checkpointing=checkpointing)).train()
        dit(x, t, text, mask).square().mean().backward()
        grads.append(dit.blocks[0].attn.q.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("mode", MODES)
def test_bf16_autocast_matches_float32(mode):
    # the CUDA training path runs under bf16 autocast; CPU autocast exercises the same
    # dtype mixing (float32 norms and RoPE, bf16 matmuls and SDPA)
    dit = randomize_zero_init(make_dit(mode, gradient_checkpointing=True)).train()
    x, t, text, mask = inputs()
    reference = dit(x, t, text, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dit(x, t, text, mask)
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().max() < 0.02 * reference.abs().max()
    out.float().square().mean().backward()
    assert torch.isfinite(dit.blocks[0].attn.q.weight.grad).all()


def test_rope_attention_depends_only_on_relative_position():
    head_dim = 32
    cos, sin = rope_3d((4, 4, 4), head_dim)
    torch.manual_seed(0)
    q, k = torch.randn(head_dim), torch.randn(head_dim)
    rotated_q = apply_rope(q.expand(1, 1, 64, head_dim), cos, sin)[0, 0]  # (64, head_dim)
    rotated_k = apply_rope(k.expand(1, 1, 64, head_dim), cos, sin)[0, 0]

    def index(t, h, w):
        return (t * 4 + h) * 4 + w

    score = rotated_q[index(0, 1, 0)] @ rotated_k[index(1, 2, 2)]
    shifted = rotated_q[index(2, 2, 1)] @ rotated_k[index(3, 3, 3)]  # same offset (1, 1, 2)
    other = rotated_q[index(0, 1, 0)] @ rotated_k[index(2, 2, 2)]
    torch.testing.assert_close(score, shifted)
    assert (score - other).abs() > 1e-3


def test_text_prefix_gets_no_rotation():
    cos, sin = rope_3d((2, 2, 2), 32, num_prefix=5)
    assert cos[:5].eq(1).all() and sin[:5].eq(0).all()
    assert sum(axis_dims(64)) == 64 and all(d % 2 == 0 for d in axis_dims(64))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^num_heads"):
        DiTConfig(hidden_dim=64, num_heads=3)
    with pytest.raises(ValueError, match=r"^text_mode"):
        DiTConfig(text_mode="concat")
    with pytest.raises(ValueError, match=r"^patch_size"):
        DiTConfig(patch_size=(1, 2))


@pytest.mark.parametrize("mode", MODES)
def test_tiny_dit_overfits_one_batch(mode):
    dit = make_dit(mode)
    cfg = tiny().diffusion
    x0, _, text, mask = inputs(t=3, h=8, w=8)
    opt = torch.optim.Adam(dit.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        # the same generator seed every step: one fixed batch of (t, noise, task, dropout)
        g = torch.Generator().manual_seed(1)
        loss, _ = flow_matching_loss(dit, x0, text, mask, cfg, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[0] / losses[-1] > 10:
            break
    assert losses[0] / min(losses) > 10, f"loss went {losses[0]:.4f} -> {min(losses):.4f}"
