"""`lvd train --data DIR --out RUN`: the VAE, then the DiT in SVD's stages, on clip shards.

Stages run in order (pipelines/train_config.py): vae (L1 + KL autoencoder), image (DiT
on single frames), video (DiT on clips), hq (DiT on a stricter cut); each has its own
data rules, buckets, frames, fps, steps and learning rate. The loop is nanoGPT's:
AdamW, warmup + cosine, gradient clipping, bf16 autocast on GPUs, EMA. One process by
default; under torchrun each rank trains on its slice of every global batch (DDP, or
FSDP2 for the DiT). Checkpoints (pipelines/checkpoints.py) hold everything a run needs
to continue exactly: an interrupted run resumed with --resume logs the same losses as
one that never stopped. Host syncs happen only at log and checkpoint steps.

RUN/checkpoints/step-XXXXXXXX/  RUN/metrics.jsonl  RUN/samples/<stage>-step-XXXXXXXX/
RUN/vae/ (the trained autoencoder)  RUN/final/ (EMA weights; model.checkpoint format)
RUN/cache/<stage>/ (with cache_latents)  RUN/run.json
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from model.checkpoint import WEIGHT_NAMES, load_config, load_model, save_model
from model.dit import DiT
from model.vae import VAE, estimate_scaling_factor
from model.vae_loss import PatchDiscriminator3d, Perceptual
from pipelines import checkpoints as ckpt
from pipelines import distributed as ddp
from pipelines.config import build, describe, from_dict, to_dict
from pipelines.errors import UsageError
from pipelines.optim import EMA, build_optimizer, lr_at, set_lr
from pipelines.runinfo import read_run_json, write_run_json
from pipelines.train_config import PRESETS, STAGES, StageConfig, TrainConfig
from pipelines.train_data import (
    BucketBatchSampler,
    ClipDataset,
    batch_sizes,
    collate,
    load_clips,
    parse_rules,
    to_unit_range,
    worker_init,
)
from pipelines.train_steps import (
    DiscLoss,
    FlowLoss,
    VAELoss,
    mix_seed,
    sample_generators,
    write_reconstructions,
    write_text_samples,
)

NO_BAD_STEP = 2**62


class TrainingStopped(UsageError):
    """Training cannot go on (a non-finite loss); the message is one line."""


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


class Trainer:
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
            self._load_checkpoint(resume_from)
        else:
            self._load_initial_weights()

    # -- the run -----------------------------------------------------------------------
    def train(self) -> Path | None:
        """Run the remaining stages; the final model folder, or None if stopped early."""
        from tqdm import tqdm

        total = sum(s.steps for _, s in self.cfg.stages())
        self.bar = tqdm(
            total=total, initial=self.state.global_step, unit="step", file=sys.stderr,
            disable=not (self.progress and self.d.is_main), dynamic_ncols=True,
        )  # fmt: skip
        try:
            for name, stage in self.cfg.stages():
                if name in self.state.done:
                    continue
                if self.state.stage != name:
                    self.state.stage, self.state.stage_step = name, 0
                run = self._setup_vae(stage) if name == "vae" else self._setup_dit(name, stage)
                if not self._loop(run):
                    return None
                self._finish_stage(run)
                if self._stopping():
                    return None
        finally:
            self.bar.close()
        return self._write_final()

    def _loop(self, run: StageRun) -> bool:
        """Train `run` from state.stage_step to its last step; False if stopped early."""
        cfg, stage, name = self.cfg, run.stage, run.name
        dataset, sampler = self._data(name, stage)
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
            if log_now or save_now or last:
                self._check_finite(name, bad_step, bad_value)
            if log_now:
                elapsed = time.perf_counter() - window[2]
                self._log(run, step + 1, loss, grad_norm, logs, (window[0], window[1], elapsed))
                window = [0, 0, time.perf_counter()]
            paused = time.perf_counter()  # samples and checkpoints are not step time
            if cfg.sample_every and done % cfg.sample_every == 0 and not last:
                self._samples(run, dataset)
            if save_now and not last:  # the end of a stage is saved by _finish_stage
                self._save_checkpoint()
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
        self._restore_stage(run)
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
                self._restore_ema(self.dit_ema, "ema_dit", "dit")
        self.dit.train()
        optimizer = build_optimizer(list(self.dit.parameters()), self.cfg, stage.lr)
        run = StageRun(name, stage, self.dit_root, self.dit, optimizer, self.dit_ema)
        self._restore_stage(run)
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

    def _finish_stage(self, run: StageRun) -> None:
        if run.name == "vae":
            if run.ema is not None:  # the DiT stages and the final model use the EMA VAE
                weights = run.ema.full_state_dict()
                self.vae.load_state_dict(weights)
            self.vae.eval().requires_grad_(False)
            self._set_vae_scale(run)
            if self.d.is_main:
                _write_model_folder(self.run / "vae", self.model_cfg, vae=self.vae.state_dict())
        self.state.done.append(run.name)
        self.active = None
        self._samples(run, None)
        self._save_checkpoint()

    def _set_vae_scale(self, run: StageRun) -> None:
        """LDM's recipe: scale latents to unit variance, measured on training clips."""
        dataset, _ = self._data("vae", run.stage)
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
            from pipelines.latent_cache import cached_dataset

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
        return DataLoader(
            dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
            worker_init_fn=worker_init, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )  # fmt: skip

    def _text(self):
        if self.text is None:
            from model.text_encoder import TextEncoder, TextEncoderError
            from pipelines.text_cache import TextCache

            try:
                encoder = TextEncoder(self.model_cfg.text_encoder, self.device)
            except TextEncoderError as e:
                raise UsageError(str(e)) from None
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
            dataset = dataset or self._data("vae", stage)[0]
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

    # -- checkpoints -------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        """Gather on every rank, write on rank 0, then wait for it."""
        run = self.active
        weights = {}
        if run is not None and run.name == "vae":
            weights["vae"] = ddp.full_state_dict(run.root, "net.")
        else:
            weights["vae"] = self.vae.state_dict()
        if self.dit is not None:
            if self.dit_root is not None:
                weights["dit"] = ddp.full_state_dict(self.dit_root, "net.")
            else:
                weights["dit"] = self.dit.state_dict()
        files = {}
        for net, tensors in weights.items():
            files[WEIGHT_NAMES[net]] = _saver(tensors)
        ema_updates = dict(self.state.ema_updates)
        if run is not None and run.name == "vae" and run.ema is not None:
            files["ema_vae.safetensors"] = _saver(run.ema.full_state_dict())
            ema_updates["vae"] = run.ema.updates
        if self.dit_ema is not None:
            files["ema_dit.safetensors"] = _saver(self.dit_ema.full_state_dict())
            ema_updates["dit"] = self.dit_ema.updates
        if run is not None and 0 < self.state.stage_step < run.stage.steps:
            opt = {"net": ddp.optimizer_state(run.root, run.optimizer)}
            if "disc" in run.extra:
                files["disc.safetensors"] = _saver(run.extra["disc"].state_dict())
                opt["disc"] = ddp.optimizer_state(run.extra["disc_root"], run.extra["disc_opt"])
            files["optimizer.pt"] = lambda p, o=opt: ckpt.save_pickle(p, o)
        self.state.ema_updates = ema_updates
        state = {
            "state": dataclasses.asdict(self.state),
            "world_size": self.d.world_size,
            "data": str(self.data),
            "config": to_dict(self.cfg),
        }
        files["trainer.json"] = lambda p: p.write_text(json.dumps(state, indent=1))
        files["rng.pt"] = lambda p: ckpt.save_pickle(p, ckpt.rng_state())
        files["config.json"] = lambda p: _write_config(p, self.model_cfg)
        if self.d.is_main:
            step = self.state.global_step
            self.last_checkpoint = ckpt.write_checkpoint(
                self.run, step, files, self.cfg.keep_checkpoints
            )
        self.last_checkpoint = self.d.broadcast_object(self.last_checkpoint)
        self.d.barrier()

    def _load_checkpoint(self, folder: Path) -> None:
        saved = json.loads((folder / "trainer.json").read_text())
        self.state = TrainerState(**saved["state"])
        self.model_cfg.vae.scaling_factor = load_config(folder).vae.scaling_factor
        self.vae.load_state_dict(load_file(str(folder / WEIGHT_NAMES["vae"])))
        if self.dit is not None:
            self.dit.load_state_dict(load_file(str(folder / WEIGHT_NAMES["dit"])))
        if "vae" in self.state.done:
            self.vae.eval().requires_grad_(False)
        ckpt.set_rng_state(ckpt.load_pickle(folder / "rng.pt"))
        self.resume_folder = folder

    def _restore_stage(self, run: StageRun) -> None:
        """Mid-stage resume: optimizer, EMA and discriminator as they were."""
        self.active = run
        folder = self.resume_folder
        if folder is None or self.state.stage != run.name or self.state.stage_step == 0:
            return
        opt = ckpt.load_pickle(folder / "optimizer.pt")
        ddp.load_optimizer_state(run.root, run.optimizer, opt["net"])
        if run.name == "vae" and run.ema is not None:
            self._restore_ema(run.ema, "ema_vae", "vae")
        if "disc" in run.extra:
            run.extra["disc"].load_state_dict(load_file(str(folder / "disc.safetensors")))
            ddp.load_optimizer_state(run.extra["disc_root"], run.extra["disc_opt"], opt["disc"])

    def _restore_ema(self, ema: EMA, file: str, key: str) -> None:
        folder = self.resume_folder
        if folder is None or not (folder / f"{file}.safetensors").is_file():
            return
        ema.load_full_state_dict(load_file(str(folder / f"{file}.safetensors")))
        ema.updates = self.state.ema_updates.get(key, 0)

    def _load_initial_weights(self) -> None:
        """VAE from vae_from / init_from when the vae stage does not run; DiT from init_from."""
        cfg = self.cfg
        if cfg.init_from and self.dit is not None:
            model = load_model(ckpt.model_folder(cfg.init_from), "cpu", parts=("dit",))
            if model.dit is None:
                raise UsageError(f"init_from {cfg.init_from} holds no DiT weights")
            try:
                self.dit.load_state_dict(model.dit.state_dict())
            except RuntimeError:
                raise UsageError(
                    f"init_from {cfg.init_from}: its DiT differs from model.dit"
                ) from None
        if "vae" in [n for n, _ in cfg.stages()] or not self.dit_stages:
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
            self.model_cfg.vae, scaling_factor=1.0
        ):
            raise UsageError(f"the VAE in {source} differs from model.vae in this config")
        self.vae.load_state_dict(model.vae.state_dict())
        self.model_cfg.vae.scaling_factor = self.vae.cfg.scaling_factor = (
            model.config.vae.scaling_factor
        )
        self.vae.eval().requires_grad_(False)

    def _write_final(self) -> Path:
        weights = {"vae": self.vae.state_dict()}
        if self.dit is not None:
            weights["dit"] = (
                self.dit_ema.full_state_dict()
                if self.dit_ema
                else ddp.full_state_dict(self.dit_root, "net.")
            )
        final = self.run / "final"
        if self.d.is_main:
            last = [s for n, s in self.cfg.stages() if n != "vae"] or [self.cfg.vae]
            info = {
                "fps": last[-1].fps, "frames": last[-1].frames,
                "height": last[-1].buckets[0][0], "width": last[-1].buckets[0][1],
            }  # fmt: skip
            _write_model_folder(final, self.model_cfg, info=info, **weights)
        self.d.barrier()
        return final

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


