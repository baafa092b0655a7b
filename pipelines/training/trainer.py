"""The trainer: the VAE, then the DiT in SVD's stages, on clip shards.

Stages run in order (pipelines/training/config.py): vae (L1 + KL autoencoder), image (DiT
on single frames), video (DiT on clips), hq (DiT on a stricter cut); each has its own
data rules, buckets, frames, fps, steps and learning rate. The loop is nanoGPT's:
AdamW, warmup + cosine, gradient clipping, bf16 autocast on GPUs, EMA. One process by
default; under torchrun each rank trains on its slice of every global batch (DDP, or
FSDP2 for the DiT). The networks (pipelines/training/networks.py) and the trainer's own
counters are handed to a Checkpointer, which holds everything a run needs to continue
exactly: an interrupted run resumed with --resume logs the same losses as one that
never stopped. Host syncs happen only at log and checkpoint steps.

RUN/checkpoints/step-XXXXXXXX/  RUN/metrics.jsonl  RUN/samples/<stage>-step-XXXXXXXX/
RUN/vae/ (the trained autoencoder)  RUN/final/ (EMA weights; model.checkpoint format)
RUN/cache/<stage>/ (with cache_latents)  RUN/run.json
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.precision import autocast, uses_bf16
from model.vae import estimate_scaling_factor
from pipelines.common.config_loader import to_dict
from pipelines.common.errors import UsageError
from pipelines.common.progress import progress_bar
from pipelines.selection.rules import parse_rules
from pipelines.training import checkpoints as ckpt
from pipelines.training import distributed as ddp
from pipelines.training.checkpointer import Checkpointer
from pipelines.training.config import STAGES, StageConfig, TrainConfig
from pipelines.training.data import (
    BucketBatchSampler,
    ClipDataset,
    batch_sizes,
    load_clips,
    long_enough,
    make_loader,
    stage_clips,
    to_unit_range,
)
from pipelines.training.metrics import MetricsLog
from pipelines.training.networks import Networks
from pipelines.training.optim import lr_at, set_lr
from pipelines.training.samples import write_dit_samples, write_vae_samples
from pipelines.training.steps import (
    FiniteWatch,
    StageRun,
    disc_step,
    dit_step,
    mix_seed,
    sample_generators,
    vae_step,
)


@dataclass
class TrainerState:
    """Where the run is: the trainer's counters, saved in every checkpoint."""

    stage: str = ""
    stage_step: int = 0  # optimizer steps done in `stage` = global batches it consumed
    global_step: int = 0  # optimizer steps done in all stages
    done: list[str] = field(default_factory=list)


