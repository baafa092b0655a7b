"""Stage ablation at equal DiT compute: what Stable Video Diffusion's image -> video ->
high-quality staging, and curation, pay on the demo's task.

Per corpus seed: the demo's corpus, plus `--still-share` of videos whose subject stands
still under a caption that says it moves (what the motion filter removes), is curated
and filtered the way `lvd demo` does it. One VAE (the small preset's vae stage) is
trained and shared by every variant. Each variant trains the DiT at the same compute,
steps x batch x video tokens, as the small preset's three DiT stages, generates the
demo's held-out prompts and is judged from pixels like the demo: colour and direction,
apart for held-out (colour, direction) pairs and held-out triples. The shared VAE is
judged too (pipelines/demo/vae_check.py): a subject it does not redraw moving caps what
any variant can follow.

Variants:
  video        the video stage alone, on the filtered set
  image-video  the image stage (the preset's steps), then video
  staged       image, video, hq: the small preset as it is
  unfiltered   the video stage alone, on the curated set before filtering

and, on the staged schedule, ways the caption could reach the DiT:
  staged-no-pool     the caption only through attention (no pooled token in adaLN)
  staged-cross       cross-attention to the caption (PixArt) in place of the joint
                     text-video attention (CogVideoX's experts), no pooled token
  staged-token-drop  30% of caption tokens hidden in training (each word must steer the
                     video apart from the words it came with), no pooled token

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.stages --seeds 0,1,2 \\
        [--variants video,image-video,staged,unfiltered] [--root /tmp/lvd-stages]

Results go to ROOT/results.json (a run is resumable: finished variants are kept) and a
markdown table of means and spreads (min-max over seeds) is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

VARIANTS = ("video", "image-video", "staged", "unfiltered")
# Variants of the text conditioning, each on the staged schedule: the settings it adds
# to the small preset (which pools the caption into adaLN: dit.pooled_text).
EXTRA = {
    "staged-no-pool": ["model.dit.pooled_text=false"],
    "staged-cross": ["model.dit.text_mode=cross", "model.dit.pooled_text=false"],
    "staged-token-drop": ["model.diffusion.token_drop_rate=0.3", "model.dit.pooled_text=false"],
}


def stage_tokens(cfg, name: str) -> int:
    """Tokens one optimizer step of a stage pushes through the DiT: video tokens and the
    caption's (text and video share every block in the DiT's expert mode)."""
    stage, model = getattr(cfg, name), cfg.model
    side = model.vae.spatial_downsample
    _, ph, pw = model.dit.patch_size
    height, width = stage.buckets[0]
    frames = (stage.frames - 1) // model.vae.temporal_downsample + 1
    video = frames * (height // (side * ph)) * (width // (side * pw))
    return stage.batch_size * (video + model.text_encoder.max_length)


def schedules() -> dict[str, dict[str, int]]:
    """DiT stage steps of each variant, all at the small preset's compute."""
    from pipelines.training.config import small

    cfg = small()
    tokens = {n: stage_tokens(cfg, n) for n in ("image", "video", "hq")}
    budget = sum(getattr(cfg, n).steps * tokens[n] for n in tokens)
    image = cfg.image.steps * tokens["image"]
    only_video = round(budget / tokens["video"])
    return {
        "video": {"image": 0, "video": only_video, "hq": 0},
        "image-video": {
            "image": cfg.image.steps,
            "video": round((budget - image) / tokens["video"]),
            "hq": 0,
        },
        "staged": {n: getattr(cfg, n).steps for n in tokens},
        "unfiltered": {"image": 0, "video": only_video, "hq": 0},
        **{name: {n: getattr(cfg, n).steps for n in tokens} for name in EXTRA},
    }


def train_args(
    data: Path, out: Path, seed: int, steps: dict[str, int], vae: Path | None, extra=()
) -> list[str]:
    args = ["train", "--preset", "small", "--data", str(data), "--out", str(out)]
    args += ["--cache-latents", "--set", "cache_windows=8", "--set", f"seed={seed}"]
    for setting in extra:
        args += ["--set", setting]
    for name, n in steps.items():
        args += ["--set", f"{name}.steps={n}"]
    if vae is not None:
        args += ["--set", "vae.steps=0", "--set", f"vae_from={vae}"]
    if (out / "checkpoints").is_dir():
        args.append("--resume")
    return args


