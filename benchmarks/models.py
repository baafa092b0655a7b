"""Throughput of the model stages (caption, clip, text) in keyframes per second.

Feeds each stage batches of clips with 3 JPEG keyframes each (256 x 456, the default
keyframe size), the way the Ray pipeline will, and reports keyframes/s next to the cost
of merely decoding those keyframes, so figures from a noisy shared machine compare as
ratios within one run. By default it runs the tiny random models (`--preset tiny`); with
--real it also tries the default real models (skipped, with the reason, when their
weights cannot be loaded, e.g. offline).

    HF_HUB_OFFLINE=1 python benchmarks/models.py                 # tiny models, CPU
    python benchmarks/models.py --real --device cuda --clips 256  # real models on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.caption import CaptionStage
from curate.clip_score import ClipStage
from curate.config import PRESETS, CurateConfig
from curate.errors import ModelLoadError
from curate.images import decode_keyframes, encode_image
from curate.text_area import TextAreaStage

KEYFRAMES_PER_CLIP = 3


def make_batch(clips: int, seed: int = 0) -> dict[str, list]:
    """Clips of smooth random textures; every third keyframe carries a line of text."""
    rng = np.random.default_rng(seed)
    keyframes = []
    for c in range(clips):
        row = []
        for k in range(KEYFRAMES_PER_CLIP):
            rgb = cv2.GaussianBlur(rng.integers(0, 256, (256, 456, 3), dtype=np.uint8), (0, 0), 3)
            if (c + k) % 3 == 0:
                cv2.putText(
                    rgb, "SAMPLE TEXT", (20, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255,) * 3, 3
                )
            row.append(encode_image(rgb, "jpeg"))
        keyframes.append(row)
    return {"keyframes": keyframes}


def timed(fn, reps: int) -> float:
    """Best of `reps` wall-clock seconds (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def stages(cfg: CurateConfig, device: str, threads: int) -> dict:
    """Stage name -> (constructor, keyframes it reads per clip, whether it needs captions)."""
    caption = dataclasses.replace(cfg.caption, device=device)
    vlm = dataclasses.replace(caption, mode="vlm")
    return {
        "caption (image)": (lambda: CaptionStage(caption), 1, False),
        "caption (vlm)": (
            lambda: CaptionStage(vlm),
            min(vlm.vlm_frames, KEYFRAMES_PER_CLIP),
            False,
        ),
        "clip + aesthetic": (
            lambda: ClipStage(dataclasses.replace(cfg.clip, device=device)),
            KEYFRAMES_PER_CLIP,
            True,
        ),
        "text area": (
            lambda: TextAreaStage(dataclasses.replace(cfg.text, device=device, threads=threads)),
            KEYFRAMES_PER_CLIP,
            False,
        ),
    }


def run(name: str, cfg: CurateConfig, batch: dict, args: argparse.Namespace) -> list[dict]:
    clips = len(batch["keyframes"])
    captioned = {**batch, "caption": ["a sample caption"] * clips}
    rows = []
    for stage_name, (make, per_clip, needs_caption) in stages(
        cfg, args.device, args.threads
    ).items():
        start = time.perf_counter()
        try:
            stage = make()
        except ModelLoadError as e:
            rows.append({"models": name, "stage": stage_name, "skipped": str(e)})
            continue
        load_s = time.perf_counter() - start
        data = captioned if needs_caption else batch
        seconds = timed(lambda stage=stage, data=data: stage(data), args.reps)
        rows.append(
            {
                "models": name,
                "stage": stage_name,
                "load_s": round(load_s, 2),
                "keyframes_per_s": round(clips * per_clip / seconds, 1),
                "clips_per_s": round(clips / seconds, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="clips per batch (3 keyframes each)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch, onnxruntime)")
    parser.add_argument("--real", action="store_true", help="also the default (real) models")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    batch = make_batch(args.clips)
    keyframes = args.clips * KEYFRAMES_PER_CLIP
    decode_s = timed(lambda: [decode_keyframes(k) for k in batch["keyframes"]], args.reps)
    print(f"device={args.device} threads={args.threads} clips={args.clips} keyframes={keyframes}")
    print(f"JPEG decode alone: {keyframes / decode_s:,.0f} keyframes/s")

    rows = run("tiny", PRESETS["tiny"](), batch, args)
    if args.real:
        rows += run("real", CurateConfig(), batch, args)
    for row in rows:
        label = f"{row['models']:5} {row['stage']:17}"
        if "skipped" in row:
            print(f"{label} skipped: {row['skipped']}")
        else:
            print(
                f"{label} {row['keyframes_per_s']:9,.1f} keyframes/s "
                f"({row['clips_per_s']:,.1f} clips/s, load {row['load_s']} s)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
