"""Model configs: presets, validation messages, JSON round trip."""

import dataclasses

import pytest

from model.config import (
    PRESETS,
    DiffusionConfig,
    ModelConfig,
    TextEncoderConfig,
    preset,
    tiny,
)
from model.config_dict import from_dict as config_from_dict


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_a_dict(name):
    cfg = preset(name)
    assert config_from_dict(ModelConfig, dataclasses.asdict(cfg)) == cfg


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match=r"'huge' is unknown.*tiny"):
        preset("huge")


def test_parts_must_agree():
    cfg = tiny()
    with pytest.raises(ValueError, match=r"^dit\.latent_channels"):
        ModelConfig(vae=cfg.vae, dit=dataclasses.replace(cfg.dit, latent_channels=8),
                    text_encoder=cfg.text_encoder)  # fmt: skip
    with pytest.raises(ValueError, match=r"^dit\.text_dim"):
        ModelConfig(vae=cfg.vae, dit=cfg.dit, text_encoder=TextEncoderConfig(dim=4096))


def test_diffusion_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^cond_probs must sum to 1"):
        DiffusionConfig(cond_probs=(0.5, 0.5, 0.5, 0.0))
    with pytest.raises(ValueError, match=r"^text_drop_rate"):
        DiffusionConfig(text_drop_rate=1.5)
    with pytest.raises(ValueError, match=r"^shift"):
        DiffusionConfig(shift=-1.0)


def test_text_encoder_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^max_length"):
        TextEncoderConfig(max_length=0)
    with pytest.raises(ValueError, match=r"^dtype"):
        TextEncoderConfig(dtype="int8")


def test_every_field_has_a_docstring():
    import ast
    import inspect

    import model.config as module

    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if (
            isinstance(node, ast.ClassDef)
            and node.name.endswith("Config")
            and node.name != "ModelConfig"
        ):
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign):
                    doc = body[i + 1] if i + 1 < len(body) else None
                    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), (
                        f"{node.name}.{stmt.target.id} has no docstring"
                    )
