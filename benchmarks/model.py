"""Model benchmarks: VAE peak memory against clip length (chunked vs one pass), DiT
forward+backward throughput on CPU for the tiny and small presets, and, when CUDA is
present, bf16 training-step time and MFU of a large preset.

    python -m benchmarks.model                  # from the repo root: all that runs here
    python -m benchmarks.model --only vae       # one section: vae, dit, gpu
    python -m benchmarks.model --only gpu --gpu-preset base --gpu-frames 49 --gpu-size 480x720

VAE memory is measured on CUDA when present (allocator peak above the allocation before
the call, bf16 autocast). CPU peak memory is the process's resident-set high-water mark (VmHWM, reset through
/proc/self/clear_refs) minus its size before the call, measured in a fresh subprocess
per point with a fixed glibc mmap threshold so freed tensors leave the resident set; on CUDA it is
torch.cuda.max_memory_allocated. Figures are ratios within one run where it matters:
the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from model.config import preset
from model.dit import DiT
from model.flops import model_stats
from model.vae import VAE

ROOT = Path(__file__).resolve().parents[1]
# glibc's default mmap threshold grows after big frees, after which freed tensors stay in
# the heap and RSS no longer tracks live memory; a fixed threshold returns them to the OS
MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}

H100_BF16_DENSE_TFLOPS = 989.0


def best_seconds(step, inner: int, repeats: int = 3) -> float:
    """Seconds per call: the best of `repeats` timed blocks of `inner` calls after one
    warm-up call (the minimum is the least disturbed by other work on a shared machine)."""
    step()
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            step()
        blocks.append((time.perf_counter() - start) / inner)
    return min(blocks)


# -- VAE memory ------------------------------------------------------------------------
def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def vae_memory_point(preset_name: str, op: str, frames: int, size: int, chunked: bool) -> dict:
    """One measurement (runs inside a fresh subprocess): on CUDA when present (bf16
    autocast, allocator peak), else on the CPU (resident-set peak)."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    vae = VAE(preset(preset_name).vae).eval().to(device)
    if op == "encode":
        x = torch.rand(1, 3, frames, size, size, device=device) * 2 - 1
    else:
        x = torch.randn(1, *vae.latent_shape(frames, size, size), device=device)
    if device.type == "cuda":
        return _vae_memory_cuda(vae, op, x, chunked)

    def run() -> torch.Tensor:
        if op == "encode":
            return vae.encode(x, chunked=chunked, tiled=False)
        return vae.decode(x, chunked=chunked, tiled=False)

    with torch.no_grad():
        run()  # warm-up: allocator pools, oneDNN primitives
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _rss_kb("VmRSS")
        start = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - start
        peak = _rss_kb("VmHWM")
    return {
        "peak_mb": (peak - before) / 1024,
        "out_mb": out.numel() * out.element_size() / 2**20,
        "seconds": seconds,
    }


def _vae_memory_cuda(vae: VAE, op: str, x: torch.Tensor, chunked: bool) -> dict:
    def run() -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if op == "encode":
                return vae.encode(x, chunked=chunked, tiled=False)
            return vae.decode(x, chunked=chunked, tiled=False)

    with torch.no_grad():
        run()
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = run()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated()
    return {
        "peak_mb": (peak - before) / 2**20,
        "out_mb": out.numel() * out.element_size() / 2**20,
        "seconds": seconds,
    }


def bench_vae_memory(preset_name: str, size: int, frame_counts: list[int]) -> None:
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\n## VAE peak memory ({preset_name} preset, {size}x{size}, {where}, batch 1)")
    print("peak = working memory of one call above the resident size before it, MiB")
    print("| op | frames | one pass peak | chunked peak | output | chunked s |")
    print("|---|---|---|---|---|---|")
    for op in ("encode", "decode"):
        for frames in frame_counts:
            row = {}
            for chunked in (False, True):
                code = (
                    "import json; from benchmarks.model import vae_memory_point; "
                    f"print(json.dumps(vae_memory_point({preset_name!r}, {op!r}, {frames}, "
                    f"{size}, {chunked})))"
                )
                res = subprocess.run(
                    [sys.executable, "-c", code],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                    env=MALLOC_ENV,
                )
                row[chunked] = json.loads(res.stdout.strip().splitlines()[-1])
            print(
                f"| {op} | {frames} | {row[False]['peak_mb']:.0f} | {row[True]['peak_mb']:.0f} "
                f"| {row[True]['out_mb']:.0f} | {row[True]['seconds']:.2f} |"
            )


# -- DiT throughput on CPU -------------------------------------------------------------
def bench_dit_cpu(preset_name: str, frames: int, size: int, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    cfg = preset(preset_name)
    dit = DiT(cfg.dit).train()
    vae = VAE(cfg.vae)
    c, t, h, w = vae.latent_shape(frames, size, size)
    x = torch.randn(batch, c, t, h, w)
    text = torch.randn(batch, cfg.text_encoder.max_length, cfg.dit.text_dim)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4)

    def step():
        out = dit(x, torch.rand(batch), text)
        out.square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds = best_seconds(step, steps)
    stats = model_stats(cfg, frames, size, size, vae=False)
    tokens = batch * stats["video_tokens"]
    return {
        "preset": preset_name,
        "clip": f"{frames}x{size}x{size}",
        "batch": batch,
        "params_m": stats["dit_params"] / 1e6,
        "tokens": tokens,
        "step_s": seconds,
        "tokens_per_s": tokens / seconds,
        "gflops_per_s": batch * stats["dit_train_flops"] / seconds / 1e9,
    }


