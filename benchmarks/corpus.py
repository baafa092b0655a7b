"""Generate the shot/motion benchmark corpus: real photographs filmed by a virtual camera.

Each video is a sequence of shots; a shot films one of scikit-image's bundled photographs
(offline, no download) with a virtual camera that holds still, pans at a known speed,
zooms, or watches a sprite (a disc cut from another photograph) cross a still background.
Some shots carry a flash (two over-exposed frames) or a whip pan (a burst of blurred,
very fast panning); neither is a shot boundary. Shots are joined by hard cuts, fades
through black (with or without black frames held between) and dissolves; a video may
open with a fade-in or close with a fade-out. Mild sensor grain keeps still shots from
being bit-exact.

The truth JSON follows ../shared/data/videos/truth.json (`shots` with `end` exclusive,
`transitions` with inclusive windows, a cut at its first new frame) and adds
`frame_speed`: per frame, the true mean image motion to the next frame in % of the frame
diagonal per second (motion_score's unit), computed from the camera geometry; and
`events` (flashes and whip pans, which lie inside shots).

Frames are rendered lazily from a per-frame recipe, so memory stays small at 720p.

    python -m benchmarks.corpus OUT_DIR [--videos 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from curate.encode import write_video

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


def settings_for(seed: int) -> Settings:
    if seed == 0:
        return Settings()
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


def plan_video(k: int, rng: np.random.Generator, st: Settings = Settings()) -> VideoPlan:
    width, height = st.sizes[k % len(st.sizes)]
    fps = st.fps[(k // 2) % len(st.fps)]
    plan = VideoPlan(f"corpus_{k:02d}_{width}x{height}_{fps:g}fps", width, height, fps)
    if st == Settings():  # seed 0's names, as its results were first reported
        plan.name = f"corpus_{k:02d}_{height}p_{fps:g}fps"
    photos = rng.permutation(len(PHOTOS))
    n_shots = int(rng.integers(6, 9))
    for s in range(n_shots):
        short = rng.random() < st.short_share
        seconds = rng.uniform(1.0, 1.9) if short else rng.uniform(*st.shot_s)
        frames = max(8, round(seconds * fps))
        motion = str(rng.choice(["still", "pan", "zoom", "sprite"], p=list(st.motions)))
        shot = ShotPlan(PHOTOS[photos[s % len(photos)]], frames, motion)
        if motion == "pan":
            shot.speed = float(rng.choice(st.pan_speeds))
            shot.angle = float(rng.choice([0.0, math.pi, rng.uniform(0, 2 * math.pi)]))
        elif motion == "zoom":
            shot.speed = float(rng.choice(ZOOM_RATES)) * float(rng.choice([-1, 1]))
        elif motion == "sprite":
            shot.speed = float(rng.choice(st.sprite_speeds))
            shot.angle = float(rng.uniform(0, 2 * math.pi))
            shot.sprite_photo = PHOTOS[photos[(s + 7) % len(photos)]]
        if frames > 4 * fps and rng.random() < st.event_share:
            if rng.random() < 0.5:
                shot.flash_at = int(rng.integers(int(fps), frames - int(fps)))
            else:
                shot.whip_frames = round(fps * rng.uniform(0.2, 0.35))
                shot.whip_at = int(rng.integers(int(fps), frames - int(fps) - shot.whip_frames))
        plan.shots.append(shot)
    for a, b in itertools.pairwise(plan.shots):
        kind = str(rng.choice(["cut", "fade", "dissolve"], p=list(st.joins)))
        if kind == "cut":
            plan.joins.append(Join("cut"))
        elif kind == "fade":
            out_f = min(round(fps * rng.uniform(*st.fade_s)), a.frames // 2)
            in_f = min(round(fps * rng.uniform(*st.fade_s)), b.frames // 2)
            hold = int(rng.choice([0, round(fps * 0.2), round(fps * 0.6)]))
            plan.joins.append(Join("fade", out_f, hold, in_f))
        else:
            n = min(round(fps * rng.uniform(*st.dissolve_s)), a.frames // 2, b.frames // 2)
            plan.joins.append(Join("dissolve", n))
    if rng.random() < 0.5:
        plan.fade_in = min(round(fps * rng.uniform(0.5, 1.5)), plan.shots[0].frames // 2)
    if rng.random() < 0.4:
        plan.fade_out = min(round(fps * rng.uniform(0.5, 1.5)), plan.shots[-1].frames // 2)
    return plan


# A recipe entry: the (shot, frame, weight) terms whose weighted sum is one output frame
# (an empty list is a black frame).
Recipe = list[list[tuple[int, int, float]]]


def recipe(plan: VideoPlan, speeds: list[list[float]]) -> tuple[Recipe, dict]:
    """Lay out every output frame and the truth (shots, transitions, speeds, events)."""
    out: Recipe = []
    frame_speed: list[float] = []
    shots, transitions, events = [], [], []
    shot_start = 0
    for k, shot in enumerate(plan.shots):
        terms = [[(k, i, 1.0)] for i in range(shot.frames)]
        speed = list(speeds[k])
        if k == 0 and plan.fade_in:
            n = plan.fade_in
            for i in range(n):
                terms[i] = [(k, i, i / n)]
            transitions.append({"type": "fade", "start": 0, "end": n - 1})
        if k > 0:
            join = plan.joins[k - 1]
            here = len(out)
            if join.kind == "cut":
                transitions.append({"type": "cut", "start": here, "end": here})
                mid = here
            elif join.kind == "fade":
                first = here - join.out_frames
                for i in range(join.out_frames):
                    ((kk, ii, _),) = out[first + i]
                    out[first + i] = [(kk, ii, 1 - (i + 1) / (join.out_frames + 1))]
                out += [[] for _ in range(join.hold_frames)]
                frame_speed += [0.0] * join.hold_frames
                for i in range(join.in_frames):
                    terms[i] = [(k, i, (i + 1) / (join.in_frames + 1))]
                end = len(out) + join.in_frames - 1
                transitions.append({"type": "fade", "start": first, "end": end})
                mid = first + (end - first + 1) // 2
            else:
                n = join.out_frames
                first = here - n
                for i in range(n):
                    a = (i + 1) / (n + 1)
                    ((kk, ii, _),) = out[first + i]
                    out[first + i] = [(kk, ii, 1 - a), (k, i, a)]
                    frame_speed[first + i] = max(frame_speed[first + i], speed[i])
                terms, speed = terms[n:], speed[n:]
                transitions.append({"type": "dissolve", "start": first, "end": here - 1})
                mid = first + n // 2
            shots.append(_shot_truth(shot_start, mid, plan.shots[k - 1]))
            shot_start = mid
        if k == len(plan.shots) - 1 and plan.fade_out:
            n = plan.fade_out
            for i in range(n):
                j = len(terms) - n + i
                ((kk, ii, _),) = terms[j]
                terms[j] = [(kk, ii, 1 - (i + 1) / (n + 1))]
            last = len(out) + len(terms) - 1
            transitions.append({"type": "fade", "start": last - n + 1, "end": last})
        offset = len(out) - (shot.frames - len(terms))  # video frame of this shot's frame 0
        if shot.flash_at >= 0:
            events.append(
                {
                    "type": "flash",
                    "start": offset + shot.flash_at,
                    "end": offset + shot.flash_at + 1,
                }
            )
        if shot.whip_at >= 0:
            events.append(
                {
                    "type": "whip_pan",
                    "start": offset + shot.whip_at,
                    "end": offset + shot.whip_at + shot.whip_frames - 1,
                }
            )
        out += terms
        frame_speed += speed
    shots.append(_shot_truth(shot_start, len(out), plan.shots[-1]))
    truth = {
        "fps": plan.fps,
        "frames": len(out),
        "width": plan.width,
        "height": plan.height,
        "shots": shots,
        "transitions": sorted(transitions, key=lambda t: (t["start"], t["type"])),
        "events": events,
        "frame_speed": [round(s, 4) for s in frame_speed],
    }
    return out, truth


def _shot_truth(start: int, end: int, plan: ShotPlan) -> dict:
    # speed_px_per_frame as in the shared truth: 0 still, 1 moving content, 2 moving camera.
    cls = {"still": 0, "sprite": 1}.get(plan.motion, 2)
    return {"start": start, "end": end, "speed_px_per_frame": cls, "motion": plan.motion}


def render(plan: VideoPlan, cameras: list[ShotCamera], layout: Recipe, seed: int, grain=1.5):
    """Yield the output frames of a recipe, with grain."""
    rng = np.random.default_rng(seed)
    noise = [rng.normal(0, grain, (plan.height, plan.width)).round() for _ in range(4)]
    # Saturating add of the positive part, subtract of the negative part: cheap grain.
    grain = [
        (
            cv2.merge([np.clip(n, 0, 9).astype(np.uint8)] * 3),
            cv2.merge([np.clip(-n, 0, 9).astype(np.uint8)] * 3),
        )
        for n in noise
    ]
    black = np.zeros((plan.height, plan.width, 3), np.uint8)
    for j, terms in enumerate(layout):
        if not terms:
            img = black
        elif len(terms) == 1 and terms[0][2] == 1.0:
            img = cameras[terms[0][0]].frame(terms[0][1])
        else:
            acc = np.zeros((plan.height, plan.width, 3), np.float32)
            for k, i, w in terms:
                acc += w * cameras[k].frame(i)
            img = acc.astype(np.uint8)
        plus, minus = grain[j % len(grain)]
        yield cv2.subtract(cv2.add(img, plus), minus)


def make_video(plan: VideoPlan, path: Path, seed: int, st: Settings = Settings()) -> dict:
    rng = np.random.default_rng(seed)
    cameras = [ShotCamera(s, plan.width, plan.height, plan.fps, rng) for s in plan.shots]
    layout, truth = recipe(plan, [c.speeds for c in cameras])
    frames = render(plan, cameras, layout, seed, st.grain)
    write_video(path, frames, plan.fps, crf=st.crf)
    return truth


def generate(out_dir: str | Path, videos: int = 12, seed: int = 0) -> dict:
    """Write `videos` mp4 files and truth.json into out_dir; returns the truth dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    st = settings_for(seed)
    for k in range(videos):
        plan = plan_video(k, np.random.default_rng([seed, k]), st)
        path = out / f"{plan.name}.mp4"
        truth[path.name] = make_video(plan, path, seed * 1000 + k, st)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    truth = generate(args.out_dir, args.videos, args.seed)
    frames = sum(t["frames"] for t in truth.values())
    print(f"{len(truth)} videos, {frames} frames in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
