"""`lvd demo` end to end at the tiny training preset: every real step runs and the page,
the judged results and the accuracy line come out. (Whether the small preset learns the
task is measured by `make demo` itself; its figures are in the README.)"""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines.demo.command import demo_prompts
from pipelines.demo.corpus import held_out_prompts
from pipelines.demo.page import STAGE_ROLES, last_samples


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, "-m", "pipelines.cli", "demo", "--out", str(out)]
    cmd += ["--preset", "tiny", "--videos-per-combo", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.slow
def test_demo_prints_the_held_out_accuracy_last(demo):
    _, stdout = demo
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("lvd demo: held-out prompts followed from pixels: pairs colour ")
    assert "; triples colour " in last
    assert last.endswith(f"({len(demo_prompts())} videos)")


@pytest.mark.slow
def test_held_out_prompts_and_pairs_never_appear_in_training_captions(demo):
    out, _ = demo
    captions = {p.read_text().strip() for p in (out / "corpus").glob("*.txt")}
    assert captions and not captions & {p for p, *_ in held_out_prompts()}
    seen = {(c.split()[1], c.split()[-1]) for c in captions}  # (colour, direction)
    pairs = {(c, d) for _, c, _, d, kind in held_out_prompts() if kind == "pair"}
    assert len(pairs) == 4 and not seen & pairs


@pytest.mark.slow
def test_curation_rejects_the_broken_and_still_files(demo):
    out, _ = demo
    curated = json.loads((out / "curated" / "run.json").read_text())
    assert curated["videos_error"] == 2  # the zero-byte and the garbage file
    filtered = json.loads((out / "filtered" / "run.json").read_text())
    assert filtered["rules"][0]["column"] == "motion_p90"
    assert filtered["rules"][0]["removed"] >= 1  # the still subject
    assert (out / "filtered" / "report.html").is_file()


@pytest.mark.slow
def test_page_shows_report_losses_and_every_generated_video(demo):
    out, _ = demo
    info = json.loads((out / "run.json").read_text())
    results = info["results"]
    assert [r["prompt"] for r in results] == [p for p, *_ in demo_prompts()]
    assert len(list((out / "generated").glob("*.mp4"))) == len(results)
    accuracy = info["accuracy"]
    assert sum(a["videos"] for a in accuracy.values()) == len(results)
    assert {r["held_out"] for r in results} == set(accuracy) == {"pair", "triple"}
    for a in accuracy.values():
        assert 0 <= a["colour"] <= 1 and 0 <= a["direction"] <= 1
    page = (out / "index.html").read_text()
    assert '<iframe src="filtered/report.html"' in page
    # every stage shows its samples: the VAE's reconstructions, each DiT stage's prompts
    samples = {s: len(last_samples(out / "train", s)) for s in STAGE_ROLES}
    assert samples == {"vae": 2, "image": 2, "video": 2, "hq": 2}
    strips = len(results) + sum(samples.values())
    assert page.count("data:image/png;base64,") == strips + 1  # + the loss curves
    fidelity = info["vae_fidelity"]  # corpus shots through the VAE, judged
    assert fidelity["clips"] >= 30 and 0 <= fidelity["colour"] <= 1
    assert "The DiT can only learn what its VAE reconstructs: the VAE kept" in page
    train = json.loads((out / "train" / "run.json").read_text())
    assert set(train["stage_clips"]) == set(STAGE_ROLES)
    assert (out / "train" / "final" / "dit.safetensors").is_file()


def test_vae_check_reads_shots_at_the_dits_rate_and_size(tmp_path):
    from curate.encode import write_video
    from pipelines.demo.judge import judge
    from pipelines.demo.vae_check import first_shot

    frames = []
    for i in range(24):  # 12 fps: a red square moving right 2 px a frame
        f = np.full((64, 64, 3), 120, np.uint8)
        f[28:36, 4 + 2 * i : 12 + 2 * i] = (220, 40, 40)
        frames.append(f)
    write_video(tmp_path / "a.mp4", frames, 12)
    shot = first_shot(tmp_path / "a.mp4", frames=5, fps=6.0, size=32)
    assert shot.shape == (5, 32, 32, 3)
    seen = judge(shot)
    assert (seen.colour, seen.direction) == ("red", "right")
    assert abs(seen.travel - 8 * 2 / 64) < 0.03  # every second frame: 8 source frames
    assert first_shot(tmp_path / "a.mp4", frames=13, fps=6.0, size=32) is None  # too short
    (tmp_path / "b.mp4").write_bytes(b"not a video")
    assert first_shot(tmp_path / "b.mp4", frames=5, fps=6.0, size=32) is None


def test_bad_corpus_size_is_one_line(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["demo", "--out", str(tmp_path), "--videos-per-combo", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lvd demo: error: --videos-per-combo must be >= 1, got 0"


def test_held_out_triples_have_every_pair_in_training():
    import itertools

    from pipelines.demo.corpus import COLOURS, DIRECTIONS, SHAPES, held_out_kind

    trained = [c for c in itertools.product(COLOURS, SHAPES, DIRECTIONS) if not held_out_kind(*c)]
    triples = [(c, s, d) for _, c, s, d, kind in held_out_prompts() if kind == "triple"]
    assert len(triples) == 6
    for combo in triples:
        for keep in ((0, 1), (0, 2), (1, 2)):  # (colour, shape), (colour, dir), (shape, dir)
            assert any(all(t[k] == combo[k] for k in keep) for t in trained), (combo, keep)


def test_still_share_adds_captioned_videos_that_do_not_move(tmp_path):
    from pipelines.demo.corpus import make_corpus
    from pipelines.demo.steps import read_video

    videos = make_corpus(tmp_path, videos_per_combo=1, size=32, still_share=0.1)
    moving = [v for v in videos if v.kind == "moving"]
    stills = [v for v in videos if v.kind == "still" and v.caption]
    assert len(moving) == 30 and len(stills) == 3
    for v in stills:
        assert v.caption in {m.caption for m in moving}  # a caption that says it moves
        assert (tmp_path / v.path).with_suffix(".txt").read_text().strip() == v.caption
        frames = read_video(v.path).astype(int)
        assert abs(frames[0] - frames[-1]).mean() < 2  # only the codec's noise
