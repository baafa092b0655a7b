"""The multi-view demo's corpus: simple 3D objects filmed by a camera orbiting them.

Each video shows one convex object (a box, a triangular prism or a square pyramid)
whose faces have distinct saturated colours, on a low-contrast textured background,
filmed by a camera circling it at a fixed elevation, anticlockwise or clockwise, at a
steady speed. The camera path goes into the video's KEY.json sidecar (the metadata file
curate reads, curate/camera_path.py) and a caption into KEY.txt. Objects are flat
shaded by a light fixed to the object, so every view is consistent with every other.
Some (shape, colour scheme) pairs are held out: every shape and every colour appears
in training, only those objects do not.

The renderer is a few lines of numpy and OpenCV: a convex solid needs no depth buffer,
only back-face culling (a face is drawn when its outward normal faces the camera).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from curate.encode import write_video
from pipelines.demo.corpus import background

PALETTE = {  # RGB, saturated, hues 50-75 degrees apart
    "red": (220, 40, 40),
    "yellow": (235, 215, 40),
    "green": (40, 190, 60),
    "cyan": (40, 200, 210),
    "blue": (50, 80, 230),
    "magenta": (210, 50, 200),
}
SHAPES = ("box", "prism", "pyramid")
# A scheme is the order in which the palette's colours go to an object's faces.
SCHEMES = tuple(
    tuple(p)
    for p in (
        ("red", "green", "blue", "yellow", "cyan", "magenta"),
        ("yellow", "blue", "magenta", "green", "red", "cyan"),
        ("cyan", "red", "yellow", "magenta", "blue", "green"),
        ("magenta", "cyan", "green", "red", "yellow", "blue"),
        ("blue", "magenta", "red", "cyan", "green", "yellow"),
        ("green", "yellow", "cyan", "blue", "magenta", "red"),
    )
)
HELD_OUT = (("box", 1), ("prism", 3), ("pyramid", 5), ("box", 4))
LIGHT = np.array([0.5, 0.8, 0.3]) / np.linalg.norm([0.5, 0.8, 0.3])
FOCAL = 1.6  # in units of the frame's half size
DISTANCE = 4.0


@dataclass
class Solid:
    vertices: np.ndarray  # (V, 3), y up, centred on the origin
    faces: list[list[int]]  # vertex indices, anticlockwise seen from outside
    colours: list[tuple[int, int, int]]  # one per face


def make_solid(shape: str, scheme: int, rng: np.random.Generator) -> Solid:
    """A solid of `shape` with its faces coloured by SCHEMES[scheme], proportions drawn
    from `rng` (an object of about unit size)."""
    w, h, d = rng.uniform(0.75, 1.0), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)
    if shape == "box":
        v = np.array(list(itertools.product((-w, w), (-h, h), (-d, d))), float)
        # index = 4 * (x > 0) + 2 * (y > 0) + (z > 0); sides first, then top and bottom
        faces = [[1, 5, 7, 3], [5, 4, 6, 7], [4, 0, 2, 6], [0, 1, 3, 2], [3, 7, 6, 2], [0, 4, 5, 1]]
    elif shape == "prism":
        angles = np.deg2rad([90, 210, 330])
        ring = [(w * 1.15 * np.cos(a), d * 1.15 * np.sin(a)) for a in angles]
        v = np.array([(x, y, z) for y in (-h, h) for x, z in ring], float)
        faces = [[0, 1, 4, 3], [1, 2, 5, 4], [2, 0, 3, 5], [3, 4, 5], [0, 2, 1]]
    elif shape == "pyramid":
        v = np.array([(-w, -h, -d), (w, -h, -d), (w, -h, d), (-w, -h, d), (0, h, 0)], float)
        faces = [[3, 2, 4], [2, 1, 4], [1, 0, 4], [0, 3, 4], [0, 1, 2, 3]]
    else:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    faces = [_outward(v, f) for f in faces]
    colours = [PALETTE[SCHEMES[scheme][i]] for i in range(len(faces))]
    return Solid(v, faces, colours)


def _outward(v: np.ndarray, face: list[int]) -> list[int]:
    """The face's vertices ordered so their normal points away from the centre."""
    n = np.cross(v[face[1]] - v[face[0]], v[face[2]] - v[face[0]])
    return face if n @ v[face].mean(axis=0) > 0 else face[::-1]


