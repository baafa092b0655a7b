"""Find out, before any video is decoded, whether every enabled model stage can load.

Each stage's weights are resolved the way its loader will look for them, without
loading them: a local folder or file must exist (with the file its loader reads first);
a Hugging Face id must be in the local cache, or on the hub when it is reachable; an
open_clip name must be known to open_clip and its pretrained tag must be a file or a tag
of that model whose weights are cached or reachable; the text detector's file must ship
in its package. A failure is one ModelLoadError line naming the model and the setting
to change. It takes seconds (one socket probe of the hub at most, no weights read), so
a run that cannot finish fails at start-up, not after its videos were analysed.
"""

from __future__ import annotations

from pathlib import Path

from curate.config import AESTHETIC_URL, CurateConfig
from curate.errors import ModelLoadError
from curate.weights import (
    cache_root,
    cached_path,
    env_offline,
    first_line,
    hub_reachable,
    resolve_device,
)

MODEL_STAGES = ("caption", "clip", "text")


def check_models(cfg: CurateConfig, stages: list[str]) -> list[str]:
    """One line per model the enabled stages will load (what was checked), or raise."""
    checked = []
    if "caption" in stages:
        vlm = cfg.caption.mode == "vlm"
        setting = "caption.vlm_model" if vlm else "caption.model"
        model = cfg.caption.vlm_model if vlm else cfg.caption.model
        resolve_device(cfg.caption.device, "caption.device")
        checked.append(_hf_model(model, setting, "caption model"))
    if "clip" in stages:
        resolve_device(cfg.clip.device, "clip.device")
        checked.append(_open_clip(cfg.clip.model, cfg.clip.pretrained))
        if cfg.clip.aesthetic_weights:
            checked.append(_weights_file(cfg.clip.aesthetic_weights))
    if "text" in stages:
        checked.append(_text_detector(cfg.text.device))
    return checked


def _hf_model(model: str, setting: str, what: str) -> str:
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{what} {model!r} is a local path without config.json (set {setting} to a "
                "folder saved with save_pretrained, or to a Hugging Face id)"
            )
        return f"{what} {model} (local folder)"
    if "/" not in model and not model.replace("-", "").replace("_", "").isalnum():
        raise ModelLoadError(
            f"{what} {model!r} is neither a local folder nor a hub id (set {setting})"
        )
    if _cached(model, "config.json"):
        return f"{what} {model} (cached)"
    return _on_hub(model, ["config.json"], what, setting)


def _open_clip(name: str, pretrained: str) -> str:
    import open_clip

    setting = "clip.model / clip.pretrained"
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "open_clip_config.json").is_file():
            raise ModelLoadError(
                f"clip model folder {name!r} holds no open_clip_config.json (set clip.model)"
            )
        return f"clip model {name} (local folder)"
    if name.startswith("hf-hub:"):
        repo = name.removeprefix("hf-hub:")
        if _cached(repo, "open_clip_config.json"):
            return f"clip model {name} (cached)"
        return _on_hub(repo, ["open_clip_config.json"], f"clip model {name!r}", "clip.model")
    if name not in open_clip.list_models():
        raise ModelLoadError(
            f"clip model {name!r} is not an open_clip model name nor a local folder (set clip.model)"
        )
    if not pretrained:
        return f"clip model {name} (random weights)"
    if Path(pretrained).expanduser().is_file():
        return f"clip model {name} with {pretrained} (local file)"
    tag = open_clip.get_pretrained_cfg(name, pretrained)
    if not tag:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise ModelLoadError(
            f"clip.pretrained {pretrained!r} is neither a checkpoint file nor an open_clip "
            f"tag of {name!r} (known: {known})"
        )
    what = f"clip model {name!r} (pretrained {pretrained!r})"
    hub = tag.get("hf_hub", "")
    if hub:
        repo, filename = (
            hub.rstrip("/").rsplit("/", 1) if not hub.endswith("/") else (hub.rstrip("/"), "")
        )
        files = (
            [filename]
            if filename
            else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        )
        if any(_cached(repo, f) for f in files):
            return f"{what} (cached)"
        return _on_hub(repo, files, what, setting)
    url = tag.get("url", "")
    cached = Path.home() / ".cache" / "clip" / url.rsplit("/", 1)[-1]
    if url and cached.is_file():
        return f"{what} (cached)"
    if env_offline() or not hub_reachable():
        raise ModelLoadError(
            f"{what} is not cached and downloads are off: set {setting} to local files"
        )
    return f"{what} (to download)"


def _weights_file(source: str) -> str:
    setting = "clip.aesthetic_weights"
    if not source.startswith(("http://", "https://")):
        if not Path(source).expanduser().is_file():
            raise ModelLoadError(f"aesthetic head file {source!r} not found (set {setting})")
        return f"aesthetic head {source} (local file)"
    cached = cached_path(source)
    name = cached.name
    if cached.is_file():
        return f"aesthetic head {name} (cached)"
    if env_offline():
        default = " (the default is LAION's head; set it to '' for no aesthetic_score)"
        raise ModelLoadError(
            f"aesthetic head {source!r} is not in the cache {cache_root() / 'weights'} and "
            f"downloads are off (HF_HUB_OFFLINE): set {setting} to a local file"
            + (default if source == AESTHETIC_URL else "")
        )
    return f"aesthetic head {name} (to download)"


def _text_detector(device: str) -> str:
    try:
        import onnxruntime as ort
        import rapidocr_onnxruntime
    except ImportError as e:
        raise ModelLoadError(
            f"text detector: {first_line(e)} (reinstall rapidocr-onnxruntime, or drop the text stage)"
        ) from None
    from curate.text_area import DETECTOR_FILE

    path = Path(rapidocr_onnxruntime.__file__).parent / DETECTOR_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"text detector file {path} is missing (reinstall rapidocr-onnxruntime)"
        )
    if device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ModelLoadError(
            f"text.device is {device!r} but this onnxruntime has no CUDAExecutionProvider "
            "(set text.device=auto or cpu)"
        )
    return f"text detector {DETECTOR_FILE} (shipped)"


def _cached(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return isinstance(found, str) and Path(found).is_file()


def _on_hub(repo: str, files: list[str], what: str, setting: str) -> str:
    if env_offline():
        raise ModelLoadError(
            f"{what} {repo!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is "
            f"set: download it first, or set {setting} to a local folder"
        )
    if not hub_reachable():
        raise ModelLoadError(
            f"{what} {repo!r} is not cached and the Hugging Face hub is unreachable "
            f"(offline? set {setting} to a local folder)"
        )
    from huggingface_hub import file_exists

    try:
        if any(file_exists(repo, f) for f in files):
            return f"{what} {repo} (to download)"
    except Exception as e:  # gated or private repos, bad tokens, timeouts
        raise ModelLoadError(
            f"{what} {repo!r}: the hub says {first_line(e)} (set {setting})"
        ) from None
    raise ModelLoadError(f"{what} {repo!r} is not on the Hugging Face hub (set {setting})")