def bench_tiny_vae_step(frames: int = 9, size: int = 32) -> float:
    torch.manual_seed(0)
    vae = VAE(preset("tiny").vae).train()
    video = torch.rand(1, 3, frames, size, size) * 2 - 1

    def step():
        recon, posterior = vae(video)
        ((recon - video).abs().mean() + 1e-6 * posterior.kl().mean()).backward()

    return best_seconds(step, 5)


def report_dit_cpu() -> None:
    torch.set_num_threads(2)
    print("\n## DiT forward+backward+AdamW on CPU (float32, 2 threads, best of 3 blocks)")
    print("| preset | DiT params | clip | batch | video tokens | step s | tokens/s | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")
    for args in (("tiny", 9, 32, 4, 10), ("small", 17, 64, 2, 3)):
        r = bench_dit_cpu(*args)
        print(
            f"| {r['preset']} | {r['params_m']:.2f} M | {r['clip']} | {r['batch']} "
            f"| {r['tokens']} | {r['step_s']:.3f} | {r['tokens_per_s']:.0f} "
            f"| {r['gflops_per_s']:.1f} |"
        )
    print(f"\ntiny VAE forward+backward, 9x32x32 clip: {bench_tiny_vae_step():.3f} s")


# -- GPU -------------------------------------------------------------------------------
def bench_gpu(
    preset_name: str,
    frames: int,
    height: int,
    width: int,
    steps: int,
    peak_tflops: float,
    checkpointing: bool,
    compile_model: bool,
) -> None:
    print(f"\n## {preset_name} on {torch.cuda.get_device_name()} (bf16 autocast)")
    cfg = preset(preset_name)
    cfg.dit.gradient_checkpointing = checkpointing
    stats = model_stats(cfg, frames, height, width, vae=False)
    torch.manual_seed(0)
    device = torch.device("cuda")
    dit = DiT(cfg.dit).to(device).train()  # float32 master weights, bf16 compute
    c, t = cfg.vae.latent_channels, 1 + (frames - 1) // cfg.vae.temporal_downsample
    h, w = height // cfg.vae.spatial_downsample, width // cfg.vae.spatial_downsample
    x = torch.randn(1, c, t, h, w, device=device)
    text = torch.randn(1, cfg.text_encoder.max_length, cfg.dit.text_dim, device=device)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4, fused=True)
    model = torch.compile(dit) if compile_model else dit

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x, torch.rand(1, device=device), text)
        out.float().square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    achieved = stats["dit_train_flops"] / seconds / 1e12
    print(
        f"DiT params {stats['dit_params'] / 1e9:.2f} B; clip {frames}x{height}x{width}; "
        f"{stats['video_tokens']} video + {stats['text_tokens']} text tokens; "
        f"gradient checkpointing {checkpointing}; compile {compile_model}"
    )
    print(f"train FLOPs per sample (3x forward) {stats['dit_train_flops']:.3e}")
    print(
        f"step {seconds:.3f} s; {achieved:.0f} TFLOP/s; "
        f"MFU {100 * achieved / peak_tflops:.1f}% of {peak_tflops:.0f} TFLOP/s; "
        f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["vae", "dit", "gpu"])
    parser.add_argument("--vae-preset", default="small")
    parser.add_argument("--vae-size", type=int, default=128)
    parser.add_argument("--vae-frames", default="9,17,33,65")
    parser.add_argument("--gpu-preset", default="base")
    parser.add_argument("--gpu-frames", type=int, default=49)
    parser.add_argument("--gpu-size", default="480x720", help="HEIGHTxWIDTH")
    parser.add_argument("--gpu-steps", type=int, default=5)
    parser.add_argument("--gpu-checkpointing", action="store_true")
    parser.add_argument("--gpu-compile", action="store_true")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_BF16_DENSE_TFLOPS,
        help="dense bf16 peak of the card (H100 SXM: 989)",
    )
    args = parser.parse_args()

    if args.only in (None, "vae"):
        frames = [int(f) for f in args.vae_frames.split(",")]
        bench_vae_memory(args.vae_preset, args.vae_size, frames)
    if args.only in (None, "dit"):
        report_dit_cpu()
    if args.only in (None, "gpu"):
        if not torch.cuda.is_available():
            stats = model_stats(
                args.gpu_preset, args.gpu_frames, *map(int, args.gpu_size.split("x")), vae=False
            )
            print(
                f"\n## GPU: not measured here (no CUDA device). Analytic figures for "
                f"{args.gpu_preset} at {args.gpu_frames}x{args.gpu_size}: "
                f"{stats['dit_params'] / 1e9:.2f} B DiT params, "
                f"{stats['video_tokens']} video tokens, "
                f"{stats['dit_train_flops']:.3e} train FLOPs per sample; at 35% MFU of "
                f"{args.peak_tflops:.0f} TFLOP/s a step would take "
                f"{stats['dit_train_flops'] / (0.35 * args.peak_tflops * 1e12):.2f} s"
            )
        else:
            height, width = map(int, args.gpu_size.split("x"))
            run = (
                args.gpu_preset,
                args.gpu_frames,
                height,
                width,
                args.gpu_steps,
                args.peak_tflops,
            )
            out_of_memory = False
            try:
                bench_gpu(*run, args.gpu_checkpointing, args.gpu_compile)
            except torch.OutOfMemoryError:
                if args.gpu_checkpointing:
                    raise
                out_of_memory = True
            if out_of_memory:  # retried outside the except block so its frames are freed
                print("out of memory without gradient checkpointing; retrying with it")
                torch.cuda.empty_cache()
                bench_gpu(*run, True, args.gpu_compile)


if __name__ == "__main__":
    main()
