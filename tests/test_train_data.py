"""Training data: spans at the stage's fps, buckets, and batches that resume exactly."""

import numpy as np
import pytest
import torch

from pipelines.common.errors import UsageError
from pipelines.selection.rules import parse_rules
from pipelines.training.data import (
    BucketBatchSampler,
    ClipDataset,
    ClipRow,
    batch_sizes,
    bucket_for,
    collate,
    cover_crop,
    to_unit_range,
)
from tests import synth


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("td")
    wide = synth.write(d / "wide.mp4", synth.join([synth.Shot(1, 72, 2.0)], 96, 48), fps=24)
    tall = synth.write(d / "tall.mp4", synth.join([synth.Shot(2, 72, 1.0)], 48, 96), fps=24)
    rows = []
    for k in range(6):
        rows.append(ClipRow(f"w{k}", wide, 0.0, 3.0, 96, 48, f"wide {k}"))
        rows.append(ClipRow(f"t{k}", tall, 0.5, 3.0, 48, 96, f"tall {k}"))
    rows.append(ClipRow("short", wide, 0.0, 0.2, 96, 48, "too short"))
    return rows


BUCKETS = [(32, 64), (64, 32)]


def test_bucket_is_the_closest_aspect():
    assert bucket_for(1920, 1080, BUCKETS) == 0
    assert bucket_for(1080, 1920, BUCKETS) == 1


def test_cover_crop_fills_the_bucket():
    frames = np.zeros((3, 50, 100, 3), np.uint8)
    assert cover_crop(frames, 32, 32, None).shape == (3, 32, 32, 3)
    assert cover_crop(frames, 40, 60, np.random.default_rng(0)).shape == (3, 40, 60, 3)


def test_samples_have_the_stage_shape_and_drop_short_clips(clips):
    ds = ClipDataset(clips, frames=9, fps=8, buckets=BUCKETS)
    assert len(ds) == 12  # the 0.2 s clip cannot hold 9 frames at 8 fps
    sample = ds[(0, 0)]
    assert sample["video"].shape == (3, 9, 32, 64) and sample["video"].dtype == torch.uint8
    video = to_unit_range(sample["video"])
    assert float(video.min()) >= -1.0 and float(video.max()) <= 1.0 and video.std() > 0.05
    tall = ds[(1, 0)]
    assert tall["video"].shape == (3, 9, 64, 32)


def test_samples_are_a_function_of_index_and_epoch(clips):
    ds = ClipDataset(clips, frames=5, fps=8, buckets=BUCKETS)
    assert torch.equal(ds[(2, 3)]["video"], ds[(2, 3)]["video"])
    assert not torch.equal(ds[(2, 3)]["video"], ds[(2, 4)]["video"])


def test_batches_stay_in_one_bucket(clips):
    ds = ClipDataset(clips, frames=5, fps=8, buckets=BUCKETS)
    sampler = BucketBatchSampler(ds.bucket_of, [2, 2], seed=0)
    it = iter(sampler)
    for _ in range(8):
        batch = next(it)
        assert len({ds.bucket_of[i] for i, _ in batch}) == 1
        assert collate([ds[k] for k in batch])["video"].shape[0] == 2


def test_resumed_position_continues_exactly(clips):
    ds = ClipDataset(clips, frames=5, fps=8, buckets=BUCKETS)
    full = iter(BucketBatchSampler(ds.bucket_of, [2, 2], seed=7))
    reference = [next(full) for _ in range(20)]
    resumed = BucketBatchSampler(ds.bucket_of, [2, 2], seed=7)
    resumed.set_position(13)
    it = iter(resumed)
    assert [next(it) for _ in range(7)] == reference[13:]


def test_ranks_split_the_same_global_batch(clips):
    ds = ClipDataset(clips, frames=5, fps=8, buckets=BUCKETS)
    one = iter(BucketBatchSampler(ds.bucket_of, [4, 4], seed=1))
    r0 = iter(BucketBatchSampler(ds.bucket_of, [4, 4], seed=1, rank=0, world_size=2))
    r1 = iter(BucketBatchSampler(ds.bucket_of, [4, 4], seed=1, rank=1, world_size=2))
    for _ in range(6):
        assert sorted(next(r0) + next(r1)) == sorted(next(one))


def test_rules_parse_and_fail_with_a_reason():
    assert (
        parse_rules(["min motion_score=0.2", "drop-bottom aesthetic_score=0.25"])[1].op
        == "drop_bottom"
    )
    with pytest.raises(UsageError, match="data rule 'min motion_score'"):
        parse_rules(["min motion_score"])


def test_bucket_batch_sizes_hold_about_the_same_pixels():
    assert batch_sizes([(32, 64), (64, 64), (16, 16)], 8) == [8, 4, 64]
    # the others rounded to the process count, never below it
    assert batch_sizes([(32, 32), (64, 64), (128, 128)], 8, world_size=4) == [8, 4, 4]


def test_collate_stacks_tensors_and_numbers(clips):
    ds = ClipDataset(clips, frames=5, fps=8, buckets=BUCKETS)
    batch = collate([ds[(0, 0)], ds[(2, 0)]])
    assert batch["video"].shape == (2, 3, 5, 32, 64)
    assert batch["motion_score"].dtype == torch.float32 and batch["caption"] == ["wide 0", "wide 1"]


def test_windows_stay_before_the_clip_end(tmp_path):
    # shot A is frames 0-23, shot B starts at frame 24 = end_s of a clip of shot A
    frames = synth.join([synth.Shot(1, 24), synth.Shot(2, 24)], 64, 64)
    path = synth.write(tmp_path / "cut.mp4", frames, fps=24)
    clip = ClipRow("a", path, 0.0, 1.0, 64, 64, "shot a", fps=24.0)
    with pytest.raises(UsageError, match="no clip is long enough"):
        ClipDataset([clip], frames=25, fps=24, buckets=[(64, 64)])  # would need frame 24
    ds = ClipDataset([clip], frames=24, fps=24, buckets=[(64, 64)], random_crop=False)
    last = ds[(0, 0)]["video"][:, -1].permute(1, 2, 0).float().numpy()
    a_end, b_start = (f.astype(np.float32) for f in (frames[23], frames[24]))
    assert np.abs(last - a_end).mean() < np.abs(last - b_start).mean() / 4


def test_clip_order_does_not_depend_on_how_shards_were_grouped(tmp_path_factory):
    """Ray groups videos into shards differently from run to run: the same clips must
    come in the same order (and so train the same model) however they were sharded."""
    import pyarrow.parquet as pq

    from pipelines.common import shards
    from pipelines.training.data import load_clips
    from tests.test_train import make_curated

    table = shards.read_table(make_curated(tmp_path_factory.getbasetemp()) / "clips")
    assert table.num_rows > 2
    runs = []
    for name, groups in (("ab", [(0, 2), (2, None)]), ("ba", [(2, None), (0, 2)])):
        folder = tmp_path_factory.mktemp(name)  # a filtered run: clips shards only
        (folder / "clips").mkdir()
        for k, (start, stop) in enumerate(groups):
            part = table.slice(start, (stop or table.num_rows) - start)
            pq.write_table(part, folder / "clips" / f"part-{k}.parquet")
        runs.append([c.clip_id for c in load_clips(folder, [])])
    assert runs[0] == runs[1] == sorted(runs[0])
