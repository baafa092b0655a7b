"""Multi-view: the DiT's camera-path input, camera sidecars through curate, the mv stage,
`lvd generate --orbit` and its errors, the orbit judge on true renders, and `lvd demo
--task multiview` end to end at the tiny preset."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from curate.camera_path import CameraFileError, CameraPath, parse_camera
from model.config import preset
from model.dit import DiT
from pipelines.cli import main
from pipelines.demo.corpus import background
from pipelines.demo.orbit_judge import judge_orbit
from pipelines.demo.orbits import HELD_OUT, SHAPES, make_solid, render


def _random_dit(camera: bool) -> DiT:
    cfg = preset("tiny").dit
    cfg.camera_conditioning = camera
    torch.manual_seed(0)
    dit = DiT(cfg).eval()
    with torch.no_grad():  # adaLN-Zero starts at zero output: open every branch
        for p in dit.parameters():
            p.normal_(0, 0.05)
    return dit


def test_a_zero_camera_path_leaves_the_dit_as_without_one():
    dit = _random_dit(camera=True)
    x, t = torch.randn(2, 16, 3, 4, 4), torch.tensor([0.3, 0.7])
    with torch.no_grad():
        plain = dit(x, t)
        zero = dit(x, t, camera=torch.zeros(2, 2))
        orbit = dit(x, t, camera=torch.tensor([[20.0, 45.0], [20.0, -45.0]]))
    torch.testing.assert_close(zero, plain)
    assert (orbit - plain).abs().mean() > 1e-3
    assert (orbit[0] - orbit[1]).abs().mean() > 1e-4  # the direction reaches the output


def test_a_dit_without_camera_conditioning_refuses_a_path():
    dit = _random_dit(camera=False)
    with pytest.raises(ValueError, match="no camera_conditioning"):
        dit(torch.randn(1, 16, 3, 4, 4), torch.tensor([0.5]), camera=torch.ones(1, 2))


def test_camera_entries_parse_or_name_the_key():
    where = "a.json"
    assert parse_camera(where, '{"camera": {"elevation_deg": 20, "azimuth_deg_per_s": -90.5}}') == (
        CameraPath(20.0, -90.5)
    )
    assert parse_camera(where, '{"caption": "x"}') is None  # metadata without a path
    assert parse_camera(where, "[]") is None  # a list is timed captions
    assert parse_camera(where, "not json") is None  # another tool's file
    with pytest.raises(CameraFileError, match=r"a.json: camera.azimuth_deg_per_s must be a number"):
        parse_camera(where, '{"camera": {"elevation_deg": 20, "azimuth_deg_per_s": "fast"}}')
    with pytest.raises(CameraFileError, match=r"camera.elevation_deg must be in \[-90, 90\]"):
        parse_camera(where, '{"camera": {"elevation_deg": 120, "azimuth_deg_per_s": 30}}')


@pytest.mark.parametrize("shape", SHAPES)
def test_the_judge_reads_the_direction_and_the_loop_of_true_orbits(shape):
    rng = np.random.default_rng(3)
    for elevation in (8.0, 30.0):
        solid, bg = make_solid(shape, 0, rng), background(rng, 32)
        start = rng.uniform(0, 360)
        for sign in (1, -1):
            frames = np.stack(
                [render(solid, start + sign * 45 * i, elevation, bg) for i in range(9)]
            )
            j = judge_orbit(frames, sign * 360)
            assert j.direction == sign and j.loop_closed
            # played backwards, the same frames turn the other way
            assert judge_orbit(frames[::-1], sign * 360).direction == -sign
        half = np.stack([render(solid, start + 22.5 * i, elevation, bg) for i in range(9)])
        assert judge_orbit(half[[0, 1, 2, 3, 4, 3, 2, 1, 0]], 360).loop_closed
        still = np.stack([render(solid, start, elevation, bg)] * 9)
        assert judge_orbit(still, 360).direction == 0


def test_curate_puts_the_camera_path_on_clips_and_a_bad_one_is_an_error_row(tmp_path, ray_local):
    from pipelines.common import shards
    from tests import synth

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("orbit", "plain", "bad"):
        synth.write(raw / f"{name}.mp4", synth.join([synth.Shot(3, 48, 1.0)], 96, 64), fps=24)
    (raw / "orbit.json").write_text('{"camera": {"elevation_deg": 15, "azimuth_deg_per_s": -120}}')
    (raw / "orbit.txt").write_text("a box\n")
    (raw / "bad.json").write_text('{"camera": {"elevation_deg": 15}}')
    out = tmp_path / "run"
    args = ["curate", str(raw), "--out", str(out), "--preset", "tiny", "--stages", "shots"]
    assert main(args) == 0
    clips = {
        c["video_path"].rsplit("/", 1)[-1]: c for c in shards.read_table(out / "clips").to_pylist()
    }
    assert set(clips) == {"orbit.mp4", "plain.mp4"}
    orbit, plain = clips["orbit.mp4"], clips["plain.mp4"]
    assert (orbit["camera_elevation_deg"], orbit["camera_azimuth_deg_per_s"]) == (15.0, -120.0)
    assert orbit["caption"] == "a box"  # the .txt beside a metadata .json is still read
    assert plain["camera_elevation_deg"] is None and plain["camera_azimuth_deg_per_s"] is None
    videos = {
        v["video_path"].rsplit("/", 1)[-1]: v for v in shards.read_table(out / "videos").to_pylist()
    }
    assert videos["bad.mp4"]["error_kind"] == "metadata_file"
    assert (
        "bad.json: camera.azimuth_deg_per_s must be a number, got None"
        in videos["bad.mp4"]["error"]
    )


def test_the_mv_stage_needs_camera_conditioning_and_clips_with_a_path(tmp_path, tmp_path_factory):
    from tests.test_train import make_curated, train

    data = make_curated(tmp_path_factory.getbasetemp())
    assert train(data, tmp_path / "a", "mv.steps=2") == 2
    settings = ("mv.steps=2", "model.dit.camera_conditioning=true")
    assert train(data, tmp_path / "b", *settings) == 2  # no clip of these has a path
    assert not (tmp_path / "b" / "checkpoints").exists()  # stopped before any work


def test_orbit_steps_are_per_sampled_frame():
    from pipelines.training.steps import orbit_steps

    camera = torch.tensor([[20.0, 180.0], [5.0, -90.0]])
    assert orbit_steps(camera, 6.0).tolist() == [[20.0, 30.0], [5.0, -15.0]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("mv-demo")
    cmd = [sys.executable, "-m", "pipelines.cli", "demo", "--task", "multiview", "--out", str(out)]
    cmd += ["--preset", "tiny", "--videos-per-combo", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.slow
def test_multiview_demo_prints_its_result_last_and_writes_the_page(demo):
    out, stdout = demo
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("lvd demo: multiview: rotation direction ")
    assert ", loop closure " in last and last.endswith(f"({len(HELD_OUT)} objects)")
    info = json.loads((out / "run.json").read_text())
    assert info["task"] == "multiview" and info["accuracy"]["videos"] == len(info["results"])
    assert len(list((out / "generated").glob("*.mp4"))) == len(info["results"]) == 32
    page = (out / "index.html").read_text()
    assert "Generated orbits" in page and page.count("<img") == len(info["results"]) + 1
    # corpus orbits through the VAE: the judge reads every original's turn at the DiT's
    # frames, rate and size, so none is left out
    fidelity = info["vae_fidelity"]
    videos = json.loads((out / "corpus" / "manifest.json").read_text())
    assert fidelity["clips"] == len(videos) and 0 <= fidelity["direction"] <= 1
    assert f"of {fidelity['clips']} corpus orbits" in page


@pytest.mark.slow
def test_held_out_objects_never_appear_in_training(demo):
    out, _ = demo
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    trained = {(v["shape"], v["scheme"]) for v in manifest}
    assert trained and not trained & set(HELD_OUT)
    assert {s for s, _ in trained} == set(SHAPES)
    state = json.loads((out / "train" / "run.json").read_text())
    assert "mv" in json.dumps(state)


@pytest.mark.slow
def test_generate_orbit_writes_a_video_and_bad_values_are_one_line_errors(demo, tmp_path, capsys):
    out, _ = demo
    image = next((out / "views").glob("*.png"))
    run = out / "train"
    video = tmp_path / "o.mp4"
    argv = ["generate", "--ckpt", str(run), "--image", str(image), "--frames", "9"]
    assert main([*argv, "--orbit", "-180", "--elevation", "10", "--out", str(video)]) == 0
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["task"] == "orbit" and sidecar["orbit_deg"] == -180
    assert sidecar["elevation_deg"] == 10 and sidecar["videos"][0]["prompt"] == ""
    capsys.readouterr()
    for extra, message in (
        (["--orbit", "0"], "--orbit must be non-zero degrees"),
        (["--orbit", "5000"], "--orbit must be non-zero degrees"),
        (["--orbit", "90", "--elevation", "100"], "--elevation must be in [-90, 90]"),
        (["--elevation", "10"], "--elevation needs --orbit"),
    ):
        assert main([*argv, *extra, "--out", str(tmp_path / "x.mp4")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    no_image = ["generate", "a box", "--ckpt", str(run), "--orbit", "90", "--out", str(video)]
    assert main(no_image) == 2
    assert "--orbit needs --image" in capsys.readouterr().err
