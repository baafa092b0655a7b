"""Extra images for the image stage: a folder of captioned stills trained beside the clips.

Stable Video Diffusion pretrained its image stage on an image dataset before it saw
video. The `image` stage trains on single frames of the curated clips, and with
`image.images = FOLDER` (a local folder or a URI prefix) also on every image under it:
PNG, JPEG or WebP, each captioned by a text file of the same stem (`cat.png` + `cat.txt`,
the layout of image-caption folders and of video2dataset's). An image becomes a clip row
one frame long, so the cached and the uncached loaders read it the way they read a clip
(PyAV decodes stills too). The stage's rules select clips by their curated scores;
images have none, so the rules do not apply to them.
"""

from __future__ import annotations

import hashlib
import logging

from PIL import Image, UnidentifiedImageError

from curate.container import one_line
from pipelines.common import storage
from pipelines.common.errors import UsageError

log = logging.getLogger("lvd.train")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def image_files(source: str) -> list[tuple]:
    """(image, its .txt sidecar or None) for every image under `source`, recursively,
    sorted (the order fixes their indices); one listing, no request per file."""
    folder = storage.location(source, "image.images")
    storage.check_readable(folder, "image.images")
    if not folder.is_dir():
        raise UsageError(f"image.images: {source} is not a folder")
    listed = list(folder.rglob("*"))
    texts = {str(p) for p in listed if p.suffix.lower() == ".txt"}
    files = sorted((p for p in listed if p.suffix.lower() in IMAGE_SUFFIXES), key=str)
    if not files:
        raise UsageError(f"image.images: no {'/'.join(IMAGE_SUFFIXES)} file under {source}")
    return [(p, p.with_suffix(".txt") if str(p.with_suffix(".txt")) in texts else None)
            for p in files]  # fmt: skip


def image_rows(source: str) -> list[dict]:
    """One single-frame clip row (ClipRow's fields) per image under `source`."""
    rows = []
    for path, sidecar in image_files(source):
        try:
            with path.open("rb") as f:
                width, height = Image.open(f).size  # the header only
        except (OSError, UnidentifiedImageError) as e:  # left out, as an unreadable clip is
            log.warning("image.images: skipping %s: %s", path, one_line(e))
            continue
        name = str(path)
        clip_id = "image-" + hashlib.sha1(name.encode()).hexdigest()[:16]
        # end_s 0 with fps 0: the frame at 0 s is the whole clip
        rows.append({
            "clip_id": clip_id, "video_path": name, "start_s": 0.0, "end_s": 0.0,
            "width": width, "height": height, "caption": sidecar.read_text(encoding="utf-8").strip() if sidecar else "",
        })  # fmt: skip
    return rows


def fingerprints(source: str) -> list:
    """What the cached samples of the images depend on: each image and caption file."""
    out = []
    for path, sidecar in image_files(source):
        out.append(storage.fingerprint(path))
        out.append(storage.fingerprint(sidecar) if sidecar else None)
    return out
