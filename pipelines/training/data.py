"""Training data from clip shards: rules, span decoding, buckets, exact-resume batches.

Clips are read from a curated or filtered run folder through the same rules as
`lvd filter` (each training stage has its own). A sample decodes only its clip's span at
the stage's frame rate (curate/clip_reader.py), scales it to cover a bucket's size and
crops it. Buckets group clips by aspect ratio; each bucket has its own batch size so
every batch holds about the same number of pixels (Sora/Open-Sora's bucketing).

Batches are a pure function of (seed, epoch, batch index): a run resumed at a data
position sees exactly the batches the uninterrupted run would have seen, and under DDP
every rank takes its slice of the same global batch, so N processes at batch B/N equal
one process at batch B.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader

from curate.clip_reader import read_frames_at
from curate.container import VideoError
from curate.filtering import Rule
from pipelines.common import shards, storage
from pipelines.common.errors import UsageError
from pipelines.selection.rules import apply_rules
from pipelines.training.images import image_rows

log = logging.getLogger("lvd.train")

COLUMNS = ["clip_id", "video_path", "start_s", "end_s", "fps", "width", "height", "caption"]
# micro-conditioning reads motion_score, the mv stage the camera path, when shards have them
OPTIONAL = ["motion_score", "camera_elevation_deg", "camera_azimuth_deg_per_s"]


@dataclass(frozen=True)
class ClipRow:
    clip_id: str
    video_path: str
    start_s: float
    end_s: float  # the time of end_frame, which is not in the clip (exclusive)
    width: int
    height: int
    caption: str
    motion_score: float = 0.0
    fps: float = 0.0  # the clip's own frame rate (0: unknown)
    camera_elevation_deg: float = 0.0  # the orbit of a multi-view clip (0, 0: none)
    camera_azimuth_deg_per_s: float = 0.0

    @property
    def has_camera(self) -> bool:
        return bool(self.camera_elevation_deg or self.camera_azimuth_deg_per_s)

    @property
    def last_s(self) -> float:
        """Time of the clip's last frame: sampling past it would show the frame after a
        cut (or a trimmed transition frame)."""
        return self.end_s - 1.0 / self.fps if self.fps > 0 else self.end_s


def load_clips(folder: Path, rules: list[Rule]) -> list[ClipRow]:
    """Every clip of a run folder that passes `rules`, by clip id."""
    folder = storage.location(folder)
    files = shards.clip_files(folder)
    if not files:
        raise UsageError(f"no clip shards in {folder / 'clips'} (run lvd curate first)")
    have = set(storage.parquet_file(files[0]).schema_arrow.names)
    needed = sorted(set(COLUMNS) | {r.column for r in rules} | (set(OPTIONAL) & have))
    missing = [c for c in needed if c not in have]
    if missing:
        raise UsageError(f"clip shards in {folder} lack column {missing[0]!r}")
    table = apply_rules(pa.concat_tables(storage.read_parquet(f, needed) for f in files), rules)
    # Which videos share a shard depends on how Ray grouped them in that run: order by id,
    # so that the same clips and seed train the same model however they were sharded.
    table = table.sort_by("clip_id")
    return [
        ClipRow(
            r["clip_id"],
            r["video_path"],
            r["start_s"],
            r["end_s"],
            r["width"],
            r["height"],
            r["caption"] or "",
            float(r.get("motion_score") or 0.0),
            float(r["fps"] or 0.0),
            float(r.get("camera_elevation_deg") or 0.0),
            float(r.get("camera_azimuth_deg_per_s") or 0.0),
        )
        for r in table.to_pylist()
    ]


def stage_clips(folder: Path, name: str, rules: list[Rule], images: str = "") -> list[ClipRow]:
    """The clips a training stage trains on: those passing its rules, then the stage's
    extra `images` as one-frame clips; for the mv stage only clips whose camera path is
    known."""
    clips = load_clips(folder, rules)
    if images:
        clips += [ClipRow(**row) for row in image_rows(images)]
    if name != "mv":
        return clips
    clips = [c for c in clips if c.has_camera]
    if not clips:
        raise UsageError(
            f"mv stage: no clip in {folder} has a camera path (curate videos with a "
            'KEY.json sidecar holding {"camera": {"elevation_deg": ..., "azimuth_deg_per_s": ...}})'
        )
    return clips


def batch_sizes(buckets: list[tuple[int, int]], batch_size: int, world_size: int = 1) -> list[int]:
    """Global batch size per bucket: `batch_size` for the first, the others scaled so a
    batch holds about as many pixels, rounded to a multiple of the process count."""
    pixels = [h * w for h, w in buckets]
    sizes = [batch_size]
    for p in pixels[1:]:
        scaled = batch_size * pixels[0] / p
        sizes.append(max(world_size, round(scaled / world_size) * world_size))
    return sizes


def bucket_for(width: int, height: int, buckets: list[tuple[int, int]]) -> int:
    """The bucket (height, width) whose aspect ratio is closest in log space."""
    aspect = math.log(max(width, 1) / max(height, 1))
    return min(
        range(len(buckets)), key=lambda i: abs(math.log(buckets[i][1] / buckets[i][0]) - aspect)
    )


def cover_crop(
    frames: np.ndarray, height: int, width: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Scale (T, H, W, 3) frames to cover height x width, then crop (random or centre)."""
    h, w = frames.shape[1:3]
    s = max(height / h, width / w)
    nh, nw = max(height, round(h * s)), max(width, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    y = int(rng.integers(0, nh - height + 1)) if rng is not None else (nh - height) // 2
    x = int(rng.integers(0, nw - width + 1)) if rng is not None else (nw - width) // 2
    return scaled[:, y : y + height, x : x + width]


def long_enough(clips: list[ClipRow], frames: int, fps: float) -> list[ClipRow]:
    """The clips that hold `frames` frames at `fps`."""
    span = (frames - 1) / fps
    return [c for c in clips if c.last_s - c.start_s >= span - 1e-6]


class ClipDataset(torch.utils.data.Dataset):
    """Samples of `frames` frames at `fps` from clips, cropped to their bucket.

    Indexing takes (index, epoch): the clip window and crop come from an RNG seeded by
    (seed, epoch, index), so a sample is the same in any worker, rank or resumed run.
    """

    def __init__(
        self,
        clips: list[ClipRow],
        frames: int,
        fps: float,
        buckets: list[tuple[int, int]],
        seed: int = 0,
        random_crop: bool = True,
    ):
        self.clips = long_enough(clips, frames, fps)
        if not self.clips:
            raise UsageError(
                f"no clip is long enough for {frames} frames at {fps:g} fps "
                f"({(frames - 1) / fps:.2f} s)"
            )
        self.frames, self.fps, self.buckets, self.seed = frames, fps, buckets, seed
        self.random_crop = random_crop
        self.bucket_of = [bucket_for(c.width, c.height, buckets) for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, epoch = key
        for attempt in range(len(self.clips)):
            i = (index + attempt) % len(self.clips)
            if self.bucket_of[i] != self.bucket_of[index]:
                continue  # a replacement must fit the batch's bucket
            try:
                return self._load(i, epoch)
            except VideoError as e:
                log.warning("skipping clip %s: %s", self.clips[i].clip_id, e)
        raise RuntimeError("no readable clip in this bucket")

    def _load(self, i: int, epoch: int) -> dict:
        clip = self.clips[i]
        size = self.buckets[self.bucket_of[i]]
        frames = load_window(
            clip, self.frames, self.fps, size, (self.seed, epoch, i), self.random_crop
        )
        return {
            "video": torch.from_numpy(frames).permute(3, 0, 1, 2),  # (C, T, H, W) uint8
            "caption": clip.caption,
            "clip_id": clip.clip_id,
            "motion_score": clip.motion_score,
            "camera": camera_of(clip),
        }


def load_window(
    clip: ClipRow,
    frames: int,
    fps: float,
    size: tuple[int, int],
    key: tuple[int, ...],
    random_crop: bool = True,
) -> np.ndarray:
    """(frames, H, W, 3) uint8: a window of the clip at `fps`, scaled to cover `size`
    (height, width) and cropped; window start and crop come from an RNG seeded by `key`."""
    rng = np.random.default_rng(list(key))
    span = (frames - 1) / fps
    start = clip.start_s + rng.uniform(0, max(0.0, clip.last_s - clip.start_s - span))
    times = [start + k / fps for k in range(frames)]
    video = read_frames_at(clip.video_path, times, short_side=None)
    return cover_crop(video, size[0], size[1], rng if random_crop else None)


def camera_of(clip) -> torch.Tensor:
    """(2,) elevation (degrees) and orbit speed (degrees a second) of a clip row."""
    return torch.tensor(
        [clip.camera_elevation_deg, clip.camera_azimuth_deg_per_s], dtype=torch.float32
    )


def to_unit_range(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [-1, 1] (done on the training device: 4x less to copy)."""
    return video.float() / 127.5 - 1.0


def collate(samples: list[dict]) -> dict:
    """Stack tensors, list everything else."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)  # e.g. video (B, C, T, H, W)
        elif isinstance(values[0], float):
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = values
    return out


def make_loader(dataset, sampler, workers: int, pin_memory: bool) -> DataLoader:
    # Forking a process that runs Ray's (gRPC) threads can leave a worker waiting on a
    # lock no thread will release: start workers from a clean fork server then.
    context = "forkserver" if workers and "ray" in sys.modules else None
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        worker_init_fn=worker_init, pin_memory=pin_memory,
        prefetch_factor=4 if workers else None, multiprocessing_context=context,
    )  # fmt: skip


def worker_init(_worker_id: int) -> None:
    """Loader workers decode and resize one sample at a time: one thread each, so they
    do not fight the training process for cores."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class BucketBatchSampler:
    """Global batches by bucket, in a seeded order; each rank yields its slice.

    Position (epoch, batch) is the data position saved in checkpoints: iteration can
    start at any position and continues exactly as an uninterrupted run would.
    """

    def __init__(
        self,
        bucket_of: list[int],
        batch_sizes: list[int],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        for b in batch_sizes:
            if b % world_size:
                raise UsageError(f"batch size {b} is not divisible by {world_size} processes")
        self.bucket_of, self.batch_sizes = bucket_of, batch_sizes
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.batch = 0, 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        batches = []
        for b, size in enumerate(self.batch_sizes):
            idx = np.array([i for i, k in enumerate(self.bucket_of) if k == b])
            if len(idx) < size:
                continue
            idx = np.random.default_rng([self.seed, epoch, b]).permutation(idx)
            batches += [idx[j : j + size].tolist() for j in range(0, len(idx) - size + 1, size)]
        order = np.random.default_rng([self.seed, epoch]).permutation(len(batches))
        return [batches[k] for k in order]

    def batches_per_epoch(self) -> int:
        return len(self.epoch_batches(0))  # the same every epoch: only the order changes

    def set_position(self, batches_done: int) -> None:
        """Start after `batches_done` global batches (the data position of a checkpoint)."""
        per_epoch = self.batches_per_epoch()
        if per_epoch == 0:
            raise UsageError(
                "no bucket has enough clips for one batch; lower the batch size or add data"
            )
        self.epoch, self.batch = divmod(batches_done, per_epoch)

    def __iter__(self):
        while True:
            batches = self.epoch_batches(self.epoch)
            if not batches:
                raise UsageError(
                    "no bucket has enough clips for one batch; lower the batch size or add data"
                )
            while self.batch < len(batches):
                global_batch = batches[self.batch]
                self.batch += 1
                yield [(i, self.epoch) for i in global_batch[self.rank :: self.world_size]]
            self.epoch, self.batch = self.epoch + 1, 0