def camera_position(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return DISTANCE * np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])


def render(solid: Solid, azimuth_deg: float, elevation_deg: float, bg: np.ndarray) -> np.ndarray:
    """One view (H, W, 3) uint8 of the solid on `bg`, camera looking at the origin."""
    size = bg.shape[0]
    eye = camera_position(azimuth_deg, elevation_deg)
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rel = solid.vertices - eye
    z = rel @ forward
    half = size / 2
    px = half + FOCAL * half * (rel @ right) / z
    py = half - FOCAL * half * (rel @ up) / z
    points = np.stack([px, py], axis=1)
    img = bg.copy()
    for face, colour in zip(solid.faces, solid.colours, strict=True):
        corners = solid.vertices[face]
        normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        normal /= np.linalg.norm(normal)
        if normal @ (eye - corners.mean(axis=0)) <= 0:
            continue  # faces away from the camera
        shade = 0.6 + 0.4 * max(0.0, float(normal @ LIGHT))
        poly = np.round(points[face] * 16).astype(np.int32)  # 4 bits of sub-pixel position
        c = tuple(round(ch * shade) for ch in colour)
        cv2.fillPoly(img, [poly], c, lineType=cv2.LINE_AA, shift=4)
    return img


def caption(shape: str, scheme: int) -> str:
    return f"a {shape} of {', '.join(SCHEMES[scheme][:3])} and more, camera moves around"


@dataclass
class OrbitVideo:
    path: str
    shape: str
    scheme: int
    elevation_deg: float
    azimuth_deg_per_s: float
    caption: str


def make_orbit_corpus(
    folder: Path,
    videos_per_object: int = 6,
    size: int = 64,
    fps: int = 12,
    seconds: float = 3.0,
    seed: int = 0,
) -> list[OrbitVideo]:
    """Write orbit videos of every training object, with KEY.json (camera path), KEY.txt
    (caption) and manifest.json, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    objects = [o for o in itertools.product(SHAPES, range(len(SCHEMES))) if o not in HELD_OUT]
    for shape, scheme in objects:
        for k in range(videos_per_object):
            elevation = float(rng.uniform(5, 35))
            # 120-300 degrees a second: 20-50 a frame at the 6 fps the demo trains on
            rate = float(rng.uniform(120, 300) * (1 if k % 2 else -1))
            start = rng.uniform(0, 360)
            solid = make_solid(shape, scheme, rng)
            bg = background(rng, size)
            n = round(seconds * fps)
            frames = [render(solid, start + rate * i / fps, elevation, bg) for i in range(n)]
            path = folder / f"{shape}_{scheme}_{k}.mp4"
            write_video(path, frames, fps)
            text = caption(shape, scheme)
            path.with_suffix(".txt").write_text(text + "\n")
            camera = {"elevation_deg": round(elevation, 3), "azimuth_deg_per_s": round(rate, 3)}
            path.with_suffix(".json").write_text(json.dumps({"camera": camera}) + "\n")
            out.append(OrbitVideo(str(path), shape, scheme, elevation, rate, text))
    (folder / "manifest.json").write_text(json.dumps([asdict(v) for v in out], indent=1))
    return out


@dataclass
class HeldOutView:
    shape: str
    scheme: int
    elevation_deg: float
    image: str  # the first view, a PNG


def held_out_views(folder: Path, size: int, seed: int = 1) -> list[HeldOutView]:
    """First views (PNG) of every held-out object at two elevations, for `lvd generate
    --image ... --orbit`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    views = []
    for shape, scheme in HELD_OUT:
        for elevation in (12.0, 28.0):
            solid = make_solid(shape, scheme, rng)
            img = render(solid, rng.uniform(0, 360), elevation, background(rng, size))
            path = folder / f"{shape}_{scheme}_e{elevation:g}.png"
            cv2.imwrite(str(path), img[:, :, ::-1])
            views.append(HeldOutView(shape, scheme, elevation, str(path)))
    return views
