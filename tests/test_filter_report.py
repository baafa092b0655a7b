"""`lvd filter` and `lvd report` on shards with known scores."""

import json

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.common import shards


def _jpeg(value: int) -> bytes:
    return cv2.imencode(".jpg", np.full((32, 48, 3), value, np.uint8))[1].tobytes()


def make_run(folder, n_shards=3, per_shard=20, seed=0):
    """A run folder whose clips have motion 0..N-1 and text_area cycling 0..0.9."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(per_shard * n_shards, 8)).astype(np.float32)
    base[1] = base[0] + 1e-4  # clip 1 is a near-duplicate of clip 0
    k = 0
    for s in range(n_shards):
        clips, videos = [], []
        for j in range(per_shard):
            vid = f"v{s}"
            clips.append(
                {
                    "clip_id": f"{vid}-{j}",
                    "video_id": vid,
                    "video_path": f"/x/{vid}.mp4",
                    "start_frame": j * 10,
                    "end_frame": j * 10 + 10,
                    "start_s": j * 1.0,
                    "end_s": j * 1.0 + 3.0,
                    "fps": 10.0,
                    "num_frames": 10,
                    "width": 48,
                    "height": 32,
                    "motion_score": float(k),
                    "motion_p90": float(k) * 1.5,
                    "aesthetic_score": 5.0,
                    "text_score": 0.2,
                    "text_area": (k % 10) / 10,
                    "caption": f"clip number {k}",
                    "caption_source": "sidecar",
                    "clip_embedding": base[k].astype(np.float16),
                    "keyframe_frames": [j * 10, j * 10 + 5, j * 10 + 9],
                    "keyframes": [_jpeg(k), _jpeg(k), _jpeg(k)],
                }
            )
            k += 1
        videos.append(
            {
                "video_id": f"v{s}",
                "video_path": f"/x/v{s}.mp4",
                "status": "ok",
                "num_clips": per_shard,
            }
        )
        videos.append(
            {
                "video_id": f"bad{s}",
                "video_path": f"/x/bad{s}.mp4",
                "status": "error",
                "error": "empty: file is empty",
                "error_kind": "empty",
                "num_clips": 0,
            }
        )
        shards.write_shard(
            folder,
            f"part-{s:05d}",
            pa.Table.from_pylist(videos, schema=shards.VIDEO_SCHEMA),
            pa.Table.from_pylist(clips, schema=shards.CLIP_SCHEMA),
        )
    return folder


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "c1")


def test_filter_applies_rules_and_records_counts(run_dir, tmp_path):
    out = tmp_path / "f1"
    code = main(
        [
            "filter",
            str(run_dir),
            "--out",
            str(out),
            "--drop-bottom",
            "motion_score=0.25",
            "--max",
            "text_area=0.5",
            "--dedup",
            "0.99",
        ]
    )
    assert code == 0
    kept = shards.read_table(out / "clips")
    motion = np.array(kept["motion_score"].to_pylist())
    assert motion.min() >= 14.75  # bottom quarter of 0..59 is gone
    assert max(kept["text_area"].to_pylist()) <= 0.5
    info = json.loads((out / "run.json").read_text())
    removed = [r["removed"] for r in info["rules"]]
    assert info["clips_in"] == 60
    assert removed[0] == 15 and removed[1] == 20  # 45 left; k % 10 in 6..9 fails text_area
    assert removed[2] == 0  # the duplicate pair (clips 0, 1) was already cut by motion
    assert info["clips_kept"] == kept.num_rows == 60 - sum(removed)
    assert sorted(p.name for p in (out / "clips").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert shards.read_table(out / "videos").num_rows == 6


def test_dedup_removes_the_later_duplicate(run_dir, tmp_path):
    out = tmp_path / "f2"
    assert main(["filter", str(run_dir), "--out", str(out), "--dedup", "0.99"]) == 0
    ids = shards.read_table(out / "clips")["clip_id"].to_pylist()
    assert "v0-0" in ids and "v0-1" not in ids and len(ids) == 59


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min", "nosuch=1"], "column 'nosuch' is not in the clip shards"),
        (["--min", "motion_score"], "expects COL=VALUE"),
        (["--drop-top", "text_area=2"], "fraction must be in [0, 1)"),
    ],
)
def test_filter_errors_name_the_problem(run_dir, tmp_path, capsys, args, message):
    assert main(["filter", str(run_dir), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_filter_streams_shard_by_shard(run_dir, tmp_path):
    out = tmp_path / "f3"
    assert main(["filter", str(run_dir), "--out", str(out), "--min", "motion_score=30"]) == 0
    sizes = [pq.read_metadata(p).num_rows for p in sorted((out / "clips").iterdir())]
    assert sizes == [0, 10, 20]


def test_report_is_one_self_contained_file(run_dir, tmp_path):
    out = tmp_path / "f4"
    main(["filter", str(run_dir), "--out", str(out), "--drop-bottom", "motion_score=0.5"])
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5  # one histogram per score
    assert page.count('class="card"') == 30  # every kept clip, up to 48
    assert "drop-bottom motion_score=0.5" in page and "error: empty" in page
    assert "clip number 59" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside
