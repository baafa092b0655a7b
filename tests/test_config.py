"""Typed config: presets, files, key=value overrides, and errors that name the key."""

import pytest

from curate.config import PRESETS, CurateConfig
from pipelines.common.config_loader import (
    ConfigError,
    apply_overrides,
    build,
    describe,
    from_dict,
    merge_file,
    to_dict,
)


def test_overrides_are_parsed_by_field_type():
    cfg = apply_overrides(
        CurateConfig(),
        ["shots.min_clip_s=3", "decode.threads=2", "keyframes.format=png", "clip.pretrained="],
    )
    assert cfg.shots.min_clip_s == 3.0 and isinstance(cfg.shots.min_clip_s, float)
    assert cfg.decode.threads == 2 and cfg.keyframes.format == "png"
    assert cfg.clip.pretrained == ""


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shots.min_clip_z=3", "unknown key 'shots.min_clip_z' (did you mean 'min_clip_s'?)"),
        ("nope.x=1", "unknown key 'nope.x'"),
        ("decode.threads=two", "decode.threads: expected an integer, got 'two'"),
        ("shots.min_clip_s=-1", "shots.min_clip_s must be > 0"),
        ("shots=3", "'shots' is a section"),
        ("shots.min_clip_s", "is not key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(CurateConfig(), [override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_cross_field_check_names_both_keys():
    with pytest.raises(ConfigError, match=r"shots.max_clip_s \(1.0\) must be >= min_clip_s"):
        apply_overrides(CurateConfig(), ["shots.max_clip_s=1"])


def test_yaml_and_toml_files(tmp_path):
    (tmp_path / "a.yaml").write_text("shots:\n  min_clip_s: 4\nkeyframes:\n  short_side: 128\n")
    (tmp_path / "b.toml").write_text("[shots]\nmax_clip_s = 20.0\n")
    cfg = merge_file(merge_file(CurateConfig(), tmp_path / "a.yaml"), tmp_path / "b.toml")
    assert (cfg.shots.min_clip_s, cfg.shots.max_clip_s, cfg.keyframes.short_side) == (4, 20, 128)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shots:\n  min_clip_s: fast\n", "shots.min_clip_s: expected a number"),
        ("shots: [1, 2]\n", "shots: expected a table"),
        ("bogus: 1\n", "unknown key 'bogus'"),
        ("shots: {min_clip_s: 1\n", "cannot parse"),
        ("decode:\n  threads: true\n", "decode.threads: expected an integer"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        merge_file(CurateConfig(), path)


def test_build_resolves_preset_then_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("shots: {min_clip_s: 4, max_clip_s: 30}\n")
    cfg = build(PRESETS, "default", path, ["shots.min_clip_s=5"])
    assert (cfg.shots.min_clip_s, cfg.shots.max_clip_s) == (5, 30)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build(PRESETS, "huge")


def test_round_trip_through_dict():
    cfg = apply_overrides(CurateConfig(), ["shots.min_clip_s=3"])
    assert from_dict(CurateConfig, to_dict(cfg)) == cfg


def test_describe_lists_every_key_with_its_docstring():
    lines = describe(CurateConfig)
    line = next(x for x in lines if x.startswith("shots.min_clip_s "))
    assert "float" in line and "2.0" in line and "shorter than this are dropped" in line


def test_exponent_notation_is_a_number():
    cfg = apply_overrides(CurateConfig(), ["decode.timeout_s=1e3", "shots.max_clip_s=2e1"])
    assert (cfg.decode.timeout_s, cfg.shots.max_clip_s) == (1000.0, 20.0)
    with pytest.raises(ConfigError, match=r"decode\.threads: expected an integer, got '2\.5'"):
        apply_overrides(CurateConfig(), ["decode.threads=2.5"])
