"""Saving and loading models: safetensors weights beside the config as JSON."""

import json

import pytest
import torch

from model.checkpoint import load_config, load_model, save_model
from model.config import tiny
from model.dit import DiT
from model.vae import VAE


@pytest.fixture()
def nets():
    torch.manual_seed(0)
    cfg = tiny()
    cfg.dit.text_mode = "cross"
    vae, dit = VAE(cfg.vae).eval(), DiT(cfg.dit).eval()
    with torch.no_grad():
        for p in dit.parameters():  # leave adaLN-Zero so the output is not trivially 0
            p.add_(torch.randn_like(p) * 0.05)
    return cfg, vae, dit


def test_save_and_load_round_trip(tmp_path, nets):
    cfg, vae, dit = nets
    save_model(tmp_path / "ckpt", cfg, vae=vae, dit=dit)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "dit.safetensors",
        "vae.safetensors",
    ]
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == cfg
    assert not loaded.dit.training and not loaded.vae.training

    x, t = torch.randn(1, 16, 2, 4, 4), torch.rand(1)
    text = torch.randn(1, 16, 512)
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.dit(x, t, text), dit(x, t, text))
        assert torch.equal(loaded.vae.encode(video), vae.encode(video))
    for name, tensor in dit.state_dict().items():
        assert torch.equal(loaded.dit.state_dict()[name], tensor), name


def test_a_vae_only_folder_loads_without_dit(tmp_path, nets):
    cfg, vae, _ = nets
    save_model(tmp_path, cfg, vae=vae)
    loaded = load_model(tmp_path)
    assert loaded.vae is not None and loaded.dit is None
    assert load_model(tmp_path, parts=("dit",)).vae is None


def test_config_json_is_the_resolved_config(tmp_path, nets):
    cfg, vae, _ = nets
    save_model(tmp_path, cfg, vae=vae)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["dit"]["text_mode"] == "cross"
    assert data["vae"]["channel_mults"] == list(cfg.vae.channel_mults)
    assert load_config(tmp_path) == cfg


def test_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        load_model(tmp_path / "nothing")


def test_weights_that_do_not_fit_the_config_are_rejected(tmp_path, nets):
    cfg, _, dit = nets
    save_model(tmp_path, cfg, dit=dit)
    data = json.loads((tmp_path / "config.json").read_text())
    data["dit"]["depth"] = 3
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"do not match config\.dit"):
        load_model(tmp_path)


def test_network_and_config_must_agree_on_save(tmp_path, nets):
    _, _, dit = nets
    other = tiny()
    with pytest.raises(ValueError, match=r"differs from config\.dit"):
        save_model(tmp_path, other, dit=dit)
    assert not any(tmp_path.iterdir())


def test_bad_config_json_is_reported_with_its_path(tmp_path, nets):
    cfg, vae, _ = nets
    save_model(tmp_path, cfg, vae=vae)
    data = json.loads((tmp_path / "config.json").read_text())
    data["dit"]["colour"] = 1
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"config.json: bad model config: unknown key 'dit.colour'"
    ):
        load_config(tmp_path)
