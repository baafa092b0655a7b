"""Training config: the model, four stages after Stable Video Diffusion, and the loop.

Stages run in order and each has its own data rules, resolution buckets, frames, frame
rate, steps and learning rate: `vae` (the autoencoder, L1 + KL), `image` (the DiT on
single frames: SVD's image pretraining), `video` (video pretraining on the curated
set), `hq` (high-quality finetuning on a stricter cut) and `mv` (multi-view: orbits
from their first frame, on clips whose camera path is known; SVD-MV). A stage with
steps = 0 is skipped. Presets are plain functions; `--set video.steps=500` style overrides and
YAML/TOML files go through pipelines/common/config_loader.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from model.config import ModelConfig, VAEConfig
from model.config import preset as model_preset

STAGES = ("vae", "image", "video", "hq", "mv")


@dataclass
class StageConfig:
    steps: int = 0
    """Optimizer steps of this stage; 0 skips it."""
    lr: float = 1e-4
    """Peak learning rate (AdamW), reached after warmup, then cosine decay."""
    warmup_steps: int = 100
    """Linear warmup from 0 to lr."""
    min_lr_ratio: float = 0.1
    """The cosine decays to lr * min_lr_ratio at the last step."""
    batch_size: int = 8
    """Global batch size for the first bucket; other buckets hold about the same pixels."""
    frames: int = 17
    """Frames per sample (1 for images; 1 + 4k for the 4x temporal VAE)."""
    fps: float = 8.0
    """Frame rate at which clips are sampled."""
    buckets: list[tuple[int, int]] = field(default_factory=lambda: [(64, 64)])
    """Resolution buckets (height, width); clips go to the closest aspect ratio."""
    rules: list[str] = field(default_factory=list)
    """Data rules like `lvd filter`'s, as 'OP COL=V' (e.g. 'drop_bottom aesthetic_score=0.25')."""
    random_crop: bool = True
    """Crop at a random place after scaling to cover the bucket (False: the centre)."""
    images: str = ""
    """image stage only: a folder or URI prefix of extra images (png/jpg/webp, each
    captioned by a .txt of its stem) trained beside the clips' frames; rules skip them."""

    def generation_defaults(self) -> dict:
        """The clip shape and rate this stage trains on (its first bucket): what `lvd
        generate` makes unless told otherwise."""
        height, width = self.buckets[0]
        return {"fps": self.fps, "frames": self.frames, "height": height, "width": width}

    def __post_init__(self):
        self.buckets = [tuple(b) for b in self.buckets]
        for name in ("steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "batch_size", "frames", "fps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.buckets or any(len(b) != 2 or min(b) <= 0 for b in self.buckets):
            raise ValueError(f"buckets must be a list of [height, width], got {self.buckets}")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=lambda: model_preset("small"))
    """The model (see model/config.py); saved into every checkpoint."""
    vae: StageConfig = field(default_factory=StageConfig)
    """Stage 1: the VAE."""
    image: StageConfig = field(default_factory=lambda: StageConfig(frames=1))
    """Stage 2: the DiT on single frames."""
    video: StageConfig = field(default_factory=StageConfig)
    """Stage 3: the DiT on video."""
    hq: StageConfig = field(default_factory=StageConfig)
    """Stage 4: the DiT on a high-quality subset."""
    mv: StageConfig = field(default_factory=StageConfig)
    """Stage 5: multi-view; the DiT turns a first frame into an orbit along the clip's
    camera path (needs model.dit.camera_conditioning and clips with a camera path)."""
    vae_from: str = ""
    """A trained model folder (or run) whose VAE is used when the vae stage is skipped."""
    init_from: str = ""
    """A model folder (or run) whose DiT weights start the first DiT stage (finetuning);
    its VAE is used too unless the vae stage runs or vae_from is set."""
    seed: int = 0
    """Seed of data order, crops, noise and initial weights."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to norms and biases)."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = off)."""
    ema_decay: float = 0.999
    """EMA of the trained network's weights, used for samples and the final model (0 = off)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 autocast on CUDA, fp32 on CPU."""
    device: str = "auto"
    """'auto' (cuda:LOCAL_RANK when CUDA is present, else cpu), 'cpu' or 'cuda'."""
    sharding: Literal["auto", "ddp", "fsdp"] = "auto"
    """With several processes: 'ddp' replicates the model, 'fsdp' shards weights, gradients
    and optimizer state (FSDP2); 'auto' picks fsdp when the DiT's training state would
    take more than 40% of one GPU's memory."""
    allow_uncaptioned: bool = False
    """Train a DiT stage even when most of its clips have no caption (unconditional
    training meant); otherwise that stops the run at start-up."""
    cache_latents: bool = False
    """Precompute each stage's samples (pixels for vae; VAE latents and T5 embeddings for
    the DiT stages) into RUN/cache/<stage> with a Ray Data job, then train from them."""
    cache_windows: int = 1
    """Fixed sample windows cached per clip; epoch e trains on window e % cache_windows."""
    cache_batch_size: int = 8
    """Clips per batch in the caching job's VAE/T5 actors."""
    num_workers: int = 2
    """DataLoader worker processes per rank."""
    log_every: int = 10
    """Steps between metrics lines (metrics.jsonl) and progress updates."""
    checkpoint_every: int = 200
    """Steps between checkpoints (one is always written at the end of each stage)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    sample_every: int = 0
    """Steps between sample videos (0 = only at the end of each DiT stage)."""
    sample_prompts: list[str] = field(default_factory=lambda: ["a red circle moving left"])
    """Prompts for sample videos."""
    sample_steps: int = 20
    """Sampler steps for sample videos."""
    text_cache_size: int = 4096
    """Captions whose T5 embeddings are kept in memory (LRU)."""

    def __post_init__(self):
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("log_every", "checkpoint_every", "keep_checkpoints", "sample_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0 or self.sample_every < 0:
            raise ValueError("num_workers and sample_every must be >= 0")
        for name in ("cache_windows", "cache_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not any(getattr(self, s).steps for s in STAGES):
            raise ValueError("steps: every stage has 0 steps; set e.g. video.steps=1000")
        if self.mv.steps and not self.model.dit.camera_conditioning:
            raise ValueError(
                "mv.steps > 0 needs model.dit.camera_conditioning=true (the DiT's camera input)"
            )
        self._check_shapes()

    def _check_shapes(self) -> None:
        # frames follow the VAE's 4k+1 rule; sides must fit the VAE and the DiT patches
        t_down = self.model.vae.temporal_downsample
        side = self.model.vae.spatial_downsample
        for name, stage in self.stages():
            if (stage.frames - 1) % t_down:
                raise ValueError(
                    f"{name}.frames must be 1 + {t_down}k (the VAE's frame rule), "
                    f"got {stage.frames}"
                )
            if name == "image" and stage.frames != 1:
                raise ValueError(f"image.frames must be 1, got {stage.frames}")
            if name != "image" and stage.images:
                raise ValueError(f"{name}.images: only the image stage takes extra images")
            multiple = side if name == "vae" else side * max(self.model.dit.patch_size[1:])
            for h, w in stage.buckets:
                if h % multiple or w % multiple:
                    raise ValueError(
                        f"{name}.buckets: {h}x{w} must have sides divisible by {multiple}"
                    )

    def stages(self) -> list[tuple[str, StageConfig]]:
        return [(name, getattr(self, name)) for name in STAGES if getattr(self, name).steps]

    def last_dit_stage(self) -> StageConfig:
        """The last DiT stage that runs (the VAE's when none does)."""
        return ([s for n, s in self.stages() if n != "vae"] or [self.vae])[-1]

    def generation_defaults(self) -> dict:
        """Clip shape and rate of the last DiT stage: what `lvd generate` makes."""
        return self.last_dit_stage().generation_defaults()


def _local_text_encoder(cfg: ModelConfig) -> ModelConfig:
    """Point the model at the tiny offline T5 (CPU presets and the demo)."""
    from model.tiny_text_encoder import DIM, ensure_tiny_t5

    cfg.text_encoder.model = ensure_tiny_t5()
    cfg.text_encoder.dim = cfg.dit.text_dim = DIM
    return cfg


def tiny() -> TrainConfig:
    """Seconds on a CPU: for tests."""
    model = _local_text_encoder(model_preset("tiny"))
    model.text_encoder.max_length = 12
    stage = dict(warmup_steps=2, batch_size=2, frames=5, fps=8.0, buckets=[(32, 32)])
    return TrainConfig(
        model=model,
        vae=StageConfig(steps=4, lr=1e-3, **stage),
        image=StageConfig(steps=4, lr=1e-3, **{**stage, "frames": 1}),
        video=StageConfig(steps=4, lr=1e-3, **stage),
        hq=StageConfig(steps=2, lr=5e-4, **stage),
        mv=StageConfig(steps=0, lr=5e-4, **stage),
        ema_decay=0.9, num_workers=0, log_every=1, checkpoint_every=2, sample_steps=4,
    )  # fmt: skip


# The small preset's schedule (benchmarks/stages.py measures what each stage pays).
VAE_STEPS, IMAGE_STEPS, VIDEO_STEPS, HQ_STEPS = 1200, 600, 1600, 200


def small() -> TrainConfig:
    """Minutes on a CPU: the demo's model (shapes at 32x32, 9 frames)."""
    model = _local_text_encoder(model_preset("small"))
    model.text_encoder.max_length = 12
    # At 32x32 a 4x spatial VAE keeps an 8x8 latent (4x4 tokens a frame), enough for
    # the DiT to place and move an object; 16 base channels keep a step ~0.2 s on a CPU.
    model.vae = VAEConfig(
        base_channels=16,
        channel_mults=(1, 2, 2),
        spatial_downsample=4,
        num_res_blocks=1,
        norm_groups=8,
        tile_px=128,
        tile_overlap_px=32,
        # With L1 alone the VAE often learned the background first and left the subject
        # where frame 0 put it, or in the wrong colour: the DiT cannot learn a motion its
        # VAE does not reconstruct (the ablation's static red and yellow subjects). An L2
        # term weighs the subject's large errors: on the demo corpus its VAE kept colour
        # and direction in 100%/100% of shots for training seeds 0 and 1, where L1 alone
        # kept 53%/93% (seed 0) and 99%/100% (seed 1) (pipelines/demo/vae_check.py).
        l2_weight=1.0,
    )
    # The caption's mean token also drives adaLN (33% of held-out pair directions against
    # 17% without, one seed: within the run-to-run spread, so not shown to pay; it costs
    # nothing measurable; benchmarks/README.md, "stages").
    model.dit.pooled_text = True
    # Guidance 3 follows the prompt's direction best on held-out prompts (6 over-saturates
    # and smears the later frames; 2 drifts in colour).
    model.diffusion.cfg_scale = 3.0
    stage = dict(warmup_steps=50, batch_size=16, frames=9, fps=6.0, buckets=[(32, 32)])
    return TrainConfig(
        model=model,
        # The VAE learns from 5-frame clips (causal convs generalise to 9); colour of small
        # objects comes last (at batch 4 the demo's generated colours fell to 50%).
        vae=StageConfig(steps=VAE_STEPS, lr=2e-3, **{**stage, "batch_size": 8, "frames": 5}),
        # SVD's three DiT stages (at equal compute video alone followed more held-out
        # pair directions, 75% against 66% over 3 seeds with this VAE: benchmarks/README.md,
        # "stages"; kept to show the recipe). image: single frames (a third of a video
        # step's tokens) teach colour and shape; video: the filtered set teaches motion;
        # hq: a short, low learning-rate pass over the clips that move most. (Not text_area: the OCR
        # detector reads the demo's circles and squares as text and its green not at all,
        # so a text rule would cut by shape and colour.)
        image=StageConfig(steps=IMAGE_STEPS, lr=1e-3, **{**stage, "batch_size": 32, "frames": 1}),
        video=StageConfig(steps=VIDEO_STEPS, lr=1e-3, **stage),
        hq=StageConfig(steps=HQ_STEPS, lr=2e-4, rules=["drop_bottom motion_score=0.25"],
                       **{**stage, "warmup_steps": 20}),
        mv=StageConfig(steps=0, lr=5e-4, **stage),
        # No loader workers: on 2 cores they take CPU from the step itself, and from the
        # latent cache a sample is a tensor read (a cached video step took 0.22 s without
        # workers against 0.25 s with 2, one machine).
        num_workers=0, log_every=25, checkpoint_every=500, sample_steps=20,
    )  # fmt: skip


def _gpu(name: str) -> TrainConfig:
    """GPU sizes: SVD's schedule shape at CogVideoX-like resolution and length."""
    video = dict(batch_size=32, frames=49, fps=8.0, buckets=[(480, 720), (720, 480), (512, 512)])
    model = model_preset(name)
    model.dit.gradient_checkpointing = True  # 17k tokens per 49-frame 480p clip
    return TrainConfig(
        model=model,
        vae=StageConfig(steps=100_000, lr=1e-4, **{**video, "frames": 17,
                                                    "buckets": [(256, 256)]}),
        image=StageConfig(steps=100_000, lr=1e-4, **{**video, "batch_size": 256, "frames": 1,
                                                      "buckets": [(256, 256)]}),
        video=StageConfig(steps=200_000, lr=1e-4, rules=["min motion_score=0.0"], **video),
        hq=StageConfig(steps=20_000, lr=2e-5, rules=[
            "drop_bottom aesthetic_score=0.5", "drop_bottom motion_score=0.25",
            "drop_top text_area=0.25"], **video),
        num_workers=8, log_every=50, checkpoint_every=2000, sample_every=5000, sample_steps=50,
    )  # fmt: skip


PRESETS = {
    "tiny": tiny,
    "small": small,
    "base": lambda: _gpu("base"),
    "large": lambda: _gpu("large"),
    "xl": lambda: _gpu("xl"),
}
