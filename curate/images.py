"""Keyframe bytes <-> images, and the per-row column access every model stage shares.

Keyframes travel between stages as encoded JPEG/PNG bytes (small, Arrow-friendly); a
stage decodes them once, right before its model needs them. Ray Data may hand a column
over as a list or as a numpy object array whose items are lists or arrays of bytes: both
are accepted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image


def column(batch: dict[str, Any], name: str, n: int) -> list[Any]:
    """Column `name` of a batch as a Python list of n items (all None when absent)."""
    values = batch.get(name)
    if values is None:
        return [None] * n
    return list(values)


def encode_image(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """An (H, W, 3) uint8 RGB array as JPEG or PNG bytes."""
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_image(data: Any) -> Image.Image:
    """Encoded bytes (bytes, memoryview or a uint8 array) as an RGB PIL image.

    Raises ValueError when the bytes are not a complete image.
    """
    if isinstance(data, np.ndarray):
        data = data.tobytes()
    elif isinstance(data, memoryview | bytearray):
        data = bytes(data)
    if not isinstance(data, bytes) or not data:
        raise ValueError(f"expected encoded image bytes, got {type(data).__name__}")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # decode now, so truncated or corrupt data fails here
        return image.convert("RGB")
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"undecodable keyframe: {e}") from None


def decode_keyframes(keyframes: Sequence[Any] | np.ndarray | None) -> list[Image.Image] | None:
    """All keyframes of one row, or None when the row has none or any fails to decode."""
    if keyframes is None or isinstance(keyframes, str):
        return None
    if isinstance(keyframes, bytes | bytearray | memoryview) or (
        isinstance(keyframes, np.ndarray) and keyframes.dtype == np.uint8
    ):
        keyframes = [keyframes]  # one encoded image rather than a sequence of them
    try:
        images = [decode_image(k) for k in keyframes]
    except ValueError:
        return None
    return images or None


def middle(items: Sequence[Any]) -> Any:
    """The middle keyframe: element len // 2 (keyframes are ordered first, middle, last)."""
    return items[len(items) // 2]


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """Up to `count` items evenly spaced over `items`, first and last included."""
    if count >= len(items):
        return list(items)
    if count == 1:
        return [middle(items)]
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]
