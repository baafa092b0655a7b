"""The --out folder every command writes into: checked before any work starts.

A local --out is created and checked for write access. A URI --out (s3://, gs://) is
checked by writing and deleting a probe object, and gets a local staging folder for what
only a local file can be (the console log while the command runs), uploaded at the end.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipelines.common import storage
from pipelines.common.errors import UsageError


def prepare_out(out: str | Path) -> Path:
    """The --out location; a one-line UsageError when it is a file or not writable."""
    path = storage.location(out, "--out")
    if not storage.is_local(path):
        storage.check_writable(path)
        return path
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a folder: choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {path} cannot be created: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path} is not writable")
    return path


def local_folder(out: Path) -> Path:
    """`out` itself when local; for a URI, a local staging folder that is the same one
    for the same URI on every run of this machine (so that a rerun finds it)."""
    if storage.is_local(out):
        return out
    cache = Path(os.environ.get("LVD_CACHE", Path.home() / ".cache" / "lvd"))
    digest = hashlib.sha1(str(out).encode()).hexdigest()[:12]
    folder = cache / "staging" / f"{out.name or 'run'}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
