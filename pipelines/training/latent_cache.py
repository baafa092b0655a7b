"""Precomputed training samples (`cache_latents`): a Ray Data job, then a Dataset over it.

Decoding clips, running the frozen VAE encoder and T5 cost more than a small DiT's step,
and they give the same answer every epoch for the same window, so they can be done
once, in parallel, by the same kind of Ray Data job as curation (actors that load their
models once, on GPUs when the cluster has them). Each clip gets `cache_windows` fixed
sample windows (window w is exactly the sample ClipDataset draws at epoch w: the same
start time and crop); epoch e trains on window e % cache_windows. This trades the
endless fresh windows and crops of uncached training for speed; with one window per
clip (the default) every epoch sees the same samples.

RUN/cache/<stage>/part-NNNNN.parquet rows: index (the clip's place in the stage's clip
list), window, bucket, clip_id, caption, motion_score, ok, and per stage either
`video` (uint8 frames, the vae stage) or `latents` (scaled VAE latents) with
`text_emb`/`text_mask` (T5), as raw bytes with their shapes. MANIFEST.json is written
last and records what the cache was made from; a cache whose record differs from the
current stage (other data, rules, frames, VAE weights, text encoder, ...) is rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from curate.container import VideoError
from model.config import TextEncoderConfig
from model.precision import autocast
from pipelines.common import shards, storage
from pipelines.common.errors import UsageError
from pipelines.selection.rules import parse_rules
from pipelines.training import checkpoints as ckpt
from pipelines.training.config import STAGES, StageConfig
from pipelines.training.data import (
    ClipDataset,
    ClipRow,
    load_window,
    stage_clips,
    to_unit_range,
)
from pipelines.training.images import fingerprints

MANIFEST = "MANIFEST.json"
VERSION = 2  # 2: camera path columns
ROWS_PER_FILE = 256
ROWS_PER_GROUP = 8  # a sample read fetches one row group: keep them small
IN_MEMORY_BYTES = 512 << 20  # caches up to this size are held whole by each reader
PASSED = (  # row -> cache
    "index", "window", "bucket", "clip_id", "caption", "motion_score",
    "camera_elevation_deg", "camera_azimuth_deg_per_s",
)  # fmt: skip


@dataclass(frozen=True)
class SampleSpec:
    """How the cache encoder makes a stage's samples: what each actor is handed."""

    frames: int
    fps: float
    buckets: tuple[tuple[int, int], ...]
    seed: int
    random_crop: bool
    precision: str  # the trainer's setting, so cached latents are the ones it would encode
    vae_folder: str = ""  # "" caches pixels (the vae stage), else VAE latents and T5
    text_encoder: TextEncoderConfig | None = None


@dataclass(frozen=True)
class CacheJob:
    """One stage's cache: where its clips come from and where the samples go."""

    name: str
    stage: StageConfig
    data: Path
    folder: Path  # RUN/cache/<stage>
    spec: SampleSpec
    windows: int
    batch_size: int
    vae_scaling_factor: float
    ray_address: str | None = None


