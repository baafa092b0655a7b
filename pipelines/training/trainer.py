"""`lvd train --data DIR --out RUN`: the VAE, then the DiT in SVD's stages, on clip shards.

Stages run in order (pipelines/training/config.py): vae (L1 + KL autoencoder), image (DiT
on single frames), video (DiT on clips), hq (DiT on a stricter cut); each has its own
data rules, buckets, frames, fps, steps and learning rate. The loop is nanoGPT's:
AdamW, warmup + cosine, gradient clipping, bf16 autocast on GPUs, EMA. One process by
default; under torchrun each rank trains on its slice of every global batch (DDP, or
FSDP2 for the DiT). Checkpoints (pipelines/training/checkpoints.py) hold everything a run needs
to continue exactly: an interrupted run resumed with --resume logs the same losses as
one that never stopped. Host syncs happen only at log and checkpoint steps.

RUN/checkpoints/step-XXXXXXXX/  RUN/metrics.jsonl  RUN/samples/<stage>-step-XXXXXXXX/
RUN/vae/ (the trained autoencoder)  RUN/final/ (EMA weights; model.checkpoint format)
RUN/cache/<stage>/ (with cache_latents)  RUN/run.json
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from model.dit import DiT
from model.vae import VAE, estimate_scaling_factor
from model.vae_loss import PatchDiscriminator3d, Perceptual
from pipelines.common.errors import UsageError
from pipelines.generation.videos import write_reconstructions, write_text_samples
from pipelines.training import checkpointer as train_state
from pipelines.training import checkpoints as ckpt
from pipelines.training import distributed as ddp
from pipelines.training.checkpointer import StageRun, TrainerState
from pipelines.training.config import STAGES, StageConfig, TrainConfig
from pipelines.training.data import (
    BucketBatchSampler,
    ClipDataset,
    batch_sizes,
    collate,
    load_clips,
    parse_rules,
    to_unit_range,
    worker_init,
)
from pipelines.training.optim import EMA, build_optimizer, lr_at, set_lr
from pipelines.training.steps import (
    DiscLoss,
    FlowLoss,
    VAELoss,
    mix_seed,
    sample_generators,
)

NO_BAD_STEP = 2**62


class TrainingStopped(UsageError):
    """Training cannot go on (a non-finite loss); the message is one line."""


class Trainer:
    """Trains the stages of a TrainConfig on a curated folder into a run folder.

    `Trainer(cfg, data, run, dist, resume_from=None, stop_after=None).train()` returns
    RUN/final (or None when stopped by `stop_after`, after a checkpoint). Every rank
    builds the same networks from the seed; DDP/FSDP wrap the trained one per stage.
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
        self.stop_after, self.progress = stop_after, progress
        self.ray_address = ray_address
        self.model_cfg = copy.deepcopy(cfg.model)
        self.bf16 = cfg.precision == "bf16" or (
            cfg.precision == "auto" and self.device.type == "cuda"
        )
        self.dit_stages = [n for n, _ in cfg.stages() if n != "vae"]
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.vae = VAE(self.model_cfg.vae).to(self.device)
        self.dit = DiT(self.model_cfg.dit).to(self.device) if self.dit_stages else None
        self.state = TrainerState()
        self.text = None
        self.dit_root = None
        self.dit_ema: EMA | None = None
        self.active: StageRun | None = None
        self.last_checkpoint: Path | None = resume_from
        self.steps_this_run = 0
        self.bar = None
        self.resume_folder: Path | None = None
        if resume_from is not None:
            train_state.load_checkpoint(self, resume_from)
        else:
            train_state.load_initial_weights(self)

    # -- the run -----------------------------------------------------------------------
    def train(self) -> Path | None:
        """Run the remaining stages; the final model folder, or None if stopped early."""
        from pipelines.common.progress import progress_bar

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
                run = self._setup_vae(stage) if name == "vae" else self._setup_dit(name, stage)
                dataset, sampler = self._data(name, stage)
                if not self._loop(run, dataset, sampler):
                    return None
                self._finish_stage(run, dataset)
                if self._stopping() and name != stages[-1][0]:
                    return None
        finally:
            self.bar.close()
        return train_state.write_final(self)

    def _loop(self, run: StageRun, dataset, sampler) -> bool:
        """Train `run` from state.stage_step to its last step; False if stopped early."""
        cfg, stage, name = self.cfg, run.stage, run.name
        sampler.set_position(self.state.stage_step)
        batches = iter(self._loader(dataset, sampler))
        step_fn = self._vae_step if name == "vae" else self._dit_step
        stage_index = STAGES.index(name)
        params = [p for p in run.net.parameters() if p.requires_grad]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        bad_step = torch.full((), NO_BAD_STEP, dtype=torch.long, device=self.device)
        bad_value = torch.zeros((), device=self.device)
        window = [0, 0, time.perf_counter()]  # steps, samples, start
        for step in range(self.state.stage_step, stage.steps):
            batch = next(batches)
            local = len(batch["clip_id"])
            positions = [self.d.rank + k * self.d.world_size for k in range(local)]
            generators = sample_generators(cfg.seed, stage_index, step, positions)
            set_lr(run.optimizer, lr_at(step, stage))
            loss, logs = step_fn(run, batch, generators)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            if "disc" in run.extra:
                logs.update(self._disc_step(run, logs.pop("_video"), logs.pop("_recon")))
            if run.ema is not None:
                run.ema.update()
            # remember the first non-finite step on the device: no host sync per step
            finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
            newly = (~finite) & (bad_step == NO_BAD_STEP)
            bad_step = torch.where(newly, torch.full_like(bad_step, step + 1), bad_step)
            bad_value = torch.where(newly, loss.detach().float(), bad_value)

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
                self._check_finite(name, bad_step, bad_value)
            if log_now:
                elapsed = time.perf_counter() - window[2]
                self._log(run, step + 1, loss, grad_norm, logs, (window[0], window[1], elapsed))
                window = [0, 0, time.perf_counter()]
            paused = time.perf_counter()  # checkpoints and samples are not step time
            if save_now and not last:  # the end of a stage is saved by _finish_stage
                train_state.save_checkpoint(self)
            if cfg.sample_every and done % cfg.sample_every == 0 and not last:
                self._samples(run, dataset)
            window[2] += time.perf_counter() - paused
            if stopping and not last:
                return False
        return True

    def _stopping(self) -> bool:
        return self.stop_after is not None and self.steps_this_run >= self.stop_after

    # -- stages ------------------------------------------------------------------------
    def _setup_vae(self, stage: StageConfig) -> StageRun:
        vcfg = self.model_cfg.vae
        self.vae.train().requires_grad_(True)
        perceptual = None
        if vcfg.perceptual_weight > 0:
            perceptual = Perceptual(vcfg.perceptual_weights_path).to(self.device)
        root = ddp.wrap(VAELoss(self.vae, perceptual), self.d, self._sharding("ddp"), [])
        optimizer = build_optimizer(list(self.vae.parameters()), self.cfg, stage.lr)
        ema = EMA(list(self.vae.named_parameters()), self.cfg.ema_decay)
        run = StageRun("vae", stage, root, self.vae, optimizer, ema if self.cfg.ema_decay else None)
        if vcfg.adversarial_weight > 0:
            torch.manual_seed(mix_seed(self.cfg.seed, 99))
            disc = PatchDiscriminator3d(vcfg.in_channels).to(self.device)
            run.extra["disc"] = disc
            run.extra["disc_root"] = ddp.wrap(DiscLoss(disc), self.d, self._sharding("ddp"), [])
            run.extra["disc_opt"] = build_optimizer(list(disc.parameters()), self.cfg, stage.lr)
        train_state.restore_stage(self, run)
        return run

    def _setup_dit(self, name: str, stage: StageConfig) -> StageRun:
        if self.dit_root is None:
            self.vae.eval().requires_grad_(False)
            num_params = sum(p.numel() for p in self.dit.parameters())
            sharding = self._sharding(self.cfg.sharding, num_params)
            root = FlowLoss(self.dit, self.model_cfg.diffusion)
            self.dit_root = ddp.wrap(root, self.d, sharding, list(self.dit.blocks))
            if self.cfg.ema_decay:
                # after wrapping: FSDP replaces the parameters with sharded ones
                self.dit_ema = EMA(list(self.dit.named_parameters()), self.cfg.ema_decay)
                train_state.restore_ema(self, self.dit_ema, "ema_dit", "dit")
        self.dit.train()
        optimizer = build_optimizer(list(self.dit.parameters()), self.cfg, stage.lr)
        run = StageRun(name, stage, self.dit_root, self.dit, optimizer, self.dit_ema)
        train_state.restore_stage(self, run)
        return run

    def _vae_step(self, run: StageRun, batch: dict, generators) -> tuple:
        video = to_unit_range(batch["video"].to(self.device, non_blocking=True))
        disc = run.extra.get("disc")
        if disc is not None:
            disc.requires_grad_(False)  # the generator's adversarial term must not train it
        with self._autocast():
            loss, logs, recon = run.root(video, generators, disc)
        if disc is not None:
            logs.update(_video=video, _recon=recon.detach())
        return loss, logs

    def _disc_step(self, run: StageRun, video: torch.Tensor, recon: torch.Tensor) -> dict:
        disc, opt = run.extra["disc"], run.extra["disc_opt"]
        disc.requires_grad_(True)
        set_lr(opt, run.optimizer.param_groups[0]["lr"])
        with self._autocast():
            loss = run.extra["disc_root"](video, recon)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"disc_loss": loss.detach()}

    def _dit_step(self, run: StageRun, batch: dict, generators) -> tuple:
        if "latents" in batch:  # from the latent cache
            x0 = batch["latents"].to(self.device, non_blocking=True).float()
            emb = batch["text_emb"].to(self.device, non_blocking=True).float()
            mask = batch["text_mask"].to(self.device, non_blocking=True)
        else:
            video = to_unit_range(batch["video"].to(self.device, non_blocking=True))
            with torch.no_grad(), self._autocast():
                x0 = self.vae.encode(video).float()  # (B, C, T_lat, h, w), scaled
            emb, mask = self._text()(batch["caption"])
        extra = {}
        if self.dit.cfg.micro_conditioning:
            fps = torch.full((x0.shape[0],), run.stage.fps, device=self.device)
            extra = {"fps": fps, "motion_score": batch["motion_score"].to(self.device)}
        with self._autocast():
            return run.root(x0, emb, mask, generators, **extra)

    def _finish_stage(self, run: StageRun, dataset) -> None:
        if run.name == "vae":
            if run.ema is not None:  # the DiT stages and the final model use the EMA VAE
                weights = run.ema.full_state_dict()
                self.vae.load_state_dict(weights)
            self.vae.eval().requires_grad_(False)
            self._set_vae_scale(dataset)
            if self.d.is_main:
                train_state.write_model_folder(
                    self.run / "vae", self.model_cfg, vae=self.vae.state_dict()
                )
        self.state.done.append(run.name)
        self.active = None
        train_state.save_checkpoint(self)  # first: a failing sample must not cost the stage
        self._samples(run, dataset)

    def _set_vae_scale(self, dataset) -> None:
        """LDM's recipe: scale latents to unit variance, measured on training clips."""
        count = min(len(dataset), 32)
        videos = [
            to_unit_range(dataset[(i, 0)]["video"][None].to(self.device)) for i in range(count)
        ]
        with self._autocast():
            scale = estimate_scaling_factor(self.vae, videos)
        self.model_cfg.vae.scaling_factor = self.vae.cfg.scaling_factor = float(scale)

    # -- data --------------------------------------------------------------------------
    def _data(self, name: str, stage: StageConfig):
        seed = mix_seed(self.cfg.seed, STAGES.index(name))
        if self.cfg.cache_latents:
            from pipelines.training.latent_cache import cached_dataset

            dataset = cached_dataset(self, name, stage, seed)
        else:
            clips = load_clips(self.data, parse_rules(stage.rules))
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

    def _loader(self, dataset, sampler) -> DataLoader:
        workers = self.cfg.num_workers
        # Forking a process that runs Ray's (gRPC) threads can leave a worker waiting on a
        # lock no thread will release: start workers from a clean fork server then.
        context = "forkserver" if workers and "ray" in sys.modules else None
        return DataLoader(
            dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
            worker_init_fn=worker_init, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None, multiprocessing_context=context,
        )  # fmt: skip

    def _text(self):
        if self.text is None:
            from pipelines.training.text_cache import TextCache, load_text_encoder

            encoder = load_text_encoder(self.model_cfg.text_encoder, self.device)
            self.text = TextCache(encoder, self.cfg.text_cache_size)
        return self.text

    # -- logging, checks, samples --------------------------------------------------------
    def _check_finite(self, name: str, bad_step: torch.Tensor, bad_value: torch.Tensor) -> None:
        step = self.d.all_reduce(bad_step.clone(), "min")
        if int(step) == NO_BAD_STEP:
            return
        value = float(bad_value)
        kind = "nan" if math.isnan(value) else ("inf" if math.isinf(value) else "finite")
        what = f"loss is {kind}" if kind != "finite" else "the gradient norm is not finite"
        where = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint
            else "no checkpoint was written yet"
        )
        raise TrainingStopped(f"{what} at {name} step {int(step)}; {where}")

    def _log(self, run, step, loss, grad_norm, logs, window: tuple[int, int, float]) -> None:
        """One metrics line: this step's loss (the global batch's), lr, grad norm, other
        logs, and throughput over the steps since the last line."""
        steps, samples, elapsed = window
        names = [k for k, v in logs.items() if isinstance(v, torch.Tensor) and k != "loss"]
        values = torch.stack([loss.detach().float(), *(logs[k].float() for k in names)])
        values = self.d.all_reduce(values, "mean").tolist()
        record = {
            "stage": run.name, "step": step, "global_step": self.state.global_step,
            "loss": values[0], "lr": run.optimizer.param_groups[0]["lr"],
            "grad_norm": float(grad_norm), **dict(zip(names, values[1:], strict=True)),
            "samples_per_s": samples / max(elapsed, 1e-9), "step_s": elapsed / max(steps, 1),
        }  # fmt: skip
        self.bar.set_postfix(stage=run.name, loss=f"{values[0]:.4f}", refresh=False)
        if self.d.is_main:
            with open(self.run / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _samples(self, run: StageRun, dataset) -> None:
        """Sample videos with the EMA weights (every rank joins the gather; rank 0 writes)."""
        folder = self.run / "samples" / f"{run.name}-{ckpt.folder_name(self.state.global_step)}"
        stage = run.stage
        if run.name == "vae":
            weights = (
                run.ema.full_state_dict() if run.ema else ddp.full_state_dict(run.root, "net.")
            )
            if not self.d.is_main:
                return
            with torch.random.fork_rng(devices=[]):  # the run's RNG stream stays as it is
                vae = VAE(self.model_cfg.vae).to(self.device).eval()
            vae.load_state_dict(weights)
            count = min(2, len(dataset))
            videos = torch.stack([dataset[(i, 0)]["video"] for i in range(count)])
            write_reconstructions(
                folder, vae, to_unit_range(videos.to(self.device)), stage.fps, self._autocast
            )
            return
        weights = self.dit_ema.full_state_dict() if self.dit_ema else None
        if weights is None:
            weights = ddp.full_state_dict(self.dit_root, "net.")
        if not self.d.is_main:
            return
        with torch.random.fork_rng(devices=[]):
            dit = DiT(self.model_cfg.dit).to(self.device).eval()
        dit.load_state_dict(weights)
        write_text_samples(
            folder, dit, self.vae, self._text(), self.cfg.sample_prompts, frames=stage.frames,
            size=stage.buckets[0], fps=stage.fps, steps=self.cfg.sample_steps,
            seed=self.cfg.seed, diffusion=self.model_cfg.diffusion,
        )  # fmt: skip
        del dit

    # -- helpers -----------------------------------------------------------------------
    def vae_folder(self) -> Path:
        """The model folder of the VAE the DiT stages use."""
        if "vae" in [n for n, _ in self.cfg.stages()]:
            return self.run / "vae"
        return ckpt.model_folder(self.cfg.vae_from or self.cfg.init_from)

    def _sharding(self, setting: str, num_params: int = 0) -> str:
        return ddp.choose_sharding(setting, self.d, num_params)

    def _autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


CONFIG = TrainConfig  # `lvd train --help-config` lists its keys (see cli.main)


def run(args) -> int:
    out = Path(args.out)
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
    cfg = train_state.resolve_config(args, saved["config"] if saved else None)
    data = Path(args.data) if args.data else (Path(saved["data"]) if saved else None)
    if data is None:
        raise UsageError("--data is required: a curated or filtered run folder")
    if not (data / "clips").is_dir():
        raise UsageError(f"{data} is not a curated run folder (no clips/ inside)")
    d = ddp.init_distributed(cfg.device)
    started = time.time()
    try:
        if d.is_main:
            for line in skipped:
                print(f"lvd train: skipping damaged checkpoint {line}", file=sys.stderr)
            train_state.set_aside(out, resume_from)
            train_state.trim_metrics(out, saved["state"]["global_step"] if saved else 0)
            train_state.update_run_json(out, cfg, data, d, "running", started, resume_from)
        d.barrier()
        trainer = Trainer(
            cfg, data, out, d, resume_from, args.stop_after, ray_address=args.ray_address
        )
        try:
            final = trainer.train()
        except TrainingStopped:
            if d.is_main:
                train_state.update_run_json(
                    out, cfg, data, d, "failed", started, resume_from, trainer
                )
            if not d.is_main:
                return 1  # rank 0 says why
            raise
        if d.is_main:
            status = "done" if final else "stopped"
            train_state.update_run_json(out, cfg, data, d, status, started, resume_from, trainer)
            where = final or trainer.last_checkpoint
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
