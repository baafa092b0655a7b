"""`lvd generate`: playable H.264 files with the requested frames and size, image
conditioning that holds the given first frame, prompt files, and one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from curate.clip_reader import read_frames_at
from curate.container import probe
from model.checkpoint import load_model
from pipelines.cli import main
from pipelines.generation.command import load_frame
from pipelines.training.data import to_unit_range
from tests.test_train import make_curated, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = make_curated(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("gen") / "run"
    settings = ("vae.steps=2", "image.steps=0", "video.steps=2", "hq.steps=0")
    assert train(data, out, *settings) == 0
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 60, 210))):
        img = np.clip(np.array(colour) + rng.normal(0, 10, (40, 56, 3)), 0, 255)
        path = folder / f"{name}.png"
        Image.fromarray(img.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def generate(*args) -> int:
    return main(["generate", *map(str, args)])


def test_text_to_video_writes_the_requested_frames_and_size(run, tmp_path):
    out = tmp_path / "a.mp4"
    assert generate("--ckpt", run, "a red circle moving left", "--out", out,
                    "--frames", 9, "--size", "48x32", "--steps", 3) == 0  # fmt: skip
    info = probe(out)
    assert (info.num_frames, info.width, info.height, info.codec) == (9, 48, 32, "h264")
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["videos"] == [{"file": "a.mp4", "prompt": "a red circle moving left", "seed": 0}]
    assert sidecar["frames"] == 9 and sidecar["task"] == "text"


def test_defaults_come_from_the_run(run, tmp_path):
    out = tmp_path / "b.mp4"
    assert generate("--ckpt", run, "a blue square moving up", "--out", out, "--steps", 2) == 0
    info = probe(out)
    assert (info.num_frames, info.width, info.height) == (5, 32, 32)  # the video stage's
    assert info.fps == pytest.approx(8.0)


def _pooled(rgb: np.ndarray) -> np.ndarray:
    """4x4 means: H.264 keeps these (it subsamples colour and smooths fine texture)."""
    h, w, c = rgb.shape
    return rgb.astype(np.float32).reshape(h // 4, 4, w // 4, 4, c).mean(axis=(1, 3))


def test_the_seed_fixes_the_video(run, tmp_path):
    videos = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / f"{name}.mp4"
        assert generate("--ckpt", run, "a red circle", "--out", out, "--seed", seed,
                        "--steps", 2, "--cfg", 1.0) == 0  # fmt: skip
        videos.append(read_frames_at(out, [0.0, 0.2, 0.4]).astype(np.int16))
    assert np.array_equal(videos[0], videos[1])
    assert np.abs(videos[0] - videos[2]).mean() > 1.0


def test_image_to_video_starts_from_the_given_image(run, images, tmp_path):
    vae = load_model(run / "final").vae
    expected = []
    for image in images:
        with torch.no_grad():  # a causal VAE decodes frame 0 from latent frame 0 alone
            pixels = to_unit_range(load_frame(str(image), 32, 32)[None, :, None])
            recon = vae.decode(vae.encode(pixels)).clamp(-1, 1)
        expected.append(_pooled(((recon[0, :, 0].permute(1, 2, 0) + 1) * 127.5).numpy()))
    for k, image in enumerate(images):
        out = tmp_path / f"{image.stem}.mp4"
        assert generate("--ckpt", run, "a shape", "--out", out, "--image", image,
                        "--frames", 5, "--steps", 2) == 0  # fmt: skip
        first = _pooled(read_frames_at(out, [0.0])[0])
        own, other = (np.abs(first - e).mean() for e in (expected[k], expected[1 - k]))
        assert own < 2.5 and other > 2 * own


def test_interpolation_between_two_images_runs(run, images, tmp_path):
    out = tmp_path / "i.mp4"
    assert generate("--ckpt", run, "a shape", "--out", out, "--image", images[0],
                    "--last-image", images[1], "--frames", 9, "--steps", 2) == 0  # fmt: skip
    assert probe(out).num_frames == 9
    assert json.loads(out.with_suffix(".json").read_text())["task"] == "interpolate"


def test_a_prompts_file_writes_numbered_videos(run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\n\na green triangle moving up\n")
    out = tmp_path / "many"
    assert generate("--ckpt", run, "--prompts-file", prompts, "--out", out, "--steps", 2) == 0
    assert sorted(p.name for p in out.glob("*.mp4")) == ["000.mp4", "001.mp4"]
    listed = json.loads((out / "run.json").read_text())["videos"]
    assert [v["prompt"] for v in listed] == [
        "a red circle moving left",
        "a green triangle moving up",
    ]


def test_a_checkpoint_folder_generates_with_its_ema_weights(run, tmp_path):
    newest = sorted((run / "checkpoints").glob("step-*"))[-1]
    out = tmp_path / "c.mp4"
    assert generate("--ckpt", newest, "a red circle", "--out", out, "--steps", 2) == 0
    assert probe(out).num_frames == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "8"], "--frames must be 1 + 4k"),
        (["--size", "30x30"], "multiples of 16"),
        (["--size", "big"], "--size must be WIDTHxHEIGHT"),
        (["--last-image", "x.png"], "--last-image needs --image"),
        (["--image", "missing.png"], "cannot read image missing.png"),
    ],
)
def test_bad_arguments_are_one_line(run, tmp_path, capsys, args, message):
    assert generate("--ckpt", run, "a prompt", "--out", tmp_path / "x.mp4", *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_folder_without_a_model_is_named(tmp_path, capsys):
    assert generate("--ckpt", tmp_path, "a prompt", "--out", tmp_path / "x.mp4") == 2
    assert "neither a model folder nor a training run" in capsys.readouterr().err


def test_an_orbit_from_a_model_without_an_mv_stage_is_refused(run, images, tmp_path, capsys):
    args = ["--image", images[0], "--orbit", "90", "--out", tmp_path / "x.mp4"]
    assert generate("--ckpt", run, *args) == 2
    err = capsys.readouterr().err
    assert "takes no camera path" in err and err.count("\n") == 1