def _saver(tensors: dict[str, torch.Tensor]):
    return lambda p: ckpt.save_weights(p, tensors)


def _write_config(path: Path, model_cfg) -> None:
    path.write_text(json.dumps(dataclasses.asdict(model_cfg), indent=2) + "\n")


def _write_model_folder(folder: Path, model_cfg, info: dict | None = None, **weights) -> None:
    """A model folder (config.json + weights [+ train.json]) written beside and renamed."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, model_cfg)
    for net, tensors in weights.items():
        ckpt.save_weights(tmp / WEIGHT_NAMES[net], tensors)
    if info is not None:
        (tmp / "train.json").write_text(json.dumps(info, indent=1) + "\n")
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


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
    if saved is not None and not given:
        return from_dict(TrainConfig, saved)
    cfg = build(PRESETS, preset, args.config, args.overrides)
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


def run(args) -> int:
    if args.help_config:
        print("\n".join(describe(TrainConfig)))
        return 0
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
    cfg = resolve_config(args, saved["config"] if saved else None)
    if args.cache_latents and not cfg.cache_latents:
        if saved is not None:
            raise UsageError("--cache-latents: this run was trained without the cache")
        cfg.cache_latents = True
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
            _set_aside(out, resume_from, skipped)
            _trim_metrics(out, saved["state"]["global_step"] if saved else 0)
            _write_run_json(out, cfg, data, d, "running", started, resume_from)
        d.barrier()
        trainer = Trainer(
            cfg, data, out, d, resume_from, args.stop_after, ray_address=args.ray_address
        )
        try:
            final = trainer.train()
        except TrainingStopped:
            if d.is_main:
                _write_run_json(out, cfg, data, d, "failed", started, resume_from, trainer)
            if not d.is_main:
                return 1  # rank 0 says why
            raise
        if d.is_main:
            status = "done" if final else "stopped"
            _write_run_json(out, cfg, data, d, status, started, resume_from, trainer)
            where = final or trainer.last_checkpoint
            print(
                f"lvd train: {status} after {trainer.state.global_step} steps "
                f"({trainer.steps_this_run} in this run); {where}",
                file=sys.stderr,
            )
        return 0
    finally:
        if cfg.cache_latents:
            from pipelines.latent_cache import stop_ray

            stop_ray()
        ddp.shutdown(d)


def _set_aside(out: Path, resume_from: Path | None, skipped: list[str]) -> None:
    """Damaged checkpoints newer than the one resumed from are renamed bad-step-*: the
    steps they held are trained again and their names will be reused."""
    if resume_from is None:
        return
    for folder in ckpt.complete_checkpoints(out):
        if folder.name > resume_from.name:
            target = folder.with_name(f"bad-{folder.name}")
            shutil.rmtree(target, ignore_errors=True)
            folder.rename(target)


def _trim_metrics(out: Path, global_step: int) -> None:
    """Drop metrics lines past the checkpoint resumed from: those steps run again."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["global_step"] <= global_step
    ]
    path.write_text("".join(line + "\n" for line in keep))


def _write_run_json(out, cfg, data, d, status, started, resume_from, trainer=None) -> None:
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
