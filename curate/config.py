"""Curation config: one dataclass per stage, gathered in `CurateConfig`.

Each field's docstring is its documentation (`lvd curate --help-config` prints them);
`__post_init__` checks values and names the field in its message. Presets are plain
functions at the bottom. Defaults follow Stable Video Diffusion's curation recipe where
it gives numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.shot_config import ShotConfig
from curate.shot_config import positive as _positive

__all__ = ["ShotConfig"]  # defined beside in shot_config.py, part of this config

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".mts",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".gif",
    ".y4m",
)


@dataclass
class DecodeConfig:
    analysis_short_side: int = 96
    """Short side in pixels of the frames cut detection and motion read (strided from
    the decoder's planes; real size lands between this and twice this)."""
    threads: int = 0
    """FFmpeg decoder threads per video; 0 lets FFmpeg choose (`lvd curate` then uses
    pipeline.analysis_cpus, since it decodes several videos in parallel)."""
    timeout_s: float = 600.0
    """Wall-clock limit for decoding one video; past it the video becomes an error row."""

    def __post_init__(self):
        _positive("analysis_short_side", self.analysis_short_side)
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        _positive("timeout_s", self.timeout_s)


@dataclass
class MotionConfig:
    sample_fps: float = 2.0
    """Frames per second at which Farnebäck optical flow is computed (SVD: 2 fps)."""
    flow_short_side: int = 36
    """Short side in pixels of the frames flow is computed on (fixed, so the score does not
    depend on the video's resolution)."""

    def __post_init__(self):
        _positive("sample_fps", self.sample_fps)
        if self.flow_short_side < 16:
            raise ValueError(f"flow_short_side must be >= 16, got {self.flow_short_side}")


@dataclass
class KeyframeConfig:
    short_side: int = 256
    """Short side in pixels of the keyframes handed to the model stages."""
    format: str = "jpeg"
    """Encoding of keyframe bytes: jpeg or png."""
    quality: int = 90
    """JPEG quality (1-100)."""

    def __post_init__(self):
        _positive("short_side", self.short_side)
        if self.format not in ("jpeg", "png"):
            raise ValueError(f"format must be 'jpeg' or 'png', got {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")


DEVICES = ("auto", "cpu", "cuda")
AESTHETIC_URL = (
    "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
    "sac%2Blogos%2Bava1-l14-linearMSE.pth"
)


def _device(value: str) -> None:
    if value not in DEVICES and not value.startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {value!r}")


@dataclass
class CaptionConfig:
    mode: str = "image"
    """image: caption the middle keyframe with `model`; vlm: caption `vlm_frames` keyframes
    at once with the multi-frame `vlm_model`."""
    model: str = "Salesforce/blip-image-captioning-large"
    """Hugging Face id or local folder of the image-to-text model (mode image)."""
    vlm_model: str = "Qwen/Qwen2-VL-2B-Instruct"
    """Hugging Face id or local folder of the multi-frame vision-language model (mode vlm)."""
    vlm_frames: int = 3
    """Keyframes (evenly spaced over the clip's keyframes) shown to the VLM."""
    prompt: str = "Describe this video in one sentence."
    """Instruction given to the VLM with the keyframes (mode vlm)."""
    max_new_tokens: int = 40
    """Longest caption in tokens (greedy decoding)."""
    batch_size: int = 8
    """Images per model call (a VLM call takes batch_size // vlm_frames clips, at least one)."""
    device: str = "auto"
    """auto (CUDA with fp16 when present, else CPU fp32), cpu, cuda or cuda:N."""

    def __post_init__(self):
        if self.mode not in ("image", "vlm"):
            raise ValueError(f"mode must be 'image' or 'vlm', got {self.mode!r}")
        _positive("vlm_frames", self.vlm_frames)
        _positive("max_new_tokens", self.max_new_tokens)
        _positive("batch_size", self.batch_size)
        _device(self.device)


@dataclass
class ClipConfig:
    model: str = "ViT-L-14"
    """open_clip model name (or a local folder holding open_clip_config.json)."""
    pretrained: str = "openai"
    """open_clip pretrained tag or a local checkpoint path; empty for random weights."""
    aesthetic_weights: str = AESTHETIC_URL
    """LAION improved-aesthetic-predictor head: local .pth/.safetensors path or URL (downloaded
    once into the cache); its input size must match the CLIP embedding. Empty: no
    aesthetic_score (NaN)."""
    batch_size: int = 32
    """Keyframes (or captions) per model call."""
    device: str = "auto"
    """auto (CUDA with fp16 when present, else CPU fp32), cpu, cuda or cuda:N."""

    def __post_init__(self):
        _positive("batch_size", self.batch_size)
        _device(self.device)


@dataclass
class TextConfig:
    short_side: int = 256
    """Short side in pixels at which text is detected (rounded to a multiple of 32)."""
    box_threshold: float = 0.5
    """Mean text probability a detected box needs to count (PP-OCR's DB default)."""
    batch_size: int = 1
    """Keyframes per detector call (same-size frames are stacked); 1 is fastest on CPU."""
    threads: int = 0
    """onnxruntime threads per detector; 0 lets onnxruntime choose."""
    device: str = "auto"
    """auto (CUDA when onnxruntime has it, else CPU), cpu, cuda or cuda:N."""

    def __post_init__(self):
        _positive("short_side", self.short_side)
        if not 0 < self.box_threshold < 1:
            raise ValueError(f"box_threshold must be in (0, 1), got {self.box_threshold}")
        _positive("batch_size", self.batch_size)
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        _device(self.device)


@dataclass
class PipelineConfig:
    videos_per_shard: int = 16
    """Videos per Parquet shard. A worker writes a shard as soon as this many videos are
    done (clips of a video never split), so a killed run loses at most the videos of
    the shards in flight: fewer lose less, more make fewer, larger files."""
    videos_per_task: int = 0
    """Videos one analysis task takes in turn; more amortise Ray's per-task overhead
    (~0.2 s between a worker's tasks) over short videos, fewer balance load better and
    lose less to a kill. 0 (auto): 4, or 2 when that would leave a CPU fewer than 4
    tasks (benchmarks/README.md, curate)."""
    analysis_cpus: float = 1.0
    """CPUs each analysis task (decode + shots + motion of one video) reserves."""
    actor_cpus: float = 0.0
    """CPUs each model-stage actor reserves; 0 shares the CPUs of the analysis tasks
    (right for GPU actors and tiny models). Raise it for real models on CPU-only nodes."""
    actor_gpus: float = 1.0
    """GPUs each model-stage actor takes when the cluster has GPUs."""
    analysis_gpus: float = 0.25
    """GPU share each analysis task takes when the cluster has GPUs and
    shots.transnetv2 is not off (TransNetV2 runs there)."""
    max_actors: int = 1
    """Most actors per model stage (the pool scales between 1 and this)."""

    def __post_init__(self):
        _positive("videos_per_shard", self.videos_per_shard)
        if self.videos_per_task < 0:
            raise ValueError(f"videos_per_task must be >= 0 (0: auto), got {self.videos_per_task}")
        _positive("analysis_cpus", self.analysis_cpus)
        if self.actor_cpus < 0:
            raise ValueError(f"actor_cpus must be >= 0, got {self.actor_cpus}")
        for name in ("actor_gpus", "analysis_gpus"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        _positive("max_actors", self.max_actors)


@dataclass
class StorageConfig:
    options: dict[str, dict] = field(default_factory=dict)
    """fsspec options by protocol for inputs and --out in object storage, set on the
    driver and every worker, e.g. {s3: {endpoint_url: "http://minio:9000"}}. Without
    them, credentials and endpoints come from the standard environment (AWS_*,
    AWS_ENDPOINT_URL for S3-compatible stores, GOOGLE_APPLICATION_CREDENTIALS) or from
    fsspec's own config (FSSPEC_S3='{"anon": true}' or ~/.config/fsspec/)."""

    def __post_init__(self):
        for protocol, options in self.options.items():
            if not isinstance(options, dict):
                raise ValueError(
                    f"options.{protocol} must be a table of fsspec options, got {options!r}"
                )


@dataclass
class CurateConfig:
    """Everything `lvd curate` needs to know about how to analyse a corpus."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    text: TextConfig = field(default_factory=TextConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)


def default() -> CurateConfig:
    return CurateConfig()


def tiny() -> CurateConfig:
    """Every model swapped for a tiny random one built locally (offline demos and tests):
    the data flows through the real loading code, the scores mean nothing."""
    from curate.tiny_models import ensure_tiny_models  # torch and transformers load here only

    paths = ensure_tiny_models()
    cfg = CurateConfig()
    cfg.caption = CaptionConfig(model=paths["caption"], vlm_model=paths["vlm"], max_new_tokens=8)
    cfg.clip = ClipConfig(model=paths["clip"], pretrained="", aesthetic_weights=paths["aesthetic"])
    return cfg


PRESETS = {"default": default, "tiny": tiny}
