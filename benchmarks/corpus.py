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
from pathlib import Path

import cv2
import numpy as np

from benchmarks.corpus_scene import (
    PHOTOS,
    SEED0,
    ZOOM_RATES,
    Join,
    Settings,
    ShotCamera,
    ShotPlan,
    VideoPlan,
    settings_for,
)
from curate.encode import write_video


def plan_video(k: int, rng: np.random.Generator, st: Settings = SEED0) -> VideoPlan:
    width, height = st.sizes[k % len(st.sizes)]
    fps = st.fps[(k // 2) % len(st.fps)]
    plan = VideoPlan(f"corpus_{k:02d}_{width}x{height}_{fps:g}fps", width, height, fps)
    if st == SEED0:  # seed 0's names, as its results were first reported
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


def make_video(plan: VideoPlan, path: Path, seed: int, st: Settings = SEED0) -> dict:
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
