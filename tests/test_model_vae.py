"""3D causal VAE: shapes, the 4k+1 frame rule, causality, chunked == full, tiling, loss."""

import pytest
import torch
import torch.nn.functional as F

from model.config import VAEConfig, tiny
from model.tiling import tiled_apply
from model.vae import VAE, check_frames, estimate_scaling_factor
from model.vae_loss import PatchDiscriminator3d, Perceptual, discriminator_loss, vae_loss


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(tiny().vae).eval()


def blob_video(frames: int = 9, size: int = 32) -> torch.Tensor:
    """(1, 3, T, size, size) in [-1, 1]: a colour gradient with a soft blob moving right."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for t in range(frames):
        frame = torch.stack([0.5 * x, 0.5 * y, -0.3 * torch.ones_like(x)])
        blob = torch.exp(-((x - (-0.5 + t / frames)) ** 2 + (y - 0.1) ** 2) / 0.1)
        out.append(frame + blob * torch.tensor([0.8, -0.6, 0.6])[:, None, None])
    return torch.stack(out, 1)[None]


@pytest.mark.parametrize("frames", [1, 5, 9, 17, 49])
def test_encode_decode_shapes(vae, frames):
    video = torch.rand(1, 3, frames, 32, 48) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(video)
        recon = vae.decode(latents)
    assert latents.shape == (1, 16, 1 + (frames - 1) // 4, 4, 6)
    assert vae.latent_shape(frames, 32, 48) == latents.shape[1:]
    assert recon.shape == video.shape


@pytest.mark.parametrize("frames", [2, 8, 10])
def test_frames_not_4k_plus_1_are_rejected_with_the_trim_length(vae, frames):
    with pytest.raises(ValueError, match=r"1 \+ 4k frames") as err:
        vae.encode(torch.zeros(1, 3, frames, 32, 32))
    assert f"trim to {1 + 4 * ((frames - 1) // 4)}" in str(err.value)


def test_an_empty_video_is_rejected(vae):
    with pytest.raises(ValueError, match="at least 1"):
        vae.encode(torch.zeros(1, 3, 0, 32, 32))


def test_sides_not_divisible_by_8_are_rejected(vae):
    with pytest.raises(ValueError, match="divisible by 8"):
        vae.encode(torch.zeros(1, 3, 5, 30, 32))


def test_temporal_compression_is_configurable():
    cfg = tiny().vae
    cfg.temporal_downsample = 2
    vae = VAE(cfg).eval()
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 7, 16, 16))
        assert latents.shape[2] == 4
        assert vae.decode(latents).shape[2] == 7
    check_frames(7, 2)
    with pytest.raises(ValueError):
        check_frames(6, 2)


def test_one_frame_video_is_encoded_as_an_image(vae):
    video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        image_latent = vae.encode(video[:, :, :1], chunked=False)
        video_latents = vae.encode(video, chunked=False)
    # equal up to float rounding: oneDNN may pick other kernels for other shapes
    torch.testing.assert_close(image_latent, video_latents[:, :, :1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("frame", [1, 4, 5, 12, 16])
def test_encoder_is_causal(vae, frame):
    # pixel frame f >= 1 belongs to latent group (f + 3) // 4; every earlier latent must be
    # untouched when it changes, and its own latent must change
    video = torch.rand(1, 3, 17, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, :, frame] = torch.rand(3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = vae.encode(video, chunked=False), vae.encode(changed, chunked=False)
    group = (frame + 3) // 4
    torch.testing.assert_close(a[:, :, :group], b[:, :, :group], atol=1e-6, rtol=0)
    assert (a[:, :, group] - b[:, :, group]).abs().max() > 1e-3


@pytest.mark.parametrize("latent", [1, 2, 4])
def test_decoder_is_causal(vae, latent):
    z = torch.randn(1, 16, 5, 4, 4)
    changed = z.clone()
    changed[:, :, latent] = torch.randn(16, 4, 4)
    with torch.no_grad():
        a, b = vae.decode(z, chunked=False), vae.decode(changed, chunked=False)
    first_frame = 1 + 4 * (latent - 1)  # latent j decodes to frames 1 + 4(j-1) .. 4j
    torch.testing.assert_close(a[:, :, :first_frame], b[:, :, :first_frame], atol=1e-6, rtol=0)
    assert (a[:, :, first_frame] - b[:, :, first_frame]).abs().max() > 1e-3


@pytest.mark.parametrize("chunk_latent_frames", [1, 2, 3])
def test_chunked_encode_equals_full_pass(chunk_latent_frames):
    torch.manual_seed(0)
    cfg = tiny().vae
    cfg.chunk_latent_frames = chunk_latent_frames
    vae = VAE(cfg).eval()
    video = torch.rand(2, 3, 25, 32, 32) * 2 - 1
    with torch.no_grad():
        full = vae.encode(video, chunked=False)
        chunked = vae.encode(video)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("chunk_latent_frames", [1, 2, 3])
def test_chunked_decode_equals_full_pass(chunk_latent_frames):
    torch.manual_seed(0)
    cfg = tiny().vae
    cfg.chunk_latent_frames = chunk_latent_frames
    vae = VAE(cfg).eval()
    z = torch.randn(2, 16, 7, 4, 4)
    with torch.no_grad():
        full = vae.decode(z, chunked=False)
        chunked = vae.decode(z)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-4)


def test_tiled_apply_reproduces_a_local_function_exactly():
    def down(v):
        return F.avg_pool3d(v, (1, 8, 8))

    def up(v):
        return F.interpolate(v, scale_factor=(1, 8, 8))

    x = torch.randn(1, 2, 3, 40, 56)
    torch.testing.assert_close(tiled_apply(down, x, 24, 8, 1 / 8), down(x))
    z = torch.randn(1, 2, 3, 5, 7)
    torch.testing.assert_close(tiled_apply(up, z, 3, 1, 8), up(z))


def test_tiled_encode_decode_cover_large_frames(vae):
    # tile_px is 64 in the tiny preset: 96 x 128 frames need 2 x 3 overlapping tiles
    video = blob_video(5, 128)[:, :, :, 16:112]
    with torch.no_grad():
        latents = vae.encode(video)
        recon = vae.decode(latents)
        untiled = vae.encode(video, tiled=False)
    assert latents.shape == untiled.shape == (1, 16, 2, 12, 16)
    assert recon.shape == video.shape
    assert torch.isfinite(recon).all()


def test_tiling_is_skipped_when_the_frame_fits_one_tile(vae):
    video = torch.rand(1, 3, 5, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(vae.encode(video, tiled=True), vae.encode(video, tiled=False))


def test_scaling_factor_estimate_gives_unit_variance_latents(vae):
    videos = [blob_video(5, 32), blob_video(9, 32).flip(-1)]
    factor = estimate_scaling_factor(vae, videos)
    latents = torch.cat(
        [(vae.encode(v) / vae.cfg.scaling_factor * factor).flatten() for v in videos]
    )
    assert latents.std().item() == pytest.approx(1.0, rel=1e-4)


def test_vae_loss_is_l1_plus_weighted_kl(vae):
    video = blob_video(5, 32)
    loss, logs, recon = vae_loss(vae, video, torch.Generator().manual_seed(0))
    expected = (recon - video).abs().mean() + vae.cfg.kl_weight * logs["kl"]
    torch.testing.assert_close(loss, expected)
    assert logs["kl"] > 0


def test_l2_term_adds_the_weighted_squared_error():
    cfg = tiny().vae
    cfg.l2_weight = 2.0
    torch.manual_seed(0)
    vae = VAE(cfg)
    video = blob_video(5, 32)
    loss, logs, recon = vae_loss(vae, video, torch.Generator().manual_seed(0))
    l2 = (recon - video).pow(2).mean()
    torch.testing.assert_close(logs["l2"], l2.detach())
    torch.testing.assert_close(loss.detach(), logs["l1"] + cfg.kl_weight * logs["kl"] + 2.0 * l2)
    with pytest.raises(ValueError, match=r"^l2_weight"):
        VAEConfig(l2_weight=-1)


def test_perceptual_and_adversarial_terms_reach_the_vae(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])[:23]  # random VGG16 convs up to relu4_3
    weights = tmp_path / "vgg16.safetensors"
    save_file({f"features.{k}": v for k, v in features.state_dict().items()}, str(weights))

    cfg = tiny().vae
    cfg.perceptual_weight, cfg.adversarial_weight = 0.5, 0.1
    cfg.perceptual_weights_path = str(weights)
    vae = VAE(cfg)
    disc = PatchDiscriminator3d(channels=8)
    video = blob_video(5, 32)
    loss, logs, recon = vae_loss(
        vae, video, perceptual=Perceptual(str(weights)), discriminator=disc
    )
    assert logs["perceptual"] > 0
    expected = logs["l1"] + cfg.kl_weight * logs["kl"]
    expected = expected + 0.5 * logs["perceptual"] + 0.1 * logs["adversarial"]
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert vae.decoder.conv_out.conv.weight.grad.abs().sum() > 0
    d_loss = discriminator_loss(disc, video, recon)
    d_loss.backward()
    assert disc.net[0].weight.grad.abs().sum() > 0


def test_missing_perceptual_weights_fail_in_one_line(tmp_path):
    with pytest.raises(RuntimeError, match="perceptual_weights_path") as err:
        Perceptual(str(tmp_path / "absent.pt"))
    assert "\n" not in str(err.value)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^spatial_downsample"):
        VAEConfig(channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match=r"^temporal_downsample"):
        VAEConfig(temporal_downsample=3)
    with pytest.raises(ValueError, match=r"^norm_groups"):
        VAEConfig(base_channels=8, norm_groups=32)


@pytest.mark.slow
def test_tiny_vae_overfits_one_batch():
    torch.manual_seed(0)
    vae = VAE(tiny().vae)
    video = blob_video(5, 32)
    opt = torch.optim.Adam(vae.parameters(), lr=5e-3)
    losses = []
    for _ in range(400):
        loss, _, _ = vae_loss(vae, video, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[0] / losses[-1] > 10:
            break
    assert losses[0] / min(losses) > 10, f"loss went {losses[0]:.4f} -> {min(losses):.4f}"