class CacheEncoder:
    """Ray Data actor: clip rows -> cached samples (pixels, or VAE latents and T5)."""

    def __init__(self, spec: SampleSpec):
        self.spec = spec
        self.vae = self.text = None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if spec.vae_folder:
            from model.checkpoint import load_model
            from pipelines.training.text_cache import load_text_encoder

            self.vae = load_model(spec.vae_folder, self.device, parts=("vae",)).vae
            self.text = load_text_encoder(spec.text_encoder, self.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        spec = self.spec
        rows = [
            dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)
        ]
        names = [*PASSED, "ok", "shape", "data"]
        if self.vae is not None:
            names += ["text_shape", "text_emb", "text_mask"]
        out: dict[str, list] = {k: [] for k in names}
        videos = {}
        for r, row in enumerate(rows):
            clip = ClipRow(**{f.name: row[f.name] for f in dataclasses.fields(ClipRow)})
            size = spec.buckets[int(row["bucket"])]
            key = (spec.seed, int(row["window"]), int(row["index"]))
            try:
                videos[r] = load_window(clip, spec.frames, spec.fps, size, key, spec.random_crop)
            except VideoError as e:  # an unreadable clip is left out of the cache, with a note
                print(f"lvd train: cache: skipping clip {clip.clip_id}: {e}", file=sys.stderr)
        latents = self._encode(videos) if self.vae is not None else {}
        if self.vae is not None and videos:
            captions = sorted({rows[r]["caption"] for r in videos})
            emb, mask = self.text(captions)
            text = {c: (emb[i], mask[i]) for i, c in enumerate(captions)}
        for r, row in enumerate(rows):
            for k in PASSED:
                out[k].append(row[k])
            ok = r in videos
            out["ok"].append(ok)
            array = (latents[r] if self.vae is not None else videos[r]) if ok else np.zeros(0)
            out["shape"].append(list(array.shape))
            out["data"].append(array.tobytes())
            if self.vae is not None:
                emb_r, mask_r = text[row["caption"]] if ok else (torch.zeros(0), torch.zeros(0))
                out["text_shape"].append(list(emb_r.shape))
                out["text_emb"].append(emb_r.float().cpu().numpy().astype(np.float16).tobytes())
                out["text_mask"].append(mask_r.bool().cpu().numpy().tobytes())
        return {k: np.array(v, dtype=object) for k, v in out.items()}

    @torch.no_grad()
    def _encode(self, videos: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Latents per row, one VAE call per group of equal-size samples."""
        groups: dict[tuple, list[int]] = {}
        for r, video in videos.items():
            groups.setdefault(video.shape, []).append(r)
        out = {}
        for rows in groups.values():
            pixels = torch.from_numpy(np.stack([videos[r] for r in rows])).to(self.device)
            pixels = to_unit_range(pixels.permute(0, 4, 1, 2, 3))  # (B, 3, T, H, W)
            with autocast(self.device, self.spec.precision):
                z = self.vae.encode(pixels).float()  # (B, C, T_lat, h, w)
            z = z.cpu().numpy().astype(np.float16)  # one device copy per group
            for i, r in enumerate(rows):
                out[r] = z[i]
        return out


def cache_key(job: CacheJob) -> dict:
    """Everything the cached samples depend on (compared, not hashed: it is readable)."""
    data = storage.location(job.data)
    files = shards.clip_files(data)
    stage, spec = job.stage, job.spec
    key = {
        "version": VERSION,
        "stage": job.name,
        "data": str(data.resolve() if storage.is_local(data) else data),
        "shards": [storage.fingerprint(p) for p in files],
        "frames": stage.frames,
        "fps": stage.fps,
        "buckets": [list(b) for b in stage.buckets],
        "rules": list(stage.rules),
        "random_crop": stage.random_crop,
        "images": fingerprints(stage.images) if stage.images else [],
        "seed": spec.seed,
        "windows": job.windows,
    }
    if spec.vae_folder:
        weights = Path(spec.vae_folder) / "vae.safetensors"
        key["vae"] = [str(weights), ckpt.crc32(weights)]
        key["vae_scaling_factor"] = job.vae_scaling_factor
        key["precision"] = spec.precision  # latents encoded as the uncached trainer would
        key["text_encoder"] = spec.text_encoder.model
    return key


def same_samples_as(cfg, name: str) -> tuple[str, bool] | None:
    """(another DiT stage of `cfg` whose cached samples hold this stage's, whether only
    their first frame is) or None. Such a stage trains on that stage's cache, restricted
    to its own clips, instead of encoding them again; its windows are that stage's.

    hq after video in every preset: the same frames, rate, buckets and crops. The image
    stage before video: the causal VAE encodes a window's first frame alone (its first
    latent frame is that frame's own latent), so a video window's first latent frame is
    an image sample."""
    stage = getattr(cfg, name)
    if name == "image":
        if stage.images:  # the extra images are in no other stage's cache
            return None
        for other in ("video", "hq", "mv"):
            o = getattr(cfg, other)
            if o.steps and (o.buckets, o.random_crop) == (stage.buckets, stage.random_crop):
                return other, True
        return None
    shape = (stage.frames, stage.fps, stage.buckets, stage.random_crop)
    for other in STAGES[2 : STAGES.index(name)]:  # video, hq: the clip stages before it
        o = getattr(cfg, other)
        if o.steps and (o.frames, o.fps, o.buckets, o.random_crop) == shape:
            return other, False
    return None


def cached_dataset(
    job: CacheJob, is_main: bool, clip_ids: set | None = None, first_frame: bool = False
) -> CachedSamples:
    """The stage's cached samples (only those of `clip_ids`, only their first frame, when
    asked), built first when missing or stale (rank 0 builds; the other ranks wait for
    its manifest)."""
    key = cache_key(job)
    if is_main and _read_key(job.folder) != key:
        build_cache(job, key)
    # other ranks poll the manifest: no collective (rank 0 alone also calls this when it
    # writes sample videos), and no collective timeout however long the job takes
    while _read_key(job.folder) != key:
        time.sleep(2.0)
    return CachedSamples(job.folder, job.windows, clip_ids, first_frame)


def _read_key(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def build_cache(job: CacheJob, key: dict) -> None:
    """Run the Ray Data job and write the stage's cache folder (renamed into place)."""
    from pipelines.common.progress import progress_bar
    from pipelines.common.ray_start import start_ray

    stage, folder = job.stage, job.folder
    clips = stage_clips(job.data, job.name, parse_rules(stage.rules), stage.images)
    # the same clip list, indices and buckets as uncached training
    dataset = ClipDataset(
        clips, stage.frames, stage.fps, stage.buckets, job.spec.seed, stage.random_crop
    )
    items = [
        {**dataclasses.asdict(clip), "index": i, "window": w, "bucket": dataset.bucket_of[i]}
        for i, clip in enumerate(dataset.clips)
        for w in range(job.windows)
    ]
    global _STARTED_RAY
    import ray

    _STARTED_RAY = _STARTED_RAY or not ray.is_initialized()
    start_ray(job.ray_address, None, None)
    gpus = ray.cluster_resources().get("GPU", 0)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ds = ray.data.from_items(items).map_batches(
        CacheEncoder,
        fn_constructor_args=(job.spec,),
        batch_size=job.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(gpus) or 2)),
        num_gpus=1 if gpus and job.spec.vae_folder else 0,
    )
    bar = progress_bar(total=len(items), unit="sample", desc=f"cache {job.name}")
    rows = 0
    try:
        for n, batch in enumerate(
            ds.iter_batches(batch_size=ROWS_PER_FILE, batch_format="pyarrow")
        ):
            # the folder is renamed into place when whole: files need no rename of their own
            table = _typed(batch)
            pq.write_table(table, tmp / f"part-{n:05d}.parquet", row_group_size=ROWS_PER_GROUP)
            rows += table.num_rows
            bar.update(table.num_rows)
    finally:
        bar.close()
    manifest = {"key": key, "rows": rows, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    ckpt.replace_folder(tmp, folder)


_STARTED_RAY = False


def stop_ray() -> None:
    """Shut down the local Ray the cache jobs started (kept up between stages)."""
    global _STARTED_RAY
    if _STARTED_RAY:
        import ray

        ray.shutdown()
        _STARTED_RAY = False


def _typed(batch: pa.Table) -> pa.Table:
    """Fix the Arrow types of the actor's object columns."""
    types = {
        "index": pa.int64(), "window": pa.int32(), "bucket": pa.int32(), "clip_id": pa.string(),
        "caption": pa.string(), "motion_score": pa.float32(), "ok": pa.bool_(),
        "camera_elevation_deg": pa.float32(), "camera_azimuth_deg_per_s": pa.float32(),
        "shape": pa.list_(pa.int32()), "data": pa.binary(), "text_shape": pa.list_(pa.int32()),
        "text_emb": pa.binary(), "text_mask": pa.binary(),
    }  # fmt: skip
    columns = {c: pa.array(batch[c].to_pylist(), types[c]) for c in batch.column_names}
    return pa.table(columns)


class CachedSamples(torch.utils.data.Dataset):
    """Cached samples indexed like ClipDataset: (index, epoch) -> window epoch % windows.
    Clips with any unreadable window are left out, and with `clip_ids` every other clip;
    `first_frame` keeps each sample's first latent frame. Files are read lazily, per process
    (each loader worker holds what it read of a small cache, a few row groups of a big one)."""

    def __init__(
        self, folder: Path, windows: int, clip_ids: set | None = None, first_frame: bool = False
    ):
        self.folder, self.windows, self.first_frame = folder, windows, first_frame
        self.files = sorted(folder.glob("part-*.parquet"))
        where: dict[tuple[int, int], tuple[int, int, int]] = {}
        meta: dict[int, tuple[int, bool]] = {}
        names = ["index", "window", "bucket", "ok", "clip_id"]
        for f, path in enumerate(self.files):
            parquet = pq.ParquetFile(path)
            for g in range(parquet.num_row_groups):
                cols = parquet.read_row_group(g, columns=names)
                for r, row in enumerate(cols.to_pylist()):
                    if clip_ids is not None and row["clip_id"] not in clip_ids:
                        continue
                    where[(row["index"], row["window"])] = (f, g, r)
                    bucket, ok = meta.get(row["index"], (row["bucket"], True))
                    meta[row["index"]] = (bucket, ok and row["ok"])
        self.indices = sorted(i for i, (_, ok) in meta.items() if ok)
        self.where = where
        self.bucket_of = [meta[i][0] for i in self.indices]
        if not self.indices:
            raise UsageError(f"the cache in {folder} holds no readable sample")
        # small caches stay in memory once read; large ones keep a few row groups
        size = sum(p.stat().st_size for p in self.files)
        self._keep_groups = 1 << 30 if size <= IN_MEMORY_BYTES else 8
        self._groups: OrderedDict = OrderedDict()
        self._open: dict[int, pq.ParquetFile] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        # sent to spawned loader workers: without open files and read row groups
        state = dict(self.__dict__)
        state.update(_open={}, _groups=OrderedDict(), _pid=-1)
        return state

    def _row(self, f: int, g: int, r: int) -> dict:
        if self._pid != os.getpid():  # a forked loader worker opens its own files
            self._pid, self._open, self._groups = os.getpid(), {}, OrderedDict()
        if (f, g) not in self._groups:
            if f not in self._open:
                self._open[f] = pq.ParquetFile(self.files[f])
            self._groups[(f, g)] = self._open[f].read_row_group(g).to_pylist()
            if len(self._groups) > self._keep_groups:
                self._groups.popitem(last=False)
        return self._groups[(f, g)][r]

    def __getitem__(self, key: tuple[int, int]) -> dict:
        i, epoch = key
        row = self._row(*self.where[(self.indices[i], epoch % self.windows)])
        sample = {"clip_id": row["clip_id"], "caption": row["caption"],
                  "motion_score": float(row["motion_score"]),
                  "camera": torch.tensor([row.get("camera_elevation_deg") or 0.0,
                                          row.get("camera_azimuth_deg_per_s") or 0.0])}  # fmt: skip
        if row.get("text_shape") is None:  # the vae stage: pixels
            video = np.frombuffer(row["data"], np.uint8).reshape(row["shape"])
            sample["video"] = torch.from_numpy(video.copy()).permute(3, 0, 1, 2)  # (3, T, H, W)
            return sample
        latents = np.frombuffer(row["data"], np.float16).reshape(row["shape"])
        if self.first_frame:  # an image sample from a video window (same_samples_as)
            latents = latents[:, :1]
        sample["latents"] = torch.from_numpy(latents.copy())  # (C, T_lat, h, w)
        sample["text_emb"] = torch.from_numpy(
            np.frombuffer(row["text_emb"], np.float16).reshape(row["text_shape"]).copy()
        )  # (L, dim)
        sample["text_mask"] = torch.from_numpy(
            np.frombuffer(row["text_mask"], np.bool_).copy()
        )  # (L,)
        return sample
