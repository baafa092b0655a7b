"""The demo's built-in corpus: coloured shapes moving in named directions.

Each video shows one subject (a colour and a shape) moving in one direction, filmed in
two or three shots over different low-contrast textured backgrounds, joined by hard
cuts or fades through black, with a sidecar caption ("a red circle moving left"). A
small model can learn this on a CPU, and whether a generated video follows its prompt
can be measured from pixels (pipelines/demo/judge.py). Whole (colour, direction) pairs
and some (colour, shape, direction) triples are held out of the corpus, so generation
is tested on combinations the model never saw. A few still, black and broken files are
added for curation to reject.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from curate.encode import write_video

COLOURS = {  # RGB, saturated and far apart in hue
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

# Held out of training, two kinds. Whole (colour, direction) pairs that no training clip
# shows together, whatever its shape: each colour still moves in the three other
# directions, each direction still carries the three other colours. And triples whose
# three pairs all appear in training, only never all at once.
HELD_OUT_PAIRS = (("red", "up"), ("green", "left"), ("blue", "down"), ("yellow", "right"))
HELD_OUT_TRIPLES = (
    ("red", "triangle", "down"),
    ("green", "circle", "up"),
    ("blue", "square", "left"),
    ("yellow", "triangle", "left"),
    ("red", "square", "right"),
    ("blue", "circle", "right"),
)


def held_out_kind(colour: str, shape: str, direction: str) -> str | None:
    """'pair' or 'triple' when the combination is held out of training, else None."""
    if (colour, direction) in HELD_OUT_PAIRS:
        return "pair"
    return "triple" if (colour, shape, direction) in HELD_OUT_TRIPLES else None


def caption(colour: str, shape: str, direction: str) -> str:
    return f"a {colour} {shape} moving {direction}"


@dataclass
class DemoVideo:
    path: str
    caption: str | None
    colour: str | None
    shape: str | None
    direction: str | None
    kind: str  # 'moving', 'still', 'black', 'broken'


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation, low-contrast texture: detail for the VAE, no competing colour."""
    grey = rng.uniform(90, 160)
    tint = rng.normal(0, 6, size=3)
    noise = cv2.resize(
        rng.normal(0, 1, (size // 16, size // 16)).astype(np.float32),
        (size, size),
        interpolation=cv2.INTER_CUBIC,
    )
    img = grey + 8 * noise[:, :, None] + tint[None, None, :]
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_shape(img: np.ndarray, shape: str, colour, cx: float, cy: float, r: float) -> None:
    c = tuple(int(v) for v in colour)
    x, y, ri = round(cx), round(cy), round(r)
    if shape == "circle":
        cv2.circle(img, (x, y), ri, c, -1, lineType=cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (x - ri, y - ri), (x + ri, y + ri), c, -1)
    else:
        pts = np.array([[x, y - ri], [x - ri, y + ri], [x + ri, y + ri]], np.int32)
        cv2.fillPoly(img, [pts], c, lineType=cv2.LINE_AA)


def shot_frames(
    rng, size: int, n: int, colour: str, shape: str, direction: str, moving: bool = True
) -> list[np.ndarray]:
    """One shot: the subject crosses 60-90% of the frame along `direction`."""
    bg = background(rng, size)
    dx, dy = DIRECTIONS[direction]
    r = size * rng.uniform(0.16, 0.2)
    lo, hi = r + 1, size - r - 1
    travel = rng.uniform(0.6, 0.9) * (hi - lo) if moving else 0.0
    speed = travel / max(1, n - 1)
    # start so the whole path stays inside the frame
    start_along = rng.uniform(lo, hi - travel) if dx + dy > 0 else rng.uniform(lo + travel, hi)
    across = rng.uniform(lo + size * 0.1, hi - size * 0.1)
    frames = []
    for i in range(n):
        along = start_along + (dx + dy) * speed * i
        cx, cy = (along, across) if dx else (across, along)
        img = bg.copy()
        draw_shape(img, shape, COLOURS[colour], cx, cy, r)
        frames.append(img)
    return frames


def fade(frames_out: list[np.ndarray], frames_in: list[np.ndarray], n: int) -> None:
    """Fade the end of one shot to black and the start of the next from black, in place."""
    for i in range(n):
        a = (n - 1 - i) / n
        frames_out[-n + i] = (frames_out[-n + i] * a).astype(np.uint8)
        frames_in[i] = (frames_in[i] * (i / n)).astype(np.uint8)


def make_video(path: Path, rng, colour, shape, direction, size: int, fps: int) -> None:
    frames: list[np.ndarray] = []
    for k in range(int(rng.integers(2, 4))):
        n = int(rng.uniform(2.6, 3.6) * fps)
        shot = shot_frames(rng, size, n, colour, shape, direction)
        if k and rng.random() < 0.5:
            fade(frames, shot, fps // 2)
        frames += shot
    write_video(path, frames, fps)


def make_corpus(
    folder: Path,
    videos_per_combo: int = 2,
    size: int = 64,
    fps: int = 12,
    seed: int = 0,
    still_share: float = 0.0,
) -> list[DemoVideo]:
    """Write the corpus (videos + sidecar .txt captions + manifest.json) into `folder`.
    `still_share` adds that share of videos whose subject stands still under a caption
    that says it moves (what motion filtering exists to remove)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: list[DemoVideo] = []
    combos = [c for c in itertools.product(COLOURS, SHAPES, DIRECTIONS) if not held_out_kind(*c)]
    for colour, shape, direction in combos:
        for k in range(videos_per_combo):
            path = folder / f"{colour}_{shape}_{direction}_{k}.mp4"
            make_video(path, rng, colour, shape, direction, size, fps)
            text = caption(colour, shape, direction)
            path.with_suffix(".txt").write_text(text + "\n")
            out.append(DemoVideo(str(path), text, colour, shape, direction, "moving"))
    stills = rng.permutation(len(out))[: round(still_share * len(out))] if still_share else []
    for k, i in enumerate(stills):
        v = out[i]
        path = folder / f"still_{k:03d}_{Path(v.path).name}"
        write_video(path, shot_frames(rng, size, 4 * fps, v.colour, v.shape, "left", False), fps)
        path.with_suffix(".txt").write_text(v.caption + "\n")
        out.append(DemoVideo(str(path), v.caption, v.colour, v.shape, v.direction, "still"))
    # Curation must reject these: no motion, nothing to see, not a video at all.
    still = folder / "still_red_circle.mp4"
    write_video(still, shot_frames(rng, size, 4 * fps, "red", "circle", "left", False), fps)
    out.append(DemoVideo(str(still), None, "red", "circle", None, "still"))
    black = folder / "black.mp4"
    write_video(black, [np.zeros((size, size, 3), np.uint8)] * (4 * fps), fps)
    out.append(DemoVideo(str(black), None, None, None, None, "black"))
    broken = folder / "broken.mp4"
    broken.write_bytes(rng.bytes(4096))
    out.append(DemoVideo(str(broken), None, None, None, None, "broken"))
    (folder / "empty.mp4").write_bytes(b"")
    out.append(DemoVideo(str(folder / "empty.mp4"), None, None, None, None, "broken"))
    (folder / "manifest.json").write_text(json.dumps([asdict(v) for v in out], indent=1))
    return out


def held_out_prompts() -> list[tuple[str, str, str, str, str]]:
    """(prompt, colour, shape, direction, kind) for every held-out combination, the
    pairs' (each with every shape) first, then the triples."""
    combos = [(c, s, d) for c, d in HELD_OUT_PAIRS for s in SHAPES] + list(HELD_OUT_TRIPLES)
    return [(caption(*c), *c, held_out_kind(*c)) for c in combos]
