"""The networks a training run holds, as the stages train them (torchtitan's model parts).

One VAE and one DiT per run, built from the seed so every rank starts from the same
weights. The vae stage wraps the VAE (DDP) with its EMA and optional discriminator;
the DiT stages share one wrapped DiT (DDP or FSDP2) and one EMA, each stage with its own
optimizer. This module says which parts a checkpoint holds at any moment and puts them
back from a Checkpointer; it reads no files itself.
"""

from __future__ import annotations

import copy

import torch

from model.config import ModelConfig
from model.dit import DiT
from model.vae import VAE
from model.vae_loss import PatchDiscriminator3d, Perceptual
from pipelines.training import distributed as ddp
from pipelines.training.checkpointer import Checkpointer, Network, Optimizers
from pipelines.training.config import StageConfig, TrainConfig
from pipelines.training.optim import EMA, build_optimizer
from pipelines.training.steps import DiscLoss, FlowLoss, StageRun, VAELoss, mix_seed

ADVERSARY_SEED = 99  # the discriminator's own initial weights, apart from the networks'


class Networks:
    def __init__(self, cfg: TrainConfig, d: ddp.Dist, with_dit: bool):
        self.cfg, self.d, self.device = cfg, d, d.device
        self.model_cfg: ModelConfig = copy.deepcopy(cfg.model)  # its VAE scale is the run's
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.vae = VAE(self.model_cfg.vae).to(self.device)
        self.dit = DiT(self.model_cfg.dit).to(self.device) if with_dit else None
        self.dit_root: torch.nn.Module | None = None  # wrapped once, for every DiT stage
        self.dit_ema: EMA | None = None

    # -- stages ------------------------------------------------------------------------
    def vae_stage(self, stage: StageConfig) -> StageRun:
        vcfg, cfg = self.model_cfg.vae, self.cfg
        self.vae.train().requires_grad_(True)
        perceptual = None
        if vcfg.perceptual_weight > 0:
            perceptual = Perceptual(vcfg.perceptual_weights_path).to(self.device)
        root = ddp.wrap(VAELoss(self.vae, perceptual), self.d, self._sharding("ddp"), [])
        optimizer = build_optimizer(list(self.vae.parameters()), cfg, stage.lr)
        ema = EMA(list(self.vae.named_parameters()), cfg.ema_decay) if cfg.ema_decay else None
        run = StageRun("vae", stage, root, self.vae, optimizer, ema)
        if vcfg.adversarial_weight > 0:
            torch.manual_seed(mix_seed(cfg.seed, ADVERSARY_SEED))
            run.disc = PatchDiscriminator3d(vcfg.in_channels).to(self.device)
            run.disc_root = ddp.wrap(DiscLoss(run.disc), self.d, self._sharding("ddp"), [])
            run.disc_opt = build_optimizer(list(run.disc.parameters()), cfg, stage.lr)
        return run

    def dit_stage(self, name: str, stage: StageConfig, checkpointer: Checkpointer) -> StageRun:
        if self.dit_root is None:
            self.freeze_vae()
            num_params = sum(p.numel() for p in self.dit.parameters())
            sharding = self._sharding(self.cfg.sharding, num_params)
            root = FlowLoss(self.dit, self.model_cfg.diffusion)
            self.dit_root = ddp.wrap(root, self.d, sharding, list(self.dit.blocks))
            if self.cfg.ema_decay:
                # after wrapping: FSDP replaces the parameters with sharded ones
                self.dit_ema = EMA(list(self.dit.named_parameters()), self.cfg.ema_decay)
                checkpointer.load_ema("dit", self.dit_ema)
        self.dit.train()
        optimizer = build_optimizer(list(self.dit.parameters()), self.cfg, stage.lr)
        return StageRun(name, stage, self.dit_root, self.dit, optimizer, self.dit_ema)

    def end_vae_stage(self, run: StageRun) -> None:
        """The DiT stages and the final model use the EMA VAE, frozen."""
        if run.ema is not None:
            self.vae.load_state_dict(run.ema.full_state_dict())
        self.freeze_vae()

    def freeze_vae(self) -> None:
        self.vae.eval().requires_grad_(False)

    def set_vae_scale(self, scale: float) -> None:
        self.model_cfg.vae.scaling_factor = self.vae.cfg.scaling_factor = float(scale)

    def stage_weights(self, run: StageRun) -> dict[str, torch.Tensor]:
        """The weights samples are drawn with: the EMA's, else the trained ones (every
        rank calls this: a collective under FSDP)."""
        if run.ema is not None:
            return run.ema.full_state_dict()
        return ddp.full_state_dict(run.root, "net.")

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint_parts(self, active: StageRun | None, mid_stage: bool):
        """(networks, emas, optimizers) a checkpoint holds now; optimizers mid-stage only."""
        training_vae = active is not None and active.name == "vae"
        networks = {"vae": Network(active.root, "net.") if training_vae else Network(self.vae)}
        if self.dit is not None:
            dit = Network(self.dit_root, "net.") if self.dit_root else Network(self.dit)
            networks["dit"] = dit
        emas = {}
        if training_vae and active.ema is not None:
            emas["vae"] = active.ema
        if self.dit_ema is not None:
            emas["dit"] = self.dit_ema
        optimizers: Optimizers = {}
        if active is not None and mid_stage:
            optimizers["net"] = (active.root, active.optimizer)
            if active.disc is not None:
                networks["disc"] = Network(active.disc)
                optimizers["disc"] = (active.disc_root, active.disc_opt)
        return networks, emas, optimizers

    def load(self, checkpointer: Checkpointer) -> None:
        """The networks' weights and the VAE's latent scale as a checkpoint holds them."""
        self.set_vae_scale(checkpointer.model_config().vae.scaling_factor)
        checkpointer.load_network("vae", self.vae)
        if self.dit is not None:
            checkpointer.load_network("dit", self.dit)

    def restore_stage(self, run: StageRun, checkpointer: Checkpointer) -> None:
        """Mid-stage resume: optimizer, EMA and discriminator as they were."""
        optimizers: Optimizers = {"net": (run.root, run.optimizer)}
        if run.disc is not None:
            checkpointer.load_network("disc", run.disc)
            optimizers["disc"] = (run.disc_root, run.disc_opt)
        checkpointer.load_optimizers(optimizers)
        if run.name == "vae" and run.ema is not None:
            checkpointer.load_ema("vae", run.ema)

    def final_dit_weights(self, checkpointer: Checkpointer) -> dict[str, torch.Tensor]:
        if self.dit_ema is not None:
            return self.dit_ema.full_state_dict()
        if self.dit_root is not None:
            return ddp.full_state_dict(self.dit_root, "net.")
        # every stage was already done: a resumed finished run writes final/ again
        if checkpointer.has("ema_dit.safetensors"):
            return checkpointer.network_weights("ema_dit")
        return self.dit.state_dict()

    def _sharding(self, setting: str, num_params: int = 0) -> str:
        return ddp.choose_sharding(setting, self.d, num_params)