def prepare(root: Path, seed: int, still_share: float) -> dict[str, Path]:
    """Corpus, curated and filtered folders and the shared VAE of one seed."""
    from pipelines.demo.command import MIN_MOTION
    from pipelines.demo.corpus import make_corpus
    from pipelines.demo.steps import run_step

    folder = root / f"seed-{seed}"
    timings: dict[str, float] = {}
    if not (folder / "corpus" / "manifest.json").is_file():
        make_corpus(folder / "corpus", videos_per_combo=3, seed=seed, still_share=still_share)
    if not (folder / "curated" / "run.json").is_file():
        curate = ["curate", str(folder / "corpus"), "--out", str(folder / "curated")]
        run_step("curate", [*curate, "--preset", "tiny", "--num-cpus", "2"], timings)
        import ray

        ray.shutdown()
    if not (folder / "filtered" / "run.json").is_file():
        filtered = ["filter", str(folder / "curated"), "--out", str(folder / "filtered")]
        run_step("filter", [*filtered, "--min", MIN_MOTION], timings)
    vae = folder / "vae"
    if not (vae / "final").is_dir():
        no_dit = {"image": 0, "video": 0, "hq": 0}
        run_step("vae", train_args(folder / "filtered", vae, seed, no_dit, None), timings)
    from pipelines.demo.vae_check import vae_fidelity

    return {"folder": folder, "curated": folder / "curated", "filtered": folder / "filtered",
            "vae_fidelity": vae_fidelity(vae, folder / "corpus")}  # fmt: skip


def run_variant(paths: dict[str, Path], variant: str, seed: int, steps: dict[str, int]) -> dict:
    from pipelines.demo.command import (
        FRAMES,
        SIZE,
        demo_prompts,
        held_out_accuracy,
        judge_generated,
    )
    from pipelines.demo.steps import run_step

    folder = paths["folder"] / variant
    data = paths["curated" if variant == "unfiltered" else "filtered"]
    timings: dict[str, float] = {}
    vae = paths["folder"] / "vae"
    train = train_args(data, folder / "train", seed, steps, vae, EXTRA.get(variant, ()))
    run_step(f"train {variant}", train, timings)
    prompts = demo_prompts()
    (folder / "prompts.txt").write_text("".join(p[0] + "\n" for p in prompts))
    generated = folder / "generated"
    for old in generated.glob("*.mp4"):
        old.unlink()
    generate = ["generate", "--ckpt", str(folder / "train"), "--out", str(generated)]
    generate += ["--prompts-file", str(folder / "prompts.txt"), "--frames", str(FRAMES)]
    run_step("generate", [*generate, "--size", f"{SIZE}x{SIZE}", "--seed", "0"], timings)
    accuracy = held_out_accuracy(judge_generated(generated, prompts))
    clips = json.loads((folder / "train" / "run.json").read_text())["stage_clips"]
    vae_steps = json.loads((vae / "run.json").read_text())["config"]["vae"]["steps"]
    return {"seed": seed, "variant": variant, "steps": steps, "accuracy": accuracy,
            "vae_steps": vae_steps, "vae_fidelity": paths["vae_fidelity"],
            "train_s": timings[f"train {variant}"],
            "clips": {n: c["clips"] for n, c in clips.items()}}  # fmt: skip


def table(results: list[dict]) -> str:
    def cell(rows: list[dict], kind: str, what: str) -> str:
        values = [100 * r["accuracy"][kind][what] for r in rows]
        return f"{statistics.mean(values):.0f}% ({min(values):.0f}-{max(values):.0f})"

    lines = [
        "| variant | DiT steps (image/video/hq) | seeds | pairs colour | pairs direction "
        "| triples colour | triples direction | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in [*VARIANTS, *EXTRA]:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        s = rows[0]["steps"]
        seeds = ",".join(str(r["seed"]) for r in rows)
        cells = [cell(rows, k, w) for k in ("pair", "triple") for w in ("colour", "direction")]
        train_s = statistics.mean(r["train_s"] for r in rows)
        lines.append(
            f"| {variant} | {s['image']}/{s['video']}/{s['hq']} | {seeds} | "
            f"{' | '.join(cells)} | {train_s:.0f} |"
        )
    for seed in sorted({r["seed"] for r in results if "vae_fidelity" in r}):
        fid = next(r["vae_fidelity"] for r in results if r["seed"] == seed and "vae_fidelity" in r)
        lines.append(f"\nseed {seed}: the shared VAE kept colour {fid['colour']:.0%}, "
                     f"direction {fid['direction']:.0%} of {fid['clips']} corpus shots")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="corpus and training seeds")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument(
        "--still-share",
        type=float,
        default=0.25,
        help="captioned still videos added, as a share of the moving ones",
    )
    p.add_argument("--root", default="/tmp/lvd-stages")
    args = p.parse_args()  # fmt: skip
    variants, plan = args.variants.split(","), schedules()
    if unknown := set(variants) - set(plan):
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {sorted(plan)}")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    store = root / "results.json"
    results = json.loads(store.read_text()) if store.is_file() else []
    for seed in map(int, args.seeds.split(",")):
        paths = None
        for variant in variants:
            if any(r["seed"] == seed and r["variant"] == variant for r in results):
                continue
            paths = paths or prepare(root, seed, args.still_share)
            started = time.perf_counter()
            results.append(run_variant(paths, variant, seed, plan[variant]))
            print(f"stages: seed {seed} {variant}: {results[-1]['accuracy']} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
            store.write_text(json.dumps(results, indent=1))
    print(table([r for r in results if r["variant"] in variants]))


if __name__ == "__main__":
    main()
