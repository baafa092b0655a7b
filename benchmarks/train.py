"""Trainer throughput: step time and samples/s of `lvd train` per stage and data path.

CPU (tiny and small presets): the whole trainer (data loading, VAE encode, T5 cache,
optimizer, EMA) on the demo corpus, against the bare model step (forward, backward and
AdamW on one fixed batch of the same shape), so the ratio shows what the trainer adds.
Data paths: clips decoded in the training process (num_workers=0), in 2 loader workers,
and the precomputed cache (cache_latents).

GPU (--gpu, base preset by default): the DiT's training step (bf16 autocast, gradient
checkpointing, AdamW, EMA) on latents of the stage's clip shape, its step time and MFU
(model FLOPs from model.flops over the GPU's peak dense bf16 FLOP/s).

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.train --presets tiny,small
    .venv/bin/python -m benchmarks.train --gpu --preset base --batch 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import torch


def make_data(folder: Path) -> Path:
    """The demo corpus (coloured shapes) as a curated folder, one clip per video."""
    from curate.container import probe
    from curate.ids import clip_id, video_id
    from pipelines.common.shards import CLIP_SCHEMA, VIDEO_SCHEMA, write_shard
    from pipelines.demo.corpus import make_corpus

    videos, clips = [], []
    for v in make_corpus(folder / "raw", videos_per_combo=1):
        if v.kind != "moving":
            continue
        info = probe(v.path)
        vid, n = video_id(v.path, os.path.getsize(v.path)), info.num_frames
        videos.append(dict(video_id=vid, video_path=v.path, status="ok", num_clips=1))
        clips.append(
            dict(clip_id=clip_id(vid, 0, n), video_id=vid, video_path=v.path, start_frame=0,
                 end_frame=n, start_s=0.0, end_s=(n - 1) / info.fps, fps=info.fps,
                 num_frames=n, width=info.width, height=info.height, caption=v.caption,
                 motion_score=1.0)
        )  # fmt: skip
    data = folder / "curated"
    write_shard(
        data,
        "part-00000",
        pa.Table.from_pylist(videos, schema=VIDEO_SCHEMA),
        pa.Table.from_pylist(clips, schema=CLIP_SCHEMA),
    )
    return data


def trainer_steps(data: Path, out: Path, preset: str, stage: str, steps: int, mode: str):
    """Median step time (s) and the global batch of `steps` steps of one stage (after
    the first two, which warm up kernels), through `lvd train`."""
    from pipelines.cli import main

    other = {"vae": 0, "image": 0, "video": 0, "hq": 0}
    settings = {f"{k}.steps": v for k, v in other.items()}
    settings.update({"vae.steps": steps if stage == "vae" else 1, f"{stage}.steps": steps})
    settings.update(log_every=1, checkpoint_every=10_000, num_workers=2 if mode == "workers" else 0)
    args = ["train", "--data", str(data), "--out", str(out), "--preset", preset]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    if mode == "cache":
        args.append("--cache-latents")
    if main(args) != 0:
        raise SystemExit(f"lvd train failed for {preset} {stage} {mode}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    times = [r["step_s"] for r in rows if r["stage"] == stage][2:]
    return statistics.median(times)


def bare_step(preset: str, stage: str, repeats: int = 6) -> tuple[float, int]:
    """Median seconds of forward + backward + AdamW on one fixed batch, and its size."""
    from model.diffusion import flow_matching_loss
    from model.dit import DiT
    from model.vae import VAE
    from model.vae_loss import vae_loss
    from pipelines.training.config import PRESETS

    cfg = PRESETS[preset]()
    sc = getattr(cfg, stage)
    h, w = sc.buckets[0]
    video = torch.rand(sc.batch_size, 3, sc.frames, h, w) * 2 - 1
    torch.manual_seed(0)
    if stage == "vae":
        net = VAE(cfg.model.vae)

        def loss_fn():
            return vae_loss(net, video)[0]
    else:
        net = DiT(cfg.model.dit)
        with torch.no_grad():
            x0 = VAE(cfg.model.vae).encode(video)
        emb = torch.randn(sc.batch_size, cfg.model.text_encoder.max_length, cfg.model.dit.text_dim)

        def loss_fn():
            return flow_matching_loss(net, x0, emb, None, cfg.model.diffusion)[0]

    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        loss_fn().backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]), sc.batch_size


def cpu(presets: list[str], stages: list[str], modes: list[str], steps: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(
        "| preset | stage | batch | data path | trainer step (s) | samples/s | bare model step (s) | trainer / bare |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        for preset in presets:
            for stage in stages:
                bare, batch = bare_step(preset, stage)
                for mode in modes:
                    out = Path(tmp) / f"{preset}-{stage}-{mode}"
                    step = trainer_steps(data, out, preset, stage, steps, mode)
                    print(
                        f"| {preset} | {stage} | {batch} | {mode} | {step:.3f} | "
                        f"{batch / step:.1f} | {bare:.3f} | {step / bare:.2f} |",
                        flush=True,
                    )


def gpu(preset: str, stage: str, batch: int, steps: int, peak_tflops: float) -> None:
    """DiT training step on the GPU: the trainer's loss module, bf16 autocast, gradient
    checkpointing (the preset's), AdamW and EMA, on random latents of the clip shape."""
    from model.dit import DiT
    from model.flops import model_stats
    from pipelines.training.config import PRESETS
    from pipelines.training.optim import EMA, build_optimizer
    from pipelines.training.steps import FlowLoss, sample_generators

    cfg = PRESETS[preset]()
    sc = getattr(cfg, stage)
    h, w = sc.buckets[0]
    device = torch.device("cuda")
    s, t = cfg.model.vae.spatial_downsample, cfg.model.vae.temporal_downsample
    latent = (cfg.model.vae.latent_channels, 1 + (sc.frames - 1) // t, h // s, w // s)
    dit = DiT(cfg.model.dit).to(device)
    root = FlowLoss(dit, cfg.model.diffusion)
    opt = build_optimizer(list(dit.parameters()), cfg, sc.lr)
    ema = EMA(list(dit.named_parameters()), cfg.ema_decay)
    x0 = torch.randn(batch, *latent, device=device)
    emb = torch.randn(
        batch, cfg.model.text_encoder.max_length, cfg.model.dit.text_dim, device=device
    )
    mask = torch.ones(emb.shape[:2], dtype=torch.bool, device=device)
    times = []
    for step in range(steps + 3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = root(x0, emb, mask, sample_generators(0, 3, step, list(range(batch))))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times[3:])
    stats = model_stats(cfg.model, sc.frames, h, w, vae=False)
    achieved = stats["dit_train_flops"] * batch / step_s
    print(f"{torch.cuda.get_device_name()} | {preset} {stage} {sc.frames}x{h}x{w}, batch {batch}")
    print(f"DiT params {stats['dit_params'] / 1e9:.2f} B, {stats['video_tokens']} video tokens")
    print(f"step {step_s:.3f} s, {batch / step_s:.2f} samples/s, "
          f"{achieved / 1e12:.0f} TFLOP/s, MFU {achieved / (peak_tflops * 1e12):.1%} "
          f"(peak {peak_tflops:g} TFLOP/s; checkpointing recompute not counted)")  # fmt: skip
    print(f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,small", help="CPU presets to measure")
    p.add_argument("--stages", default="vae,video", help="CPU stages to measure")
    p.add_argument("--modes", default="decode,workers,cache", help="CPU data paths")
    p.add_argument("--steps", type=int, default=12, help="trainer steps per measurement")
    p.add_argument("--gpu", action="store_true", help="measure the DiT step on a GPU")
    p.add_argument("--preset", default="base", help="GPU preset")
    p.add_argument("--stage", default="video", help="GPU stage (its frames and bucket)")
    p.add_argument("--batch", type=int, default=1, help="GPU batch per step")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="H100 SXM dense bf16")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.gpu:
        if not torch.cuda.is_available():
            sys.exit("--gpu: CUDA is not available")
        gpu(args.preset, args.stage, args.batch, args.steps, args.peak_tflops)
    else:
        cpu(args.presets.split(","), args.stages.split(","), args.modes.split(","), args.steps)


if __name__ == "__main__":
    main()
