"""A training run on disk: checkpoints of a Trainer, the final model, and resuming.

`save_checkpoint` gathers every network, EMA, optimizer state, the data position and the
RNG states (a collective under FSDP) and rank 0 writes them through
pipelines/training/checkpoints.py; `load_checkpoint` and `restore_stage` put them back so a
resumed run continues exactly. `resolve_config` decides which config a resumed run
uses, and metrics lines past the checkpoint are dropped (those steps run again).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file

from model.checkpoint import WEIGHT_NAMES, load_config, load_model, save_model
from pipelines.common.config_loader import build, from_dict, to_dict
from pipelines.common.errors import UsageError
from pipelines.common.run_json import read_run_json, write_run_json
from pipelines.training import checkpoints as ckpt
from pipelines.training import distributed as ddp
from pipelines.training.config import PRESETS, StageConfig, TrainConfig
from pipelines.training.data import load_clips, parse_rules
from pipelines.training.optim import EMA

if TYPE_CHECKING:
    from pipelines.training.trainer import Trainer


@dataclass
class TrainerState:
    """Where the run is; saved as trainer.json in every checkpoint."""

    stage: str = ""
    stage_step: int = 0  # optimizer steps done in `stage` = global batches it consumed
    global_step: int = 0  # optimizer steps done in all stages
    done: list[str] = field(default_factory=list)
    ema_updates: dict[str, int] = field(default_factory=dict)


@dataclass
class StageRun:
    """The pieces of the stage in progress (what a checkpoint must capture)."""

    name: str
    stage: StageConfig
    root: torch.nn.Module  # the loss module the step calls (maybe DDP/FSDP)
    net: torch.nn.Module  # the trained network inside it
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    extra: dict = field(default_factory=dict)  # discriminator and its optimizer


def save_checkpoint(trainer: Trainer) -> None:
    """Gather on every rank, write on rank 0, then wait for it."""
    run = trainer.active
    weights = {}
    if run is not None and run.name == "vae":
        weights["vae"] = ddp.full_state_dict(run.root, "net.")
    else:
        weights["vae"] = trainer.vae.state_dict()
    if trainer.dit is not None:
        if trainer.dit_root is not None:
            weights["dit"] = ddp.full_state_dict(trainer.dit_root, "net.")
        else:
            weights["dit"] = trainer.dit.state_dict()
    files = {}
    for net, tensors in weights.items():
        files[WEIGHT_NAMES[net]] = _saver(tensors)
    ema_updates = dict(trainer.state.ema_updates)
    if run is not None and run.name == "vae" and run.ema is not None:
        files["ema_vae.safetensors"] = _saver(run.ema.full_state_dict())
        ema_updates["vae"] = run.ema.updates
    if trainer.dit_ema is not None:
        files["ema_dit.safetensors"] = _saver(trainer.dit_ema.full_state_dict())
        ema_updates["dit"] = trainer.dit_ema.updates
    if run is not None and 0 < trainer.state.stage_step < run.stage.steps:
        opt = {"net": ddp.optimizer_state(run.root, run.optimizer)}
        if "disc" in run.extra:
            files["disc.safetensors"] = _saver(run.extra["disc"].state_dict())
            opt["disc"] = ddp.optimizer_state(run.extra["disc_root"], run.extra["disc_opt"])
        files["optimizer.pt"] = lambda p, o=opt: ckpt.save_pickle(p, o)
    trainer.state.ema_updates = ema_updates
    state = {
        "state": dataclasses.asdict(trainer.state),
        "world_size": trainer.d.world_size,
        "data": str(trainer.data),
        "config": to_dict(trainer.cfg),
    }
    files["trainer.json"] = lambda p: p.write_text(json.dumps(state, indent=1))
    files["rng.pt"] = lambda p: ckpt.save_pickle(p, ckpt.rng_state())
    files["config.json"] = lambda p: _write_config(p, trainer.model_cfg)
    if trainer.d.is_main:
        step = trainer.state.global_step
        trainer.last_checkpoint = ckpt.write_checkpoint(
            trainer.run, step, files, trainer.cfg.keep_checkpoints
        )
    trainer.last_checkpoint = trainer.d.broadcast_object(trainer.last_checkpoint)
    trainer.d.barrier()


def load_checkpoint(trainer: Trainer, folder: Path) -> None:
    saved = json.loads((folder / "trainer.json").read_text())
    trainer.state = TrainerState(**saved["state"])
    trainer.model_cfg.vae.scaling_factor = load_config(folder).vae.scaling_factor
    trainer.vae.load_state_dict(load_file(str(folder / WEIGHT_NAMES["vae"])))
    if trainer.dit is not None:
        trainer.dit.load_state_dict(load_file(str(folder / WEIGHT_NAMES["dit"])))
    if "vae" in trainer.state.done:
        trainer.vae.eval().requires_grad_(False)
    ckpt.set_rng_state(ckpt.load_pickle(folder / "rng.pt"))
    trainer.resume_folder = folder


def restore_stage(trainer: Trainer, run: StageRun) -> None:
    """Mid-stage resume: optimizer, EMA and discriminator as they were."""
    trainer.active = run
    folder = trainer.resume_folder
    if folder is None or trainer.state.stage != run.name or trainer.state.stage_step == 0:
        return
    opt = ckpt.load_pickle(folder / "optimizer.pt")
    ddp.load_optimizer_state(run.root, run.optimizer, opt["net"])
    if run.name == "vae" and run.ema is not None:
        restore_ema(trainer, run.ema, "ema_vae", "vae")
    if "disc" in run.extra:
        run.extra["disc"].load_state_dict(load_file(str(folder / "disc.safetensors")))
        ddp.load_optimizer_state(run.extra["disc_root"], run.extra["disc_opt"], opt["disc"])


def restore_ema(trainer: Trainer, ema: EMA, file: str, key: str) -> None:
    folder = trainer.resume_folder
    if folder is None or not (folder / f"{file}.safetensors").is_file():
        return
    ema.load_full_state_dict(load_file(str(folder / f"{file}.safetensors")))
    ema.updates = trainer.state.ema_updates.get(key, 0)


def load_initial_weights(trainer: Trainer) -> None:
    """VAE from vae_from / init_from when the vae stage does not run; DiT from init_from."""
    cfg = trainer.cfg
    if cfg.init_from and trainer.dit is not None:
        model = load_model(ckpt.model_folder(cfg.init_from), "cpu", parts=("dit",))
        if model.dit is None:
            raise UsageError(f"init_from {cfg.init_from} holds no DiT weights")
        try:
            trainer.dit.load_state_dict(model.dit.state_dict())
        except RuntimeError:
            raise UsageError(f"init_from {cfg.init_from}: its DiT differs from model.dit") from None
    if "vae" in [n for n, _ in cfg.stages()] or not trainer.dit_stages:
        return
    source = cfg.vae_from or cfg.init_from
    if not source:
        raise UsageError(
            "the DiT stages need a trained VAE: set vae.steps > 0, or vae_from=FOLDER "
            "(a model folder or a training run)"
        )
    model = load_model(ckpt.model_folder(source), "cpu", parts=("vae",))
    if model.vae is None:
        raise UsageError(f"{source} holds no VAE weights")
    if dataclasses.replace(model.config.vae, scaling_factor=1.0) != dataclasses.replace(
        trainer.model_cfg.vae, scaling_factor=1.0
    ):
        raise UsageError(f"the VAE in {source} differs from model.vae in this config")
    trainer.vae.load_state_dict(model.vae.state_dict())
    trainer.model_cfg.vae.scaling_factor = trainer.vae.cfg.scaling_factor = (
        model.config.vae.scaling_factor
    )
    trainer.vae.eval().requires_grad_(False)


def write_final(trainer: Trainer) -> Path:
    """RUN/final: the frozen VAE and the DiT's EMA weights, with train.json holding the
    last stage's clip shape and rate (and median motion score) as generation defaults."""
    weights = {"vae": trainer.vae.state_dict()}
    if trainer.dit is not None:
        weights["dit"] = _final_dit_weights(trainer)
    final = trainer.run / "final"
    if trainer.d.is_main:
        info = trainer.cfg.generation_defaults()
        if trainer.model_cfg.dit.micro_conditioning:
            rules = parse_rules(trainer.cfg.last_dit_stage().rules)
            clips = load_clips(trainer.data, rules)
            info["motion_score"] = float(np.median([c.motion_score for c in clips]))
        write_model_folder(final, trainer.model_cfg, info=info, **weights)
    trainer.d.barrier()
    return final


