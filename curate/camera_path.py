"""A video's camera path from its metadata sidecar: an orbit for multi-view training.

The sidecar is the video's `KEY.json` when it holds an object (video2dataset's metadata
file beside KEY.mp4), with a `camera` entry:

    {"camera": {"elevation_deg": 20.0, "azimuth_deg_per_s": -90.0}}

elevation_deg is the camera's height angle above the object's equator (-90 to 90);
azimuth_deg_per_s is how fast it orbits the object, positive anticlockwise seen from
above. A metadata file without a `camera` entry gives no path; a malformed entry is an
error naming the file and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass


class CameraFileError(ValueError):
    """A camera entry that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class CameraPath:
    elevation_deg: float
    azimuth_deg_per_s: float


def parse_camera(where: str, text: str) -> CameraPath | None:
    """The camera path of a metadata file's text; None when it has none (or is not an
    object: a list there is timed captions, see curate/timed_captions.py)."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        return None  # not ours to judge: other tools write KEY.json too
    if not isinstance(meta, dict) or "camera" not in meta:
        return None
    camera = meta["camera"]
    if not isinstance(camera, dict):
        raise CameraFileError(f"{where}: camera must be an object with elevation_deg and "
                              "azimuth_deg_per_s")  # fmt: skip
    values = {}
    for key in ("elevation_deg", "azimuth_deg_per_s"):
        value = camera.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise CameraFileError(f"{where}: camera.{key} must be a number, got {value!r}")
        values[key] = float(value)
    if not -90 <= values["elevation_deg"] <= 90:
        raise CameraFileError(
            f"{where}: camera.elevation_deg must be in [-90, 90], got {values['elevation_deg']}"
        )
    return CameraPath(**values)
