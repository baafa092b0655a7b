"""Decode throughput: lvd's analysis-size decoder against OpenCV and PyAV at full size.

    .venv/bin/python benchmarks/decode.py [--seconds 20] [--repeats 3] [FILE ...]

Generates textured, panning H.264 test videos at 360p and 720p (or reads the files
given, plus ../shared/data/videos when present), then decodes each file with:

  pyav-raw        PyAV threaded decode, frames untouched (the physical limit)
  lvd-planes      lvd VideoReader, luma/chroma at analysis size (what cut detection reads)
  lvd-bgr         lvd VideoReader, small BGR image per frame (PySceneDetect's input)
  pyav-full-rgb   PyAV threaded decode + to_ndarray('rgb24') at full size
  opencv-full     cv2.VideoCapture.read() at full size (BGR)

and prints frames/s for each, best of --repeats, all in one process so the ratios hold
on a noisy machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.encode import write_video
from curate.video import DecodeOptions, VideoReader

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def make_video(path: Path, width: int, height: int, seconds: float, fps: int = 30) -> Path:
    """A detailed texture panned diagonally: realistic decode cost, no static frames."""
    rng = np.random.default_rng(0)
    w, h = width * 2, height * 2
    tex = cv2.resize(
        (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    n = int(seconds * fps)

    def frames():
        for i in range(n):
            x, y = int(i * width / n), int(i * height / n)
            yield tex[y : y + height, x : x + width]

    write_video(path, frames(), fps, crf=23)
    return path


def pyav_raw(path: Path) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def lvd(kind: str):
    def run(path: Path) -> int:
        n = 0
        with VideoReader(path, DecodeOptions()) as reader:
            for frame in reader:
                frame.planes() if kind == "planes" else frame.bgr()
                n += 1
        return n

    return run


def pyav_full_rgb(path: Path) -> int:
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def opencv_full(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


METHODS = {
    "pyav-raw": pyav_raw,
    "lvd-planes": lvd("planes"),
    "lvd-bgr": lvd("bgr"),
    "pyav-full-rgb": pyav_full_rgb,
    "opencv-full": opencv_full,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of generated videos")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lvd-decode-bench-"))
    files = list(args.files)
    if not files:
        files = [
            make_video(tmp / "pan_360p.mp4", 640, 360, args.seconds),
            make_video(tmp / "pan_720p.mp4", 1280, 720, args.seconds),
        ]
        if SHARED.is_dir():
            files += sorted(p for p in SHARED.rglob("*") if p.suffix in (".mp4", ".webm"))

    cv2.setNumThreads(0)
    print(f"{'file':34s} " + " ".join(f"{m:>13s}" for m in METHODS) + "   (frames/s)")
    for path in files:
        best = {}
        for _ in range(args.repeats):
            for name, fn in METHODS.items():
                t = time.perf_counter()
                n = fn(path)
                best[name] = max(best.get(name, 0.0), n / (time.perf_counter() - t))
        with VideoReader(path) as r:
            info = r.info
        label = f"{path.name[:22]} {info.width}x{info.height}"
        print(f"{label:34s} " + " ".join(f"{best[m]:13.0f}" for m in METHODS))
        print(
            f"{'  ratio to pyav-raw':34s} "
            + " ".join(f"{best[m] / best['pyav-raw']:13.2f}" for m in METHODS)
        )


if __name__ == "__main__":
    main()
