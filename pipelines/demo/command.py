"""`lvd demo`: the whole job on a built-in corpus, on a CPU, in minutes.

    corpus (coloured shapes moving in named directions, plus still, black and broken
    files) -> lvd curate (local Ray, tiny scorers, sidecar captions kept) -> lvd filter
    -> lvd report -> lvd train (VAE, then the DiT; small preset) -> lvd generate for
    prompts whose colour/shape/direction combination never appeared in training ->
    judge each generated video from its pixels -> one HTML page with everything.

Each step is the real command (pipelines.cli.main), so the demo exercises exactly what a
user runs. Rerunning reuses what is done: curation resumes, training resumes from its
last checkpoint, and the judged results are recomputed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from pipelines.common.errors import UsageError
from pipelines.demo.corpus import held_out_prompts, make_corpus
from pipelines.demo.page import write_page
from pipelines.demo.steps import read_video, run_step, write_results
from pipelines.demo.vae_check import fidelity_line, vae_fidelity

# Samples per held-out prompt: 48 videos of each kind (12 pair prompts, 6 triples) keep
# each accuracy's sampling noise near 4%.
SAMPLES_PER_PROMPT = {"pair": 4, "triple": 8}
FRAMES, SIZE = 9, 32
# The subject is small on a still background, so the frame's mean flow (motion_score) is
# low even when it moves; the 90th percentile of per-pixel speed separates still clips
# (~0.1 % of the diagonal per second) from moving ones (>= 0.7).
MIN_MOTION = "motion_p90=0.5"
SAMPLE_PROMPTS = "a red circle moving up, a green circle moving up"


def demo_prompts() -> list[tuple[str, str, str, str, str]]:
    """Every held-out prompt, repeated SAMPLES_PER_PROMPT[kind] times."""
    return [p for p in held_out_prompts() for _ in range(SAMPLES_PER_PROMPT[p[-1]])]


def held_out_accuracy(results: list[dict]) -> dict:
    """Colour and direction followed, apart for held-out pairs and triples."""
    accuracy = {}
    for kind in SAMPLES_PER_PROMPT:
        rows = [r for r in results if r["held_out"] == kind]
        accuracy[kind] = {
            "colour": float(np.mean([r["colour_ok"] for r in rows])),
            "direction": float(np.mean([r["direction_ok"] for r in rows])),
            "videos": len(rows),
        }
    return accuracy


def accuracy_line(accuracy: dict) -> str:
    parts = [
        f"{kind}s colour {a['colour']:.0%}, direction {a['direction']:.0%}"
        for kind, a in accuracy.items()
    ]
    videos = sum(a["videos"] for a in accuracy.values())
    return f"held-out prompts followed from pixels: {'; '.join(parts)} ({videos} videos)"


def judge_generated(folder: Path, prompts: list[tuple[str, str, str, str, str]]) -> list[dict]:
    from pipelines.demo.judge import judge

    files = sorted(folder.glob("*.mp4"))
    if len(files) != len(prompts):
        raise UsageError(
            f"expected {len(prompts)} generated videos in {folder}, found {len(files)}"
        )
    results = []
    for path, (prompt, colour, shape, direction, kind) in zip(files, prompts, strict=True):
        frames = read_video(path)
        j = judge(frames)
        results.append(
            {
                "file": path.name,
                "prompt": prompt,
                "held_out": kind,
                "colour": colour,
                "shape": shape,
                "direction": direction,
                "judged_colour": j.colour,
                "judged_direction": j.direction,
                "travel": round(j.travel, 3),
                "colour_ok": j.colour == colour,
                "direction_ok": j.direction == direction,
                "frames": frames,
            }
        )
    return results


def run(args) -> int:
    if args.task == "multiview":
        from pipelines.demo.multiview import run as run_multiview

        return run_multiview(args)
    args.videos_per_combo = 3 if args.videos_per_combo is None else args.videos_per_combo
    if args.videos_per_combo < 1:
        raise UsageError(f"--videos-per-combo must be >= 1, got {args.videos_per_combo}")
    out = Path(args.out).resolve()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    corpus = out / "corpus"
    if not (corpus / "manifest.json").is_file():
        t = time.perf_counter()
        make_corpus(corpus, videos_per_combo=args.videos_per_combo)
        timings["corpus"] = round(time.perf_counter() - t, 1)
    cpus = str(min(2, os.cpu_count() or 1))
    run_step(
        "curate",
        [
            "curate",
            str(corpus),
            "--out",
            str(out / "curated"),
            "--preset",
            "tiny",
            "--num-cpus",
            cpus,
        ],
        timings,
    )
    import ray

    ray.shutdown()  # free the workers' memory before training
    run_step(
        "filter",
        ["filter", str(out / "curated"), "--out", str(out / "filtered"), "--min", MIN_MOTION],
        timings,
    )
    run_step("report", ["report", str(out / "filtered")], timings)
    train = [
        "train",
        "--preset",
        args.preset,
        "--data",
        str(out / "filtered"),
        "--out",
        str(out / "train"),
        # Latents and text embeddings computed once (8 windows a clip) halve a DiT step.
        "--cache-latents",
        "--set",
        "cache_windows=8",
        # each DiT stage ends with samples of a held-out pair and a held-out triple
        "--set",
        f"sample_prompts=[{SAMPLE_PROMPTS}]",
    ]
    if (out / "train" / "checkpoints").is_dir():
        train.append("--resume")
    run_step("train", train, timings)

    t = time.perf_counter()
    fidelity = vae_fidelity(out / "train", out / "corpus")
    timings["vae check"] = round(time.perf_counter() - t, 1)
    print(f"lvd demo: {fidelity_line(fidelity)}", file=sys.stderr)

    prompts = demo_prompts()
    (out / "prompts.txt").write_text("".join(p[0] + "\n" for p in prompts))
    generated = out / "generated"
    for old in generated.glob("*.mp4"):
        old.unlink()
    run_step(
        "generate",
        [
            "generate",
            "--ckpt",
            str(out / "train"),
            "--prompts-file",
            str(out / "prompts.txt"),
            "--out",
            str(generated),
            "--frames",
            str(FRAMES),
            "--size",
            f"{SIZE}x{SIZE}",
            "--seed",
            "0",
        ],
        timings,
    )
    results = judge_generated(generated, prompts)
    accuracy = held_out_accuracy(results)
    timings["total"] = round(time.perf_counter() - started, 1)
    page = write_page(out, results, timings, accuracy, fidelity)
    info = {"timings_s": timings, "accuracy": accuracy, "vae_fidelity": fidelity}
    write_results(out, info, results, page, timings["total"])
    print(f"lvd demo: {accuracy_line(accuracy)}")
    return 0
