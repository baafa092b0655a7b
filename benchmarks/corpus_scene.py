"""What the benchmark corpus's videos are made of: the photographs, the settings a seed
draws, the plans of shots and joins, and the virtual camera (benchmarks/corpus.py lays
them out, renders and writes them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np
import skimage.data

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
    "clock",
    "moon",
)
SIZES = ((640, 360), (1280, 720))
FPS = (24.0, 30.0, 25.0, 29.97)
PAN_SPEEDS = (3.0, 6.0, 12.0, 24.0, 45.0)  # % of the frame diagonal per second
ZOOM_RATES = (0.08, 0.15, 0.3)  # change of log scale per second
SPRITE_SPEEDS = (15.0, 40.0, 80.0)  # % of the frame diagonal per second


@cache
def photo(name: str) -> np.ndarray:
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


@dataclass(frozen=True)
class Settings:
    """What a corpus is made of. Seed 0 (the corpus the detector was tuned on) uses these
    defaults; every other seed draws its own (`settings_for`), so held-out corpora differ
    in their mix of transitions, speeds, sizes, frame rates, lengths and noise."""

    sizes: tuple[tuple[int, int], ...] = SIZES
    fps: tuple[float, ...] = FPS
    joins: tuple[float, float, float] = (0.4, 0.3, 0.3)  # cut, fade, dissolve
    motions: tuple[float, float, float, float] = (0.25, 0.4, 0.15, 0.2)  # still pan zoom sprite
    pan_speeds: tuple[float, ...] = PAN_SPEEDS
    sprite_speeds: tuple[float, ...] = SPRITE_SPEEDS
    shot_s: tuple[float, float] = (2.5, 8.0)
    short_share: float = 0.15  # shots of 1-1.9 s
    fade_s: tuple[float, float] = (0.3, 1.0)  # each side of a fade through black
    dissolve_s: tuple[float, float] = (0.4, 1.5)
    event_share: float = 0.4  # long shots with a flash or a whip pan
    grain: float = 1.5
    crf: int = 20


SEED0 = Settings()  # the corpus lvd was first tuned on


def settings_for(seed: int) -> Settings:
    if seed == 0:
        return SEED0
    rng = np.random.default_rng([seed, 7919])
    pool_sizes = ((320, 240), (480, 270), (640, 360), (854, 480), (960, 540), (1280, 720),
                  (360, 640), (720, 720))  # fmt: skip
    pool_fps = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)
    speed = rng.uniform(0.6, 2.2)  # faster or slower cameras than seed 0's
    return Settings(
        sizes=tuple(pool_sizes[i] for i in rng.choice(len(pool_sizes), 3, replace=False)),
        fps=tuple(float(pool_fps[i]) for i in rng.choice(len(pool_fps), 3, replace=False)),
        joins=tuple(float(x) for x in rng.dirichlet([2, 2, 2])),
        motions=tuple(float(x) for x in rng.dirichlet([2, 3, 1.5, 2])),
        pan_speeds=tuple(round(v * speed, 1) for v in PAN_SPEEDS),
        sprite_speeds=tuple(round(v * speed, 1) for v in SPRITE_SPEEDS),
        shot_s=(float(rng.uniform(2.0, 3.5)), float(rng.uniform(5.0, 10.0))),
        short_share=float(rng.uniform(0.05, 0.3)),
        fade_s=(float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.8, 2.0))),
        dissolve_s=(float(rng.uniform(0.3, 0.6)), float(rng.uniform(1.0, 3.0))),
        event_share=float(rng.uniform(0.2, 0.6)),
        grain=float(rng.uniform(0.8, 3.0)),
        crf=int(rng.integers(18, 29)),
    )


@dataclass
class ShotPlan:
    photo: str
    frames: int
    motion: str  # still | pan | zoom | sprite
    speed: float = 0.0  # pan or sprite: % diag/s; zoom: change of log scale per second
    angle: float = 0.0  # pan or sprite direction, radians
    sprite_photo: str = ""
    flash_at: int = -1  # frame within the shot where a 2-frame flash starts
    whip_at: int = -1  # frame within the shot where a whip pan starts
    whip_frames: int = 0


@dataclass
class Join:
    kind: str  # cut | fade | dissolve
    out_frames: int = 0  # fade: frames fading out; dissolve: frames mixed
    hold_frames: int = 0  # fade: black frames between
    in_frames: int = 0  # fade: frames fading in


@dataclass
class VideoPlan:
    name: str
    width: int
    height: int
    fps: float
    shots: list[ShotPlan] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)  # joins[k] joins shots k and k+1
    fade_in: int = 0  # frames of fade from black opening the video
    fade_out: int = 0  # frames of fade to black closing it


class ShotCamera:
    """A similarity view into a photo that moves frame by frame.

    Output pixel p shows image point c + z (p - o), o the output centre; all camera
    states are computed up front (cheap), images are drawn on request.
    """

    WHIP_TRAVEL = 1.2  # frame widths a whip pan travels

    def __init__(self, plan: ShotPlan, width: int, height: int, fps: float, rng):
        self.plan, self.width, self.height = plan, width, height
        self.img = photo(plan.photo)
        ih, iw = self.img.shape[:2]
        z = min(iw / width, ih / height) * rng.uniform(0.55, 0.85)
        c = np.array([iw / 2, ih / 2]) + rng.uniform(-0.1, 0.1, 2) * [iw, ih]
        diag = math.hypot(width, height)
        direction = np.array([math.cos(plan.angle), math.sin(plan.angle)])
        self.sprite = Sprite(plan, width, height, fps, rng) if plan.motion == "sprite" else None
        self.states: list[tuple[np.ndarray, float, np.ndarray, bool]] = []
        self.speeds: list[float] = []  # % diag/s from each frame to the next
        for i in range(plan.frames):
            step_px = plan.speed / 100 * diag / fps if plan.motion == "pan" else 0.0
            whip = 0 <= plan.whip_at <= i < plan.whip_at + plan.whip_frames
            if whip:
                step_px += self.WHIP_TRAVEL * width / plan.whip_frames
            c1 = c + direction * step_px * z
            z1 = z * math.exp(plan.speed / fps) if plan.motion == "zoom" else z
            moved = self._displacement(c, z, c1, z1)
            if self.sprite is not None:
                moved += self.sprite.mean_displacement
            self.states.append((c, z, c1, whip))
            self.speeds.append(moved / diag * fps * 100)
            c, z = c1, z1

    def _displacement(self, c0, z0, c1, z1) -> float:
        """Mean output-pixel displacement of scene points from view (c0, z0) to (c1, z1)."""
        xs, ys = np.meshgrid(np.linspace(0, self.width, 17), np.linspace(0, self.height, 9))
        p = np.stack([xs.ravel(), ys.ravel()], 1)
        o = np.array([self.width / 2, self.height / 2])
        p1 = o + (c0 + z0 * (p - o) - c1) / z1
        return float(np.linalg.norm(p1 - p, axis=1).mean())

    def _view(self, c, z) -> np.ndarray:
        o = (self.width / 2, self.height / 2)
        m = np.array([[z, 0, c[0] - z * o[0]], [0, z, c[1] - z * o[1]]])
        return cv2.warpAffine(
            self.img,
            m,
            (self.width, self.height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,  # the photo mirrored: pans never run out
        )

    def frame(self, i: int) -> np.ndarray:
        c, z, c1, whip = self.states[i]
        if whip:  # motion blur: the mean of sub-frame views along the path
            img = np.mean([self._view(c + (c1 - c) * k / 6, z) for k in range(6)], axis=0)
            img = img.astype(np.uint8)
        else:
            img = self._view(c, z)
        if self.sprite is not None:
            img = self.sprite.draw(img, i)
        p = self.plan
        if 0 <= p.flash_at <= i < p.flash_at + 2:
            img = cv2.addWeighted(img, 0.25, np.full_like(img, 255), 0.75, 0)
        return img


class Sprite:
    """A disc cut from another photo moving in a straight line, bouncing off the edges."""

    def __init__(self, plan: ShotPlan, width: int, height: int, fps: float, rng):
        r = int(min(width, height) * rng.uniform(0.18, 0.28))
        src = photo(plan.sprite_photo)
        y0 = rng.integers(0, max(1, src.shape[0] - 2 * r))
        x0 = rng.integers(0, max(1, src.shape[1] - 2 * r))
        self.patch = cv2.resize(src[y0 : y0 + 2 * r, x0 : x0 + 2 * r], (2 * r, 2 * r))
        yy, xx = np.mgrid[: 2 * r, : 2 * r]
        self.mask = ((yy - r + 0.5) ** 2 + (xx - r + 0.5) ** 2 <= r * r)[:, :, None]
        self.r, self.width, self.height = r, width, height
        step = np.array([math.cos(plan.angle), math.sin(plan.angle)])
        step *= plan.speed / 100 * math.hypot(width, height) / fps  # output px per frame
        pos = np.array([rng.uniform(r, width - r), rng.uniform(r, height - r)])
        self.positions = []
        for _ in range(plan.frames):
            self.positions.append(pos.copy())
            pos = pos + step
            for k, hi in ((0, width), (1, height)):
                if not r <= pos[k] <= hi - r:
                    step[k] *= -1
                    pos[k] = min(max(pos[k], r), hi - r)
        # Only the sprite's pixels move: the frame's mean displacement is its area share.
        share = float(self.mask.sum()) / (width * height)
        self.mean_displacement = float(np.linalg.norm(step)) * share

    def draw(self, img: np.ndarray, i: int) -> np.ndarray:
        x, y = (round(v) - self.r for v in self.positions[i])
        h, w = self.patch.shape[:2]
        xa, ya = max(0, x), max(0, y)
        xb, yb = min(self.width, x + w), min(self.height, y + h)
        out = img.copy()
        if xb > xa and yb > ya:
            p = self.patch[ya - y : yb - y, xa - x : xb - x]
            m = self.mask[ya - y : yb - y, xa - x : xb - x]
            out[ya:yb, xa:xb] = np.where(m, p, out[ya:yb, xa:xb])
        return out
