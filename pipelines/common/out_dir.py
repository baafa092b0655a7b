"""The --out folder every command writes into: checked before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.common.errors import UsageError
from pipelines.common.uris import check_uri, is_uri


def prepare_out(out: str | Path) -> Path:
    """Create `out` if needed; a one-line UsageError when it is a file or not writable."""
    if is_uri(str(out)):
        check_uri(str(out), "--out")
        raise UsageError(
            f"--out {out}: object storage is not a run folder lvd can write yet; use a local folder"
        )
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a folder: choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {path} cannot be created: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path} is not writable")
    return path
