"""The shot detectors the shot benchmark compares, each turned into clips the same way.

Each method takes a video path and its truth and returns (clips, seconds, motion): clip
spans [start, end) in decoded frames, the wall time of the whole method, its own
decoding included (what a user of it would wait for), and for lvd each clip's
motion_score (else None).

- lvd: curate.analyze.analyze_video at the defaults (shots, motion and keyframes), and
  the same with `shots.transnetv2 = on`;
- PySceneDetect: `scenedetect.detect(path, ContentDetector())` and AdaptiveDetector(),
  at their defaults;
- TransNetV2 alone with Cosmos-Curate's clip rules: the wheel's model on 48x27 RGB
  frames (decoded and scaled by PyAV, bicubic, like FFmpeg's default), a frame is a
  transition where its single-frame output exceeds 0.4, a scene runs between
  transitions, 0.5 s is cropped from each end of a scene, and scenes under 2 s (at least
  48 frames) are dropped.

The scenes of the other methods become clips by lvd's rules (dropped below min_clip_s,
split into equal parts of at most max_clip_s), so all are scored on equal terms.
"""

from __future__ import annotations

import dataclasses
import math
import time

import av
import numpy as np
import torch
from scenedetect import AdaptiveDetector, ContentDetector, detect

from curate.analyze import analyze_video
from curate.config import CurateConfig
from curate.transnet import load_model

COSMOS_THRESHOLD = 0.4
COSMOS_CROP_S = 0.5
COSMOS_MIN_S, COSMOS_MIN_FRAMES = 2.0, 48


def split_scenes(scenes, fps: float, cfg: CurateConfig) -> list[tuple[int, int]]:
    """Scenes [start, end) -> clips: dropped below min_clip_s, split above max_clip_s."""
    clips = []
    for a, b in scenes:
        seconds = (b - a) / fps
        if seconds + 1e-6 < cfg.shots.min_clip_s:
            continue
        parts = max(1, math.ceil(seconds / cfg.shots.max_clip_s - 1e-9))
        edges = np.linspace(a, b, parts + 1).round().astype(int)
        clips += list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    return clips


def lvd_analysis(path: str, transnetv2: str = "off"):
    """(analysis, seconds) of lvd's analyze_video at the defaults."""
    cfg = CurateConfig()
    cfg = dataclasses.replace(cfg, shots=dataclasses.replace(cfg.shots, transnetv2=transnetv2))
    t0 = time.perf_counter()
    result = analyze_video(path, cfg)
    return result, time.perf_counter() - t0


def lvd(path: str, truth: dict, transnetv2: str = "off"):
    result, seconds = lvd_analysis(path, transnetv2)
    clips = [(c["start_frame"], c["end_frame"]) for c in result.clips]
    return clips, seconds, [c["motion_score"] for c in result.clips]


def psd_scenes(path: str, detector: str) -> list[tuple[int, int]]:
    make = {"content": ContentDetector, "adaptive": AdaptiveDetector}[detector]
    return [(a.frame_num, b.frame_num) for a, b in detect(path, make())]


def pyscenedetect(path: str, truth: dict, detector: str):
    t0 = time.perf_counter()
    scenes = psd_scenes(path, detector) or [(0, truth["frames"])]
    seconds = time.perf_counter() - t0
    return split_scenes(scenes, truth["fps"], CurateConfig()), seconds, None


def transnet_frames(path: str) -> np.ndarray:
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rgb = [
            f.to_ndarray(width=48, height=27, format="rgb24", interpolation="BICUBIC")
            for f in container.decode(stream)
        ]
    return np.stack(rgb)


def cosmos_scenes(single: np.ndarray, fps: float) -> list[tuple[int, int]]:
    """Cosmos-Curate's rules on TransNetV2's single-frame output (see the module doc)."""
    above = single > COSMOS_THRESHOLD
    scenes, start, prev = [], 0, False
    for i, t in enumerate(above):
        if prev and not t:
            start = i
        if not prev and t and i != 0:
            scenes.append((start, i))
        prev = t
    if not prev:
        scenes.append((start, len(above)))
    crop = int(COSMOS_CROP_S * fps)
    shortest = max(math.ceil(COSMOS_MIN_S * fps), COSMOS_MIN_FRAMES)
    cropped = [(a + crop, b - crop) for a, b in scenes]
    return [(a, b) for a, b in cropped if b - a >= shortest]


def transnetv2_single(path: str) -> np.ndarray:
    """TransNetV2's single-frame output for every frame of the video."""
    with torch.inference_mode():
        single, _ = load_model("cpu").predict_frames(
            torch.from_numpy(transnet_frames(path)), quiet=True
        )
    return single.numpy()


def transnetv2_cosmos(path: str, truth: dict):
    t0 = time.perf_counter()
    single = transnetv2_single(path)
    seconds = time.perf_counter() - t0
    fps = truth["fps"]
    return split_scenes(cosmos_scenes(single, fps), fps, CurateConfig()), seconds, None


METHODS = {
    "lvd": lvd,
    "lvd+transnetv2": lambda p, t: lvd(p, t, "on"),
    "psd-content": lambda p, t: pyscenedetect(p, t, "content"),
    "psd-adaptive": lambda p, t: pyscenedetect(p, t, "adaptive"),
    "transnetv2+cosmos": transnetv2_cosmos,
}
