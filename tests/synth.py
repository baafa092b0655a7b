"""Small synthetic videos for tests, written with PyAV (H.264).

A "scene" is a smooth random colour texture larger than the frame; a shot is a window
moving over it at a known speed. Shots are joined by hard cuts, fades through black or
dissolves, so tests know the exact frames of every boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from curate.encode import write_video


def texture(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth, detailed RGB texture (blurred noise at two scales), uint8."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(
        rng.random((height // 16 + 2, width // 16 + 2, 3), np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    fine = cv2.resize(
        rng.random((height // 4 + 2, width // 4 + 2, 3), np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    img = 0.7 * coarse + 0.3 * fine
    img = (img - img.min()) / (np.ptp(img) + 1e-6)
    return (img * 255).astype(np.uint8)


@dataclass
class Shot:
    seed: int
    frames: int
    speed: float = 0.0  # pixels per frame, horizontal pan, at the output size
    gain: float = 1.0  # brightness of the scene (real shots differ in exposure and colour)


def shot_frames(shot: Shot, width: int, height: int) -> Iterator[np.ndarray]:
    margin = int(abs(shot.speed) * shot.frames) + 2
    tex = texture(shot.seed, height, width + margin)
    if shot.gain != 1.0:
        tex = np.clip(tex * shot.gain, 0, 255).astype(np.uint8)
    for i in range(shot.frames):
        x = i * abs(shot.speed)
        x = x if shot.speed >= 0 else margin - 2 - x
        m = np.float32([[1, 0, -x], [0, 1, 0]])
        yield cv2.warpAffine(tex, m, (width, height), flags=cv2.INTER_LINEAR)


def join(
    shots: list[Shot], width: int, height: int, transition: str = "cut", length: int = 0
) -> list[np.ndarray]:
    """All frames of shots joined by 'cut', 'fade' (through black) or 'dissolve'.

    A fade takes `length` frames out and `length` in; a dissolve mixes the last
    `length` frames of one shot with the first `length` of the next.
    """
    out: list[np.ndarray] = []
    for k, shot in enumerate(shots):
        frames = list(shot_frames(shot, width, height))
        if k > 0 and transition == "fade":
            for i in range(length):  # out of the previous shot
                a = 1 - (i + 1) / length
                out[-length + i] = (out[-length + i] * a).astype(np.uint8)
            for i in range(length):
                frames[i] = (frames[i] * (i / length)).astype(np.uint8)
        if k > 0 and transition == "dissolve":
            out = dissolve(out, frames, length)
        else:
            out += frames
    return out


def dissolve(a: list[np.ndarray], b: list[np.ndarray], length: int) -> list[np.ndarray]:
    """a then b, the last `length` frames of a mixed with the first `length` of b."""
    mixed = [
        cv2.addWeighted(a[-length + i], 1 - w, b[i], w, 0)
        for i, w in enumerate(np.arange(1, length + 1) / (length + 1))
    ]
    return a[:-length] + mixed + b[length:]


def write(path, frames, fps: float = 24, **kw) -> str:
    write_video(path, frames, fps, **kw)
    return str(path)


def flash(frames: list[np.ndarray], at: int, length: int = 2) -> list[np.ndarray]:
    """Frames with `length` over-exposed frames from `at` (a camera flash)."""
    out = list(frames)
    for i in range(at, at + length):
        out[i] = cv2.addWeighted(out[i], 0.25, np.full_like(out[i], 255), 0.75, 0)
    return out


def whip_shot(seed: int, frames: int, width: int, height: int, at: int, length: int):
    """A still shot that whips (a motion-blurred pan over 1.2 frame widths in `length`
    frames) from frame `at` to another view of the same scene, and holds there."""
    travel = 1.2 * width
    tex = texture(seed, height, int(width + travel) + 4)
    out = []
    for i in range(frames):
        x0 = travel * min(max(i - at, 0), length) / length
        x1 = travel * min(max(i + 1 - at, 0), length) / length
        subs = []
        for k in range(6 if x1 > x0 else 1):
            m = np.float32([[1, 0, -(x0 + (x1 - x0) * k / 6)], [0, 1, 0]])
            subs.append(cv2.warpAffine(tex, m, (width, height), flags=cv2.INTER_LINEAR))
        out.append(np.mean(subs, axis=0).astype(np.uint8))
    return out


def scene_frames(
    seed: int, width: int, height: int, fps: float, seconds: float, speed: float
) -> list[np.ndarray]:
    """One scene filmed at any size and frame rate: a texture made once at a fixed
    resolution, viewed through a window panning right at `speed` frame widths per second.
    The same seed and speed give the same motion at every width, height and fps."""
    ref_w, ref_h = 480, 270
    margin = int(speed * seconds * ref_w) + 8
    tex = texture(seed, ref_h, ref_w + margin)
    scale = ref_w / width  # texture pixels per output pixel
    if scale > 1:  # low-pass before sampling, like a camera's optics
        tex = cv2.GaussianBlur(tex, (0, 0), sigmaX=0.5 * scale)
    out = []
    for i in range(round(seconds * fps)):
        x = speed * ref_w * i / fps
        m = np.float32([[scale, 0, x], [0, scale, 0]])  # output -> texture coordinates
        out.append(
            cv2.warpAffine(tex, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        )
    return out


def photo_pan(name: str, frames: int, width: int, height: int, speed: float) -> list[np.ndarray]:
    """One of scikit-image's photographs filmed by a camera panning right at `speed`
    output pixels per frame (detailed real content, unlike the smooth textures)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]
    zoom, y0 = 0.6, 0.2 * img.shape[0]
    return [
        cv2.warpAffine(
            img,
            np.float32([[zoom, 0, i * speed], [0, zoom, y0]]),  # output -> photo coordinates
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        for i in range(frames)
    ]
