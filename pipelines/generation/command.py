"""`lvd generate --ckpt RUN "prompt" --out x.mp4`: sample videos from a trained model.

RUN may be a training run (its final/ model, else its newest whole checkpoint, whose
EMA weights are used), a checkpoint folder or a model folder. Text-to-video by default;
--image gives the first frame (image-to-video) and --image with --last-image the first
and last (interpolation), through the DiT's conditioning frames; --image with --orbit
DEGREES turns the camera around the image's object (multi-view, a model with an mv
stage), from the given view, the other way for negative DEGREES. With --image the
prompt may be left out: the model's null text is used, without guidance. Defaults for frames,
size and frame rate come from the run's last DiT stage (final/train.json). One prompt
writes OUT as an H.264 mp4 (PyAV) with a JSON sidecar; several prompts (arguments or
--prompts-file, one per line) write OUT/000.mp4, 001.mp4, ... and OUT/run.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from model.checkpoint import load_model
from model.sampler import encode_given_frames
from pipelines.common.config_loader import from_dict
from pipelines.common.errors import UsageError
from pipelines.common.run_json import write_run_json
from pipelines.common.uris import is_uri
from pipelines.training.checkpoints import model_folder
from pipelines.training.config import StageConfig, TrainConfig
from pipelines.training.data import cover_crop, to_unit_range
from pipelines.training.remote_run import fetch_model
from pipelines.training.samples import write_prompt_videos
from pipelines.training.text_cache import load_text_encoder

NEUTRAL_MOTION = 1.0  # motion_score micro-conditioning when a model folder names none
NEUTRAL_ELEVATION = 20.0  # an orbit's elevation when the model folder names none


MAX_ORBIT = 1080.0  # three turns: more in one short video is a blur, not a view


def read_prompts(args) -> list[str]:
    prompts = [p for p in args.prompts if p.strip()]
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise UsageError(f"prompts file not found: {path}")
        prompts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not prompts and args.image:
        return [""]  # the image says what to show: the null text, unguided
    if not prompts:
        raise UsageError("give at least one prompt (an argument or --prompts-file)")
    return prompts


def orbit_camera(args, model, frames: int, defaults: dict) -> torch.Tensor | None:
    """(1, 2) camera input for --orbit: elevation and degrees per frame; None without."""
    if args.orbit is None:
        if args.elevation is not None:
            raise UsageError("--elevation needs --orbit")
        return None
    if not args.image or args.last_image:
        raise UsageError("--orbit needs --image (the first view) and no --last-image")
    if not model.config.dit.camera_conditioning:
        raise UsageError(
            f"--orbit: {args.ckpt} takes no camera path (train it with the mv stage and "
            "model.dit.camera_conditioning=true)"
        )
    if not (math.isfinite(args.orbit) and 0 < abs(args.orbit) <= MAX_ORBIT):
        raise UsageError(
            f"--orbit must be non-zero degrees within ±{MAX_ORBIT:g}, got {args.orbit}"
        )
    elevation = args.elevation if args.elevation is not None else defaults["elevation_deg"]
    if not (math.isfinite(elevation) and -90 <= elevation <= 90):
        raise UsageError(f"--elevation must be in [-90, 90] degrees, got {elevation}")
    return torch.tensor([[elevation, args.orbit / (frames - 1)]], dtype=torch.float32)


def generation_defaults(folder: Path) -> dict:
    """Frames, size, fps of the stage the model last trained on (train.json in final/,
    the resolved config in a checkpoint's trainer.json), else a stage's defaults."""
    info = {
        **StageConfig().generation_defaults(),
        "motion_score": NEUTRAL_MOTION,
        "elevation_deg": NEUTRAL_ELEVATION,
    }
    if (folder / "train.json").is_file():
        info.update(json.loads((folder / "train.json").read_text()))
    elif (folder / "trainer.json").is_file():
        config = json.loads((folder / "trainer.json").read_text())["config"]
        info.update(from_dict(TrainConfig, config).generation_defaults())
    return info


def parse_size(text: str, multiple: int) -> tuple[int, int]:
    """'WIDTHxHEIGHT' -> (height, width), both multiples of `multiple`."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must be WIDTHxHEIGHT (e.g. 64x64), got {text!r}") from None
    if width <= 0 or height <= 0 or width % multiple or height % multiple:
        raise UsageError(
            f"--size {text}: width and height must be positive multiples of {multiple} "
            "(the VAE's downsampling times the DiT's patch)"
        )
    return height, width


