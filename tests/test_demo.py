"""`lvd demo` end to end at the tiny training preset: every real step runs and the page,
the judged results and the accuracy line come out. (Whether the small preset learns the
task is measured by `make demo` itself; its figures are in the README.)"""

import json
import subprocess
import sys

import pytest

from pipelines.demo.command import SAMPLES_PER_PROMPT
from pipelines.demo.corpus import held_out_prompts


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
    n = SAMPLES_PER_PROMPT * len(held_out_prompts())
    assert last.startswith("lvd demo: held-out prompts followed from pixels: colour ")
    assert last.endswith(f"({n} videos)")


@pytest.mark.slow
def test_held_out_prompts_never_appear_in_training_captions(demo):
    out, _ = demo
    captions = {p.read_text().strip() for p in (out / "corpus").glob("*.txt")}
    assert captions and not captions & {p for p, *_ in held_out_prompts()}


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
    assert [r["prompt"] for r in results] == [
        p for p, *_ in held_out_prompts() for _ in range(SAMPLES_PER_PROMPT)
    ]
    assert len(list((out / "generated").glob("*.mp4"))) == len(results)
    assert info["accuracy"]["videos"] == len(results)
    assert 0 <= info["accuracy"]["colour"] <= 1 and 0 <= info["accuracy"]["direction"] <= 1
    page = (out / "index.html").read_text()
    assert '<iframe src="filtered/report.html"' in page
    assert page.count("data:image/png;base64,") == len(results) + 1  # strips + loss curves
    assert (out / "train" / "final" / "dit.safetensors").is_file()


def test_bad_corpus_size_is_one_line(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["demo", "--out", str(tmp_path), "--videos-per-combo", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lvd demo: error: --videos-per-combo must be >= 1, got 0"