def _final_dit_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    if trainer.dit_ema is not None:
        return trainer.dit_ema.full_state_dict()
    if trainer.dit_root is not None:
        return ddp.full_state_dict(trainer.dit_root, "net.")
    # every stage was already done: a resumed finished run writes final/ again
    ema = trainer.resume_folder / "ema_dit.safetensors" if trainer.resume_folder else None
    return load_file(str(ema)) if ema and ema.is_file() else trainer.dit.state_dict()


def _saver(tensors: dict[str, torch.Tensor]):
    return lambda p: ckpt.save_weights(p, tensors)


def _write_config(path: Path, model_cfg) -> None:
    path.write_text(json.dumps(dataclasses.asdict(model_cfg), indent=2) + "\n")


def write_model_folder(folder: Path, model_cfg, info: dict | None = None, **weights) -> None:
    """A model folder (config.json + weights [+ train.json]) written beside and renamed."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, model_cfg)
    for net, tensors in weights.items():
        ckpt.save_weights(tmp / WEIGHT_NAMES[net], tensors)
    if info is not None:
        (tmp / "train.json").write_text(json.dumps(info, indent=1) + "\n")
    ckpt.replace_folder(tmp, folder)


# Keys that may change when a run is resumed: they do not change what is computed.
RESUMABLE_KEYS = (
    "num_workers", "log_every", "checkpoint_every", "keep_checkpoints", "sample_every",
    "sample_prompts", "sample_steps", "text_cache_size", "device", "sharding",
    "cache_batch_size", "model.text_encoder.model",
)  # fmt: skip


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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


def set_aside(out: Path, resume_from: Path | None) -> None:
    """Damaged checkpoints newer than the one resumed from are renamed bad-step-*: the
    steps they held are trained again and their names will be reused."""
    if resume_from is None:
        return
    for folder in ckpt.complete_checkpoints(out):
        if folder.name > resume_from.name:
            target = folder.with_name(f"bad-{folder.name}")
            shutil.rmtree(target, ignore_errors=True)
            folder.rename(target)


def trim_metrics(out: Path, global_step: int) -> None:
    """Drop metrics lines past the checkpoint resumed from (those steps run again), and
    a last line cut short by a kill."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["global_step"] <= global_step:
                keep.append(line)
        except (ValueError, KeyError):
            continue
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)


def update_run_json(
    out: Path,
    cfg: TrainConfig,
    data: Path,
    d: ddp.Dist,
    status: str,
    started: float,
    resume_from: Path | None,
    trainer: Trainer | None = None,
) -> None:
    """RUN/run.json: this invocation's status and config; earlier invocations kept in
    `runs`."""
    info = {
        "command": "train",
        "status": status,
        "data": str(data),
        "world_size": d.world_size,
        "device": str(d.device),
        "resumed_from": str(resume_from) if resume_from else None,
        "wall_s": round(time.time() - started, 3),
        "config": to_dict(cfg),
    }
    if trainer is not None:
        info.update(
            global_step=trainer.state.global_step,
            stages_done=trainer.state.done,
            last_checkpoint=str(trainer.last_checkpoint) if trainer.last_checkpoint else None,
            final=str(out / "final") if status == "done" else None,
        )
    previous = read_run_json(out).get("runs", [])
    if status == "running":
        previous = [*previous, {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}]
    else:
        previous = [*previous[:-1], {**previous[-1], **info}] if previous else [info]
    write_run_json(out, {**info, "runs": previous})
