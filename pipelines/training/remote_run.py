"""A training run whose --out is in object storage: trained in a local staging folder,
mirrored to the URI after every checkpoint and at the end.

Training writes many small files in place (metrics, samples, the latent cache) and
reads checkpoints back on resume; object storage has no rename, so the run lives on
local disk (pipelines/common/out_dir.local_folder) and the mirror copies it up. A
checkpoint's manifest (COMPLETE.json) is uploaded after its other files, so a reader
of the URI never takes a half-uploaded checkpoint for a whole one. `pull` brings the
newest whole checkpoint back down for `--resume` on another machine; `fetch_model`
does the same for `lvd generate --ckpt URI`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from pipelines.common import storage
from pipelines.common.errors import UsageError
from pipelines.common.out_dir import local_folder
from pipelines.training.checkpoints import MARKER, PREFIX

SKIPPED = ("cache", "logs")  # rebuilt locally / uploaded by the CLI


class RunMirror:
    """Keeps `remote` a copy of the local run folder `local` (files, not the cache)."""

    def __init__(self, local: Path, remote: Path):
        self.local, self.remote = local, remote
        self.sent: dict[str, tuple[int, float]] = {}  # relative path -> (size, mtime)

    def pull(self, resume: bool) -> None:
        """Make the staging folder hold what the URI holds: for a resume, its newest
        whole checkpoint, run.json and metrics.jsonl. Whatever else the staging folder
        has is stale (an earlier run to the same URI) and goes, the latent cache aside."""
        newest = newest_checkpoint(self.remote)
        if newest and not resume:
            raise UsageError(
                f"{self.remote} already holds checkpoints: pass --resume to continue that "
                "run, or choose another --out"
            )
        for path in self.local.iterdir():
            if path.name not in SKIPPED:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        if not newest:
            return
        for rel in (f"checkpoints/{newest}", "run.json", "metrics.jsonl"):
            source = self.remote / rel
            if source.exists():
                print(f"lvd train: downloading {source}", file=sys.stderr)
                storage.download(source, self.local / rel)

    def push(self, *_: object) -> None:
        """Upload new or changed files; checkpoint manifests last; checkpoints deleted
        locally (keep_checkpoints) are deleted remotely too."""
        files, markers = [], []
        for path in sorted(self.local.rglob("*")):
            rel = path.relative_to(self.local).as_posix()
            if not path.is_file() or rel.split("/")[0] in SKIPPED or "/." in f"/{rel}":
                continue
            st = path.stat()
            if self.sent.get(rel) == (st.st_size, st.st_mtime):
                continue
            (markers if path.name == MARKER else files).append((rel, st))
        for rel, st in files + markers:
            storage.upload(self.local / rel, self.remote / rel)
            self.sent[rel] = (st.st_size, st.st_mtime)
        local_ckpts = {p.name for p in (self.local / "checkpoints").glob(f"{PREFIX}*")}
        for remote_ckpt in storage.parts(self.remote / "checkpoints", f"{PREFIX}*"):
            if remote_ckpt.name not in local_ckpts:
                remote_ckpt.fs.rm(remote_ckpt.path, recursive=True)


def newest_checkpoint(run: Path) -> str | None:
    """The name of the newest checkpoint under run/checkpoints that has its manifest."""
    for folder in reversed(storage.parts(run / "checkpoints", f"{PREFIX}*")):
        if (folder / MARKER).exists():
            return folder.name
    return None


def fetch_model(uri: str) -> Path:
    """A local copy of the model folder a URI names: a model folder or checkpoint
    itself, else a run's final/, else its newest whole checkpoint."""
    remote = storage.location(uri, "--ckpt")
    storage.check_readable(remote, "--ckpt")
    if (remote / "config.json").exists():
        source = remote
    elif (remote / "final" / "config.json").exists():
        source = remote / "final"
    elif newest := newest_checkpoint(remote):
        source = remote / "checkpoints" / newest
    else:
        raise UsageError(f"{uri} is neither a model folder nor a training run with a checkpoint")
    local = local_folder(source)
    if (source / MARKER).exists():
        manifest = json.loads((source / MARKER).read_text())
        whole = (local / MARKER).is_file() and json.loads((local / MARKER).read_text()) == manifest
    else:
        whole = False
    if not whole:
        print(f"lvd: downloading {source}", file=sys.stderr)
        storage.download(source, local)
    return local


def local_run(out: Path) -> tuple[Path, RunMirror | None]:
    """The folder training writes into, and the mirror that uploads it (None: local)."""
    if storage.is_local(out):
        return out, None
    mirror = RunMirror(local_folder(out), out)
    os.makedirs(mirror.local, exist_ok=True)
    return mirror.local, mirror
