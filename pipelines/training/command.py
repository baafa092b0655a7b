"""`lvd train --data DIR --out RUN`: resolve the config, resume or start, and train.

A run folder that already holds checkpoints is continued only with --resume, from its
newest whole checkpoint (damaged newer ones are set aside and named on the console).
A resumed run keeps its own config; --preset/--config/--set may then change only the
keys that do not change what is computed (RESUMABLE_KEYS). RUN/run.json records each
invocation: running, then done, stopped or failed. A URI --out is trained in a local
staging folder and mirrored to the URI after every checkpoint (training/remote_run.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pipelines.common import storage
from pipelines.common.config_loader import build, from_dict, to_dict
from pipelines.common.errors import UsageError
from pipelines.common.run_json import record_run
from pipelines.selection.rules import parse_rules
from pipelines.training import checkpoints as ckpt
from pipelines.training import distributed as ddp
from pipelines.training.config import PRESETS, TrainConfig
from pipelines.training.data import stage_clips
from pipelines.training.metrics import MetricsLog
from pipelines.training.remote_run import local_run
from pipelines.training.steps import TrainingStopped
from pipelines.training.trainer import Trainer

CONFIG = TrainConfig  # `lvd train --help-config` lists its keys (see cli.main)

# Keys that may change when a run is resumed: they do not change what is computed.
RESUMABLE_KEYS = (
    "num_workers", "log_every", "checkpoint_every", "keep_checkpoints", "sample_every",
    "sample_prompts", "sample_steps", "text_cache_size", "device", "sharding",
    "cache_batch_size", "model.text_encoder.model", "allow_uncaptioned",
)  # fmt: skip
UNCAPTIONED_MAX = 0.5  # a DiT stage whose clips lack captions more often stops


def run(args) -> int:
    out, mirror = local_run(storage.location(args.out, "--out"))
    if mirror is not None:
        mirror.pull(args.resume)
    resume_from, skipped = (None, [])
    if ckpt.complete_checkpoints(out):
        if not args.resume:
            raise UsageError(
                f"{out} already holds checkpoints: pass --resume to continue that run, "
                "or choose another --out"
            )
        resume_from, skipped = ckpt.latest_valid(out)
        if resume_from is None:
            raise UsageError(f"no usable checkpoint in {out / 'checkpoints'}: {skipped[0]}")
    saved = json.loads((resume_from / "trainer.json").read_text()) if resume_from else None
    cfg = resolve_config(args, saved["config"] if saved else None)
    data = args.data or (saved["data"] if saved else None)
    if data is None:
        raise UsageError("--data is required: a curated or filtered run folder")
    data = storage.location(data, "--data")
    storage.check_readable(data, "--data")
    if not (data / "clips").is_dir():
        raise UsageError(f"{data} is not a curated run folder (no clips/ inside)")
    counts = check_stage_data(cfg, data)
    d = ddp.init_distributed(cfg.device)
    started = time.time()

    def record(status: str, trainer: Trainer | None = None) -> None:
        info = {
            "command": "train", "status": status, "data": str(data),
            "world_size": d.world_size, "device": str(d.device),
            "resumed_from": str(resume_from) if resume_from else None,
            "wall_s": round(time.time() - started, 3), "config": to_dict(cfg),
            "stage_clips": {n: {"clips": k, "uncaptioned": u} for n, (k, u) in counts.items()},
        }  # fmt: skip
        if trainer is not None:
            last = trainer.checkpointer.last
            info.update(
                global_step=trainer.state.global_step,
                stages_done=trainer.state.done,
                last_checkpoint=str(last) if last else None,
                final=str(out / "final") if status == "done" else None,
            )
        record_run(out, started, info, **info)
        if mirror is not None:
            mirror.push()

    try:
        if d.is_main:
            for line in skipped:
                print(f"lvd train: skipping damaged checkpoint {line}", file=sys.stderr)
            ckpt.set_aside(out, resume_from)
            MetricsLog(out / "metrics.jsonl", d).trim(saved["state"]["global_step"] if saved else 0)
            record("running")
        d.barrier()
        trainer = Trainer(
            cfg, data, out, d, resume_from, args.stop_after, ray_address=args.ray_address
        )
        if mirror is not None and d.is_main:
            trainer.checkpointer.after_save = mirror.push
        for name, (kept, uncaptioned) in counts.items() if d.is_main else ():
            print(
                f"lvd train: {name}: {kept} clips after its rules, {uncaptioned} of them "
                "without a caption",
                file=sys.stderr,
            )
        try:
            final = trainer.train()
        except TrainingStopped:
            if not d.is_main:
                return 1  # rank 0 says why
            record("failed", trainer)
            raise
        if d.is_main:
            status = "done" if final else "stopped"
            record(status, trainer)
            where = final or trainer.checkpointer.last
            print(
                f"lvd train: {status} after {trainer.state.global_step} steps "
                f"({trainer.steps_this_run} in this run); {where}",
                file=sys.stderr,
            )
        return 0
    finally:
        if cfg.cache_latents:
            from pipelines.training.latent_cache import stop_ray

            stop_ray()
        ddp.shutdown(d)


def check_stage_data(cfg: TrainConfig, data: Path) -> dict[str, tuple[int, int]]:
    """(clips kept by its rules, clips among them without a caption) per stage, checked
    before any work: a stage with no clip, or a DiT stage whose clips mostly lack a
    caption (a text-to-video model would learn nothing of text), stops the run."""
    counts = {}
    for name, stage in cfg.stages():
        clips = stage_clips(data, name, parse_rules(stage.rules), stage.images)
        uncaptioned = sum(1 for c in clips if not c.caption.strip())
        counts[name] = (len(clips), uncaptioned)
        if not clips:
            raise UsageError(f"{name}: no clip in {data} passes {name}.rules {stage.rules}")
        if (
            name != "vae"
            and uncaptioned > UNCAPTIONED_MAX * len(clips)
            and not cfg.allow_uncaptioned
        ):
            raise UsageError(
                f"{name}: {uncaptioned} of its {len(clips)} clips have no caption (curated "
                "without the caption stage?): caption them, or set allow_uncaptioned=true "
                "to train without text"
            )
    return counts


def resolve_config(args, saved: dict | None) -> TrainConfig:
    """The config to train with: preset, file and overrides; on resume without any of
    them, the run's own config; with them, they may only change RESUMABLE_KEYS."""
    given = args.config is not None or args.overrides or args.preset not in ("default",)
    preset = "small" if args.preset == "default" else args.preset
    flag = getattr(args, "cache_latents", False)  # a setting like --set cache_latents=true
    if saved is not None and not given:
        cfg = from_dict(TrainConfig, saved)
        if flag and not cfg.cache_latents:
            raise UsageError("--cache-latents: this run was trained without the cache")
        return cfg
    cfg = build(PRESETS, preset, args.config, args.overrides)
    cfg.cache_latents = cfg.cache_latents or flag
    if saved is not None:
        old, new = _flatten(saved), _flatten(to_dict(cfg))
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key) and key not in RESUMABLE_KEYS:
                raise UsageError(
                    f"--resume: {key} is {new.get(key)!r} but the run was trained with "
                    f"{old.get(key)!r}; resume with the run's config (drop --preset/--config/"
                    "--set) or start a new --out"
                )
    return cfg


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