class Trainer:
    """Trains the stages of a TrainConfig on a curated folder into a run folder.

    `Trainer(cfg, data, run, dist, resume_from=None, stop_after=None).train()` returns
    RUN/final (or None when stopped by `stop_after`, after a checkpoint).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: Path,
        run: Path,
        d: ddp.Dist,
        resume_from: Path | None = None,
        stop_after: int | None = None,
        progress: bool = True,
        ray_address: str | None = None,
    ):
        self.cfg, self.data, self.run, self.d = cfg, data, run, d
        self.device = d.device
        self.stop_after, self.progress, self.ray_address = stop_after, progress, ray_address
        self.dit_stages = [n for n, _ in cfg.stages() if n != "vae"]
        self.nets = Networks(cfg, d, with_dit=bool(self.dit_stages))
        self.state = TrainerState()
        self.checkpointer = Checkpointer(run, d, cfg.keep_checkpoints, resume_from)
        self.metrics = MetricsLog(run / "metrics.jsonl", d)
        self.text = None
        self.active: StageRun | None = None
        self.steps_this_run = 0
        self.bar = None
        if resume_from is not None:
            self.checkpointer.load_state("trainer", self)
            self.nets.load(self.checkpointer)
            if "vae" in self.state.done:
                self.nets.freeze_vae()
            self.checkpointer.restore_rng()
        else:
            self._load_initial_weights()

    # -- what a checkpoint holds of the trainer itself ----------------------------------
    def state_dict(self) -> dict:
        """trainer.json: the counters, and what `lvd train --resume` rebuilds a run from."""
        return {
            "state": dataclasses.asdict(self.state),
            "world_size": self.d.world_size,
            "data": str(self.data),
            "config": to_dict(self.cfg),
        }

    def load_state_dict(self, saved: dict) -> None:
        # keys of older versions (their EMA counters, now beside the EMA weights) are let go
        known = {f.name for f in dataclasses.fields(TrainerState)}
        self.state = TrainerState(**{k: v for k, v in saved["state"].items() if k in known})

    def _save_checkpoint(self) -> None:
        run = self.active
        mid_stage = run is not None and 0 < self.state.stage_step < run.stage.steps
        networks, emas, optimizers = self.nets.checkpoint_parts(run, mid_stage)
        self.checkpointer.save(
            self.state.global_step, networks=networks, emas=emas, optimizers=optimizers,
            states={"trainer": self}, model_config=self.nets.model_cfg,
        )  # fmt: skip

    def _load_initial_weights(self) -> None:
        """VAE from vae_from / init_from when the vae stage does not run; DiT from init_from."""
        cfg, nets = self.cfg, self.nets
        if cfg.init_from and nets.dit is not None:
            try:
                nets.dit.load_state_dict(ckpt.pretrained_dit(cfg.init_from))
            except RuntimeError:
                message = f"init_from {cfg.init_from}: its DiT differs from model.dit"
                raise UsageError(message) from None
        if "vae" in [n for n, _ in cfg.stages()] or not self.dit_stages:
            return
        source = cfg.vae_from or cfg.init_from
        if not source:
            raise UsageError(
                "the DiT stages need a trained VAE: set vae.steps > 0, or vae_from=FOLDER "
                "(a model folder or a training run)"
            )
        weights, scale = ckpt.pretrained_vae(source, nets.model_cfg.vae)
        nets.vae.load_state_dict(weights)
        nets.set_vae_scale(scale)
        nets.freeze_vae()

    # -- the run -----------------------------------------------------------------------
    def train(self) -> Path | None:
        """Run the remaining stages; the final model folder, or None if stopped early."""
        total = sum(s.steps for _, s in self.cfg.stages())
        self.bar = progress_bar(
            total=total, initial=self.state.global_step, unit="step",
            disable=not (self.progress and self.d.is_main),
        )  # fmt: skip
        stages = self.cfg.stages()
        try:
            for name, stage in stages:
                if name in self.state.done:
                    continue
                if self.state.stage != name:
                    self.state.stage, self.state.stage_step = name, 0
                run = self._start_stage(name, stage)
                dataset, sampler = self._data(name, stage)
                if not self._loop(run, dataset, sampler):
                    return None
                self._finish_stage(run, dataset)
                if self._stopping() and name != stages[-1][0]:
                    return None
        finally:
            self.bar.close()
        return self._write_final()

    def _start_stage(self, name: str, stage: StageConfig) -> StageRun:
        if name == "vae":
            run = self.nets.vae_stage(stage)
        else:
            run = self.nets.dit_stage(name, stage, self.checkpointer)
        self.active = run
        resuming_it = self.state.stage == name and self.state.stage_step > 0
        if resuming_it and self.checkpointer.has("optimizer.pt"):
            self.nets.restore_stage(run, self.checkpointer)
        return run

    def _loop(self, run: StageRun, dataset, sampler) -> bool:
        """Train `run` from state.stage_step to its last step; False if stopped early."""
        cfg, stage, name = self.cfg, run.stage, run.name
        sampler.set_position(self.state.stage_step)
        pin = self.device.type == "cuda"
        batches = iter(make_loader(dataset, sampler, cfg.num_workers, pin))
        stage_index = STAGES.index(name)
        params = [p for p in run.net.parameters() if p.requires_grad]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        watch = FiniteWatch(self.device)
        window = [0, 0, time.perf_counter()]  # steps, samples, start
        for step in range(self.state.stage_step, stage.steps):
            batch = next(batches)
            local = len(batch["clip_id"])
            positions = [self.d.rank + k * self.d.world_size for k in range(local)]
            generators = sample_generators(cfg.seed, stage_index, step, positions)
            set_lr(run.optimizer, lr_at(step, stage))
            if name == "vae":
                loss, logs = vae_step(run, batch, generators, self.device, cfg.precision)
            else:
                loss, logs = dit_step(
                    run, batch, generators, self.device, cfg.precision, self.nets.vae, self._text
                )
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            if run.disc is not None:
                logs.update(disc_step(run, logs.pop("_video"), logs.pop("_recon"), cfg.precision))
            if run.ema is not None:
                run.ema.update()
            watch.update(step + 1, loss, grad_norm)

            self.state.stage_step = step + 1
            self.state.global_step += 1
            self.steps_this_run += 1
            window[0] += 1
            window[1] += local * self.d.world_size
            self.bar.update(1)
            last = step + 1 == stage.steps
            stopping = self._stopping()
            done = self.state.global_step  # "every N steps" counts steps of all stages
            log_now = done % cfg.log_every == 0 or last
            save_now = done % cfg.checkpoint_every == 0 or stopping
            if log_now or save_now:
                watch.check(self.d, name, self.checkpointer.last)
            if log_now:
                elapsed = time.perf_counter() - window[2]
                lr = run.optimizer.param_groups[0]["lr"]
                mean = self.metrics.log_step(
                    name, step + 1, done, lr, loss, grad_norm, logs, (*window[:2], elapsed)
                )
                self.bar.set_postfix(stage=name, loss=f"{mean:.4f}", refresh=False)
                window = [0, 0, time.perf_counter()]
            paused = time.perf_counter()  # checkpoints and samples are not step time
            if save_now and not last:  # the end of a stage is saved by _finish_stage
                self._save_checkpoint()
            if cfg.sample_every and done % cfg.sample_every == 0 and not last:
                self._samples(run, dataset)
            window[2] += time.perf_counter() - paused
            if stopping and not last:
                return False
        return True

    def _stopping(self) -> bool:
        return self.stop_after is not None and self.steps_this_run >= self.stop_after

    def _finish_stage(self, run: StageRun, dataset) -> None:
        if run.name == "vae":
            self.nets.end_vae_stage(run)
            self.nets.set_vae_scale(self._measure_vae_scale(dataset))
            if self.d.is_main:
                vae = self.nets.vae.state_dict()
                ckpt.write_model_folder(self.run / "vae", self.nets.model_cfg, vae=vae)
        self.state.done.append(run.name)
        self.active = None
        self._save_checkpoint()  # first: a failing sample must not cost the stage
        self._samples(run, dataset)

    def _measure_vae_scale(self, dataset) -> float:
        """LDM's recipe: scale latents to unit variance, measured on training clips."""
        count = min(len(dataset), 32)
        videos = [
            to_unit_range(dataset[(i, 0)]["video"][None].to(self.device)) for i in range(count)
        ]
        with autocast(self.device, self.cfg.precision):
            return float(estimate_scaling_factor(self.nets.vae, videos))

    def _write_final(self) -> Path:
        """RUN/final: the frozen VAE and the DiT's EMA weights, with train.json holding the
        last stage's clip shape and rate (and median motion score) as generation defaults."""
        nets = self.nets
        weights = {"vae": nets.vae.state_dict()}
        if nets.dit is not None:
            weights["dit"] = nets.final_dit_weights(self.checkpointer)
        final = self.run / "final"
        if self.d.is_main:
            info = self.cfg.generation_defaults()
            if nets.model_cfg.dit.micro_conditioning:
                clips = load_clips(self.data, parse_rules(self.cfg.last_dit_stage().rules))
                info["motion_score"] = float(np.median([c.motion_score for c in clips]))
            if self.cfg.mv.steps:  # orbits are asked at the elevations they trained on
                clips = stage_clips(self.data, "mv", parse_rules(self.cfg.mv.rules))
                info["elevation_deg"] = float(np.median([c.camera_elevation_deg for c in clips]))
            ckpt.write_model_folder(final, nets.model_cfg, info=info, **weights)
        self.d.barrier()
        return final

    # -- data and text -----------------------------------------------------------------
    def _data(self, name: str, stage: StageConfig):
        seed = mix_seed(self.cfg.seed, STAGES.index(name))
        if self.cfg.cache_latents:
            from pipelines.training.latent_cache import cached_dataset

            job, ids, first_frame = self._cache_job(name, stage, seed), None, False
            if shared := self._shared_cache(name, stage):
                job, ids, first_frame = shared
            dataset = cached_dataset(job, self.d.is_main, ids, first_frame)
        else:
            clips = stage_clips(self.data, name, parse_rules(stage.rules), stage.images)
            dataset = ClipDataset(
                clips, stage.frames, stage.fps, stage.buckets, seed, stage.random_crop
            )
        if stage.batch_size % self.d.world_size:
            raise UsageError(
                f"{name}.batch_size ({stage.batch_size}) must be divisible by the "
                f"{self.d.world_size} processes (it is the global batch)"
            )
        sizes = batch_sizes(stage.buckets, stage.batch_size, self.d.world_size)
        sampler = BucketBatchSampler(dataset.bucket_of, sizes, seed, self.d.rank, self.d.world_size)
        return dataset, sampler

    def _shared_cache(self, name: str, stage: StageConfig):
        """(another stage's cache job, this stage's clip ids, first frame only) when that
        cache holds this stage's samples (image and hq: video's), else None."""
        from pipelines.training.latent_cache import same_samples_as

        if not (shared := same_samples_as(self.cfg, name)):
            return None
        (other, first_frame), o = shared, getattr(self.cfg, shared[0])
        ids = {c.clip_id for c in stage_clips(self.data, name, parse_rules(stage.rules))}
        cached = long_enough(stage_clips(self.data, other, parse_rules(o.rules)), o.frames, o.fps)
        if not ids <= {c.clip_id for c in cached}:
            return None
        job = self._cache_job(other, o, mix_seed(self.cfg.seed, STAGES.index(other)))
        return job, ids, first_frame

    def _cache_job(self, name: str, stage: StageConfig, seed: int):
        from pipelines.training.latent_cache import CacheJob, SampleSpec

        model_cfg = self.nets.model_cfg
        vae_folder = "" if name == "vae" else str(self.vae_folder())
        spec = SampleSpec(
            frames=stage.frames, fps=stage.fps, buckets=tuple(map(tuple, stage.buckets)),
            seed=seed, random_crop=stage.random_crop, precision=self._precision(),
            vae_folder=vae_folder, text_encoder=model_cfg.text_encoder if vae_folder else None,
        )  # fmt: skip
        return CacheJob(
            name=name, stage=stage, data=self.data, folder=self.run / "cache" / name,
            spec=spec, windows=self.cfg.cache_windows, batch_size=self.cfg.cache_batch_size,
            vae_scaling_factor=model_cfg.vae.scaling_factor, ray_address=self.ray_address,
        )  # fmt: skip

    def _precision(self) -> str:
        """The precision setting resolved for this device ('auto' is not the same
        everywhere, and the latent cache must encode as this trainer would)."""
        return "bf16" if uses_bf16(self.cfg.precision, self.device) else "fp32"

    def vae_folder(self) -> Path:
        """The model folder of the VAE the DiT stages use."""
        if "vae" in [n for n, _ in self.cfg.stages()]:
            return self.run / "vae"
        return ckpt.model_folder(self.cfg.vae_from or self.cfg.init_from)

    def _text(self):
        if self.text is None:
            from pipelines.training.text_cache import TextCache, load_text_encoder

            encoder = load_text_encoder(self.nets.model_cfg.text_encoder, self.device)
            self.text = TextCache(encoder, self.cfg.text_cache_size)
        return self.text

    # -- samples -----------------------------------------------------------------------
    def _samples(self, run: StageRun, dataset) -> None:
        """Sample videos with the EMA weights (every rank joins the gather; rank 0 writes)."""
        folder = self.run / "samples" / f"{run.name}-{ckpt.folder_name(self.state.global_step)}"
        stage, nets = run.stage, self.nets
        weights = nets.stage_weights(run)
        if not self.d.is_main:
            return
        if run.name == "vae":
            videos = torch.stack([dataset[(i, 0)]["video"] for i in range(min(2, len(dataset)))])
            write_vae_samples(
                folder, nets.model_cfg.vae, weights, videos, stage.fps, self.device,
                self.cfg.precision,
            )  # fmt: skip
            return
        write_dit_samples(
            folder, nets.model_cfg.dit, weights, nets.vae, self._text(), self.cfg.sample_prompts,
            self.device, frames=stage.frames, size=stage.buckets[0], fps=stage.fps,
            steps=self.cfg.sample_steps, seed=self.cfg.seed, diffusion=nets.model_cfg.diffusion,
        )  # fmt: skip
