"""Does the demo's VAE keep what the prompts ask for? Corpus shots through the VAE,
judged like generated videos.

The DiT can only learn what the VAE reconstructs: a VAE that redraws the subject where
frame 0 put it, or in another colour, caps generation whatever the DiT learns. So the
demo checks its VAE on the first shot of each moving corpus video, at the size and rate
the DiT trains on: how often the reconstruction is judged to keep the original's colour
and its direction of motion.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pipelines.demo.judge import judge


def first_shot(path: Path, frames: int, fps: float, size: int) -> np.ndarray | None:
    """`frames` frames at `fps` from the start of the video (its first shot lasts at
    least 2.6 s), resized to size x size; None when the video is too short or broken."""
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            step = max(1, round(float(stream.average_rate or fps) / fps))
            picked = []
            for i, frame in enumerate(c.decode(stream)):
                if i % step == 0:
                    picked.append(frame.to_ndarray(format="rgb24"))
                if len(picked) == frames:
                    break
    except (av.error.FFmpegError, IndexError):
        return None
    if len(picked) < frames:
        return None
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in picked])


def reconstruct(vae, shots: list[np.ndarray], batch: int = 32) -> list[np.ndarray]:
    """(T, H, W, 3) uint8 shots through the VAE's encode and decode, back to uint8."""
    import torch

    out = []
    for i in range(0, len(shots), batch):
        x = torch.from_numpy(np.stack(shots[i : i + batch])).permute(0, 4, 1, 2, 3)
        with torch.no_grad():
            y = vae.decode(vae.encode(x.float() / 127.5 - 1))
        y = ((y.permute(0, 2, 3, 4, 1).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
        out += list(y)
    return out


def _trained_shape(train: Path) -> tuple[int, float, int]:
    shape = json.loads((train / "final" / "train.json").read_text())
    return shape["frames"], shape["fps"], shape["height"]


def _vae(train: Path):
    from model.checkpoint import load_model

    return load_model(train / "final", "cpu", parts=("vae",)).vae


def vae_fidelity(train: Path, corpus: Path) -> dict:
    """Share of moving corpus shots whose reconstruction by the VAE of the training run
    `train` keeps the judged colour and direction, at the frames, rate and size its DiT
    trained on (shots the judge cannot read in the original are left out)."""
    frames, fps, size = _trained_shape(train)
    shots, originals = [], []
    for path in sorted(corpus.glob("*.mp4")):
        shot = first_shot(path, frames, fps, size)
        if shot is None:
            continue
        original = judge(shot)
        if original.colour is not None and original.direction is not None:
            shots.append(shot)  # still or black shots have nothing to keep
            originals.append(original)
    if not shots:
        return {"colour": 0.0, "direction": 0.0, "clips": 0}
    recons = [judge(r) for r in reconstruct(_vae(train), shots)]
    pairs = list(zip(originals, recons, strict=True))
    return {
        "colour": sum(o.colour == r.colour for o, r in pairs) / len(pairs),
        "direction": sum(o.direction == r.direction for o, r in pairs) / len(pairs),
        "clips": len(pairs),
    }


def orbit_fidelity(train: Path, corpus: Path) -> dict:
    """The multi-view demo's check: share of corpus orbits (their start, at the DiT's
    frames, rate and size) whose reconstruction still turns the way the camera did,
    judged like generated orbits (orbits the judge misreads in the original left out)."""
    from pipelines.demo.orbit_judge import judge_orbit

    frames, fps, size = _trained_shape(train)
    shots = []
    for path in sorted(corpus.glob("*.mp4")):
        shot = first_shot(path, frames, fps, size)
        rate = json.loads(path.with_suffix(".json").read_text())["camera"]["azimuth_deg_per_s"]
        if shot is not None and judge_orbit(shot, rate).direction == np.sign(rate):
            shots.append(shot)
    if not shots:
        return {"direction": 0.0, "clips": 0}
    recons = reconstruct(_vae(train), shots)
    kept = [
        judge_orbit(r, 0).direction == judge_orbit(o, 0).direction
        for o, r in zip(shots, recons, strict=True)
    ]
    return {"direction": float(np.mean(kept)), "clips": len(shots)}


def fidelity_line(fidelity: dict) -> str:
    return (
        f"the VAE kept the subject's colour in {fidelity['colour']:.0%} and its direction "
        f"in {fidelity['direction']:.0%} of {fidelity['clips']} corpus shots"
    )
