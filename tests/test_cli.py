"""The `lvd` command line: help, and one-line errors with exit status 2."""

import subprocess
import sys

import pytest

from pipelines.cli import COMMANDS, main


def run_lvd(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_subcommand():
    out = run_lvd("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert "usage: lvd " + name in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["curate", "x.mp4"],  # --out missing
        ["filter", "in", "--out", "o", "--min", "motion_score"],
        ["bogus"],
        ["generate", "--ckpt", "c", "--out", "o.mp4", "--steps", "many"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args):
    out = run_lvd(*args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["curate", "train"])
def test_help_config_lists_keys_without_other_arguments(name):
    out = run_lvd(name, "--help-config")
    assert out.returncode == 0, out.stderr
    assert "seed" in out.stdout or "shots.min_clip_s" in out.stdout
