"""`lvd export` read back with the real readers: PyAV for the clips, pandas for the
CSV and Parquet manifests, the webdataset package for the tars.

An exported clip must hold its span's source frames: the same count, and the same
pixels (stream copy) or within 40 dB PSNR (re-encoded).
"""

import io
import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.common import shards
from tests import synth


@pytest.fixture(scope="module")
def run(tmp_path_factory, ray_local):
    """A curated run: two-shot videos whose shots are split at 3 s (spans between
    keyframes: re-encoded), a one-shot video (its one clip starts on a keyframe and
    ends with the video: stream-copied), and a rotated video (rotation must be
    applied: re-encoded)."""
    d = tmp_path_factory.mktemp("export-corpus")
    for k in range(2):
        shots = [synth.Shot(10 * k + 1, 96, 2.0), synth.Shot(10 * k + 2, 72, 0.0)]
        synth.write(d / f"v{k}.mp4", synth.join(shots, 96, 64), fps=24)
    synth.write(d / "whole.mp4", synth.join([synth.Shot(5, 60, 1.0)], 96, 64))  # copied
    synth.write(d / "rotated.mp4", synth.join([synth.Shot(7, 60, 1.0)], 96, 64), rotation=90)
    (d / "v0.txt").write_text("two shots of texture\n")
    out = tmp_path_factory.mktemp("export-run") / "run"
    args = ["curate", str(d), "--out", str(out), "--preset", "tiny", "--stages", "shots"]
    assert main([*args, "--set", "shots.max_clip_s=3"]) == 0
    return out


def source_frames(path: str) -> list[np.ndarray]:
    with av.open(path) as c:
        frames = []
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            k = round((f.rotation or 0) / 90) % 4
            frames.append(np.rot90(rgb, k=k) if k else rgb)
        return frames


def clip_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def assert_holds_span(data: bytes, row: dict, cache: dict) -> None:
    src = cache.setdefault(row["video_path"], source_frames(row["video_path"]))
    got = clip_frames(data)
    want = src[row["start_frame"] : row["end_frame"]]
    assert len(got) == len(want) == row["num_frames"]
    assert all(
        g.shape == w.shape for g, w in zip(got, want, strict=True)
    )  # display rotation applied
    worst = min(psnr(g, w) for g, w in zip(got, want, strict=True))
    assert worst >= 40, (row["clip_id"], worst)


def export(run, dest, fmt, *extra):
    return main(["export", str(run), "--format", fmt, "--out", str(dest), "--workers", "2", *extra])


def test_clip_files_hold_their_spans_copied_or_reencoded(run, tmp_path):
    assert export(run, tmp_path, "clips") == 0
    manifest = pd.read_parquet(tmp_path / "clips.parquet")
    curated = shards.read_table(run / "clips").to_pylist()
    assert sorted(manifest["clip_id"]) == sorted(r["clip_id"] for r in curated)
    assert "keyframes" not in manifest.columns
    cache: dict = {}
    for row in manifest.to_dict("records"):
        assert_holds_span((tmp_path / row["file"]).read_bytes(), row, cache)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["stream_copied"] > 0 and info["reencoded"] > 0, info
    assert info["stream_copied"] + info["reencoded"] == len(manifest)


def test_webdataset_tars_read_by_webdataset(run, tmp_path):
    import webdataset as wds

    assert export(run, tmp_path, "webdataset", "--shard-size", "3") == 0
    tars = sorted(str(p) for p in tmp_path.glob("*.tar"))
    curated = {r["clip_id"]: r for r in shards.read_table(run / "clips").to_pylist()}
    assert len(tars) == -(-len(curated) // 3)
    cache: dict = {}
    seen = []
    for sample in wds.WebDataset(tars, shardshuffle=False):
        meta = json.loads(sample["json"])
        assert sample["__key__"] == meta["clip_id"] and "keyframes" not in meta
        assert sample["txt"].decode() == " ".join(
            (curated[meta["clip_id"]]["caption"] or "").split()
        )
        assert_holds_span(sample["mp4"], meta, cache)
        seen.append(meta["clip_id"])
    assert sorted(seen) == sorted(curated)


def test_opensora_csv_and_cogvideox_lists(run, tmp_path):
    assert export(run, tmp_path / "os", "opensora") == 0
    table = pd.read_csv(tmp_path / "os" / "opensora.csv")
    for col in ("path", "text", "num_frames", "height", "width", "aspect_ratio", "fps"):
        assert col in table.columns
    assert all(Path(p).is_file() for p in table["path"])
    with av.open(table["path"][0]) as c:
        assert c.streams.video[0].frames in (0, table["num_frames"][0])
        assert sum(1 for _ in c.decode(video=0)) == table["num_frames"][0]

    assert export(run, tmp_path / "cog", "cogvideox") == 0
    videos = (tmp_path / "cog" / "videos.txt").read_text().splitlines()
    prompts = (tmp_path / "cog" / "prompts.txt").read_text().splitlines()
    assert len(videos) == len(prompts) == len(table)
    assert all(v.startswith("videos/") and (tmp_path / "cog" / v).is_file() for v in videos)
    assert "two shots of texture" in prompts


def test_rerun_exports_only_what_is_missing(run, tmp_path):
    assert export(run, tmp_path, "clips", "--max-clips", "4") == 0
    files = sorted((tmp_path / "clips").glob("*.mp4"))
    assert len(files) == 4
    files[1].unlink()
    assert export(run, tmp_path, "clips", "--max-clips", "4") == 0
    assert json.loads((tmp_path / "run.json").read_text())["exported_now"] == 1
    assert len(list((tmp_path / "clips").glob("*.mp4"))) == 4
    assert export(run, tmp_path, "webdataset") == 2  # another format in the same folder


def test_a_missing_source_is_an_error_entry_not_a_crash(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    first = shards.read_table(copy / "clips")["video_path"][0].as_py()
    moved = Path(first).with_suffix(".moved")
    Path(first).rename(moved)
    try:
        assert export(copy, tmp_path / "out", "clips") == 1
    finally:
        moved.rename(first)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["errors"] and all(e["video_path"] == first for e in info["errors"])
    assert info["clips"] == len(pd.read_parquet(tmp_path / "out" / "clips.parquet")) > 0


def test_export_to_object_storage_and_a_missing_bucket(run, bucket, tmp_path, capsys):
    import s3fs
    import webdataset as wds

    assert export(run, f"s3://{bucket}/wds", "webdataset", "--shard-size", "4") == 0
    fs = s3fs.S3FileSystem()
    tars = sorted(fs.glob(f"{bucket}/wds/*.tar"))
    assert tars and fs.exists(f"{bucket}/wds/run.json")
    local = []
    for t in tars:
        fs.get_file(t, str(tmp_path / Path(t).name))
        local.append(str(tmp_path / Path(t).name))
    samples = list(wds.WebDataset(local, shardshuffle=False))
    assert len(samples) == shards.read_table(run / "clips").num_rows
    assert export(run, f"s3://{bucket}/wds", "webdataset", "--shard-size", "4") == 0
    assert json.loads(fs.cat(f"{bucket}/wds/run.json"))["exported_now"] == 0

    capsys.readouterr()
    assert export(run, "s3://no-such-bucket-lvd/x", "clips") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-bucket-lvd" in err[0], err
