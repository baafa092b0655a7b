"""The frame rate analysis counts in when a container's own is unknown.

Raw streams and broken muxers can report no rate at all; analysis windows, clip
lengths and missing timestamps then count at 25 fps (PAL's rate, the commonest in the
footage that lacks metadata).
"""

FALLBACK_FPS = 25.0


def known_fps(fps: float | None) -> float:
    """`fps` when it is a usable rate, else FALLBACK_FPS."""
    return float(fps) if fps and fps > 0 else FALLBACK_FPS