def check_frames(frames: int, temporal: int) -> None:
    if frames < 1 or (frames - 1) % temporal:
        raise UsageError(
            f"--frames must be 1 + {temporal}k (the VAE encodes the first frame alone, then "
            f"groups of {temporal}), e.g. {1 + temporal * 4} or {1 + temporal * 12}; got {frames}"
        )


def load_frame(path: str, height: int, width: int) -> torch.Tensor:
    """An image file scaled to cover height x width and centre-cropped: (3, H, W) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise UsageError(f"cannot read image {path}: {str(e).splitlines()[0]}") from None
    frame = cover_crop(rgb[None], height, width, None)[0]  # (H, W, 3)
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)


def load_for_generation(ckpt: str, device: torch.device):
    """(model, folder): the networks of a run, checkpoint or model folder (EMA DiT
    weights when the folder is a training checkpoint)."""
    folder = model_folder(fetch_model(ckpt) if is_uri(ckpt) else ckpt)
    try:
        model = load_model(folder, device)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    if model.dit is None or model.vae is None:
        raise UsageError(f"{folder} holds no DiT and VAE: train a DiT stage (image/video/hq)")
    if (folder / "ema_dit.safetensors").is_file():
        model.dit.load_state_dict(load_file(str(folder / "ema_dit.safetensors")))
    return model, folder


def run(args) -> int:
    prompts = read_prompts(args)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, folder = load_for_generation(args.ckpt, device)
    cfg = model.config
    defaults = generation_defaults(folder)
    frames = args.frames if args.frames is not None else int(defaults["frames"])
    check_frames(frames, cfg.vae.temporal_downsample)
    multiple = cfg.vae.spatial_downsample * max(cfg.dit.patch_size[1:])
    if args.size:
        height, width = parse_size(args.size, multiple)
    else:
        height, width = int(defaults["height"]), int(defaults["width"])
    steps = args.steps if args.steps is not None else cfg.diffusion.sample_steps
    cfg_scale = args.cfg if args.cfg is not None else cfg.diffusion.cfg_scale
    if steps < 1 or cfg_scale <= 0:
        raise UsageError("--steps must be >= 1 and --cfg > 0")
    if args.last_image and not args.image:
        raise UsageError("--last-image needs --image (the first frame) for interpolation")
    if (args.image or args.last_image) and frames == 1:
        raise UsageError("image-to-video and interpolation need --frames > 1")
    fps = float(defaults["fps"])
    camera = orbit_camera(args, model, frames, defaults)

    cond, task = None, "text"
    if args.image:
        task = "interpolate" if args.last_image else ("orbit" if args.orbit else "image")
        given = [load_frame(p, height, width) for p in (args.image, args.last_image) if p]
        pixels = to_unit_range(torch.stack(given, dim=1)[None].to(device))  # (1, 3, n, H, W)
        latent_frames = model.vae.latent_shape(frames, height, width)[1]
        with torch.no_grad():
            given = "interpolate" if args.last_image else "image"
            cond = encode_given_frames(model.vae, pixels, latent_frames, given)

    out = Path(args.out)
    single = len(prompts) == 1 and out.suffix.lower() == ".mp4"
    paths = [out] if single else [out / f"{i:03d}.mp4" for i in range(len(prompts))]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    write_prompt_videos(
        paths, prompts, model.dit, model.vae, load_text_encoder(cfg.text_encoder, device),
        frames=frames, size=(height, width), fps=fps, steps=steps, seed=args.seed,
        diffusion=cfg.diffusion, cfg_scale=cfg_scale, cond=cond,
        motion_score=float(defaults["motion_score"]), camera=camera, progress=True,
    )  # fmt: skip

    settings = {
        "command": "generate", "model": str(folder), "task": task, "frames": frames,
        "width": width, "height": height, "fps": fps, "steps": steps, "cfg": cfg_scale,
        "seed": args.seed, "image": args.image, "last_image": args.last_image,
        "orbit_deg": args.orbit, "elevation_deg": None if camera is None else float(camera[0, 0]),
        "wall_s": round(time.time() - started, 3),
        "videos": [
            {"file": p.name, "prompt": q, "seed": args.seed + i}
            for i, (q, p) in enumerate(zip(prompts, paths, strict=True))
        ],
    }  # fmt: skip
    if single:
        out.with_suffix(".json").write_text(json.dumps(settings, indent=1) + "\n")
        print(f"lvd generate: wrote {out} ({frames} frames, {width}x{height})", file=sys.stderr)
    else:
        write_run_json(out, settings)
        print(
            f"lvd generate: wrote {len(paths)} videos to {out} ({frames} frames, "
            f"{width}x{height}); prompts in {out / 'run.json'}",
            file=sys.stderr,
        )
    return 0
