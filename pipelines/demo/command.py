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

import html
import os
import time
from pathlib import Path

import numpy as np

from pipelines.common.errors import UsageError
from pipelines.demo.corpus import held_out_prompts, make_corpus
from pipelines.demo.steps import frame_strip, loss_curves, read_video, run_step, write_results

# 8 samples per held-out prompt: 48 videos keep the accuracy's sampling noise near 4%.
SAMPLES_PER_PROMPT = 8
FRAMES, SIZE = 9, 32
# The subject is small on a still background, so the frame's mean flow (motion_score) is
# low even when it moves; the 90th percentile of per-pixel speed separates still clips
# (~0.1 % of the diagonal per second) from moving ones (>= 0.7).
MIN_MOTION = "motion_p90=0.5"


def judge_generated(folder: Path, prompts: list[tuple[str, str, str, str]]) -> list[dict]:
    from pipelines.demo.judge import judge

    files = sorted(folder.glob("*.mp4"))
    if len(files) != len(prompts):
        raise UsageError(
            f"expected {len(prompts)} generated videos in {folder}, found {len(files)}"
        )
    results = []
    for path, (prompt, colour, shape, direction) in zip(files, prompts, strict=True):
        frames = read_video(path)
        j = judge(frames)
        results.append(
            {
                "file": path.name,
                "prompt": prompt,
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


def write_page(out: Path, results: list[dict], timings: dict, accuracy: dict) -> Path:
    report = out / "filtered" / "report.html"
    rows = "".join(
        f"<tr><td>{html.escape(r['prompt'])}</td>"
        f"<td><img src='data:image/png;base64,{frame_strip(r['frames'])}'></td>"
        f"<td class={'ok' if r['colour_ok'] else 'bad'}>{r['judged_colour']}</td>"
        f"<td class={'ok' if r['direction_ok'] else 'bad'}>{r['judged_direction']}</td></tr>"
        for r in results
    )
    steps = "".join(f"<tr><td>{k}</td><td class=n>{v:.0f} s</td></tr>" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lvd demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1300px;color:#222}}
td,th{{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}}.n{{text-align:right}}
.ok{{color:#1e7b34;font-weight:600}}.bad{{color:#b3261e;font-weight:600}}
img{{image-rendering:pixelated}}</style></head><body>
<h1>lvd demo</h1>
<p>A corpus of coloured shapes moving in named directions was curated (shots, motion,
tiny captioner/CLIP/OCR scorers; sidecar captions kept), filtered, and used to train a
VAE and a video DiT on this CPU. The prompts below are colour/shape/direction
combinations that never appeared in training. Each video was judged from its pixels.</p>
<h2>Accuracy on held-out combinations</h2>
<table><tr><th>colour</th><td class=n>{accuracy["colour"]:.0%}</td></tr>
<tr><th>direction</th><td class=n>{accuracy["direction"]:.0%}</td></tr>
<tr><th>videos</th><td class=n>{accuracy["videos"]}</td></tr></table>
<h2>Curation</h2><p><a href="{os.path.relpath(report, out)}">The curation report</a>
(score histograms, filter counts, keyframes with captions), also shown here:</p>
<iframe src="{os.path.relpath(report, out)}" style="width:100%;height:560px;border:1px solid #ddd">
</iframe>
<h2>Training</h2><img src="data:image/png;base64,{loss_curves(out / "train")}">
<h2>Generated videos</h2>
<table><tr><th>prompt</th><th>frames</th><th>colour</th><th>direction</th></tr>{rows}</table>
<h2>Time per step</h2><table>{steps}</table></body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path


def run(args) -> int:
    if args.task == "multiview":
        from pipelines.demo.multiview import run as run_multiview

        return run_multiview(args)
    args.videos_per_combo = 2 if args.videos_per_combo is None else args.videos_per_combo
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
    ]
    if (out / "train" / "checkpoints").is_dir():
        train.append("--resume")
    run_step("train", train, timings)

    prompts = [p for p in held_out_prompts() for _ in range(SAMPLES_PER_PROMPT)]
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
    accuracy = {
        "colour": float(np.mean([r["colour_ok"] for r in results])),
        "direction": float(np.mean([r["direction_ok"] for r in results])),
        "videos": len(results),
    }
    timings["total"] = round(time.perf_counter() - started, 1)
    page = write_page(out, results, timings, accuracy)
    write_results(
        out, {"timings_s": timings, "accuracy": accuracy}, results, page, timings["total"]
    )
    print(
        f"lvd demo: held-out prompts followed from pixels: colour {accuracy['colour']:.0%}, "
        f"direction {accuracy['direction']:.0%} ({accuracy['videos']} videos)"
    )
    return 0
