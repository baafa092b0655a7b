"""`lvd curate`: a Ray Data pipeline from raw videos to atomic, resumable clip shards.

    inputs -> analysis (CPU task per video: decode once, shots, motion, keyframes)
           -> caption -> clip -> text (actor pools, model loaded once per actor)
           -> driver: group rows by video, write shards (clips first, then videos)

           -> shard writer (task: writes OUT/clips/part-*.parquet, local or object storage)
           -> driver: writes the videos shard of each clips shard, the commit record

The driver is not the data path: clip rows (keyframes, embeddings) go from the workers
straight to storage; the driver sees one small summary per shard (its videos rows) and
commits it (see pipelines/common/shards.py). A row in flight is a whole video, so a
shard never splits one.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.config import PRESETS, CurateConfig
from curate.container import use_storage_options
from curate.errors import ModelLoadError
from curate.preflight import check_models
from pipelines.common import shards, storage
from pipelines.common.config_loader import build, to_dict
from pipelines.common.console import copy_worker_logs
from pipelines.common.errors import CommandFailed, UsageError
from pipelines.common.out_dir import local_folder
from pipelines.common.run_json import peak_rss_mb, record_run
from pipelines.curation.inputs import InputItem, list_inputs
from pipelines.curation.stages import (
    SHARD_SUMMARY,
    STAGE_COLUMNS,
    ModelStageActor,
    ShardWriter,
    analyze_batch,
)
from pipelines.curation.stages import input_video_id as _input_video_id

ALL_STAGES = ("shots", "motion", "caption", "clip", "text")


def parse_stages(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in ALL_STAGES]
    if unknown:
        raise UsageError(
            f"unknown stage {unknown[0]!r} in --stages (choose from {', '.join(ALL_STAGES)})"
        )
    return [s for s in ALL_STAGES if s in names or s == "shots"]


@dataclass
class RunStats:
    videos: int = 0
    videos_ok: int = 0
    clips: int = 0
    errors_by_kind: collections.Counter = field(default_factory=collections.Counter)
    stage_s: collections.Counter = field(default_factory=collections.Counter)
    nodes: collections.Counter = field(default_factory=collections.Counter)
    shards: list[str] = field(default_factory=list)

    def add(self, videos: pa.Table, stats: dict[str, Any]) -> None:
        self.videos += videos.num_rows
        status = videos["status"].to_pylist()
        self.videos_ok += status.count("ok")
        self.errors_by_kind.update(
            k for k, st in zip(videos["error_kind"].to_pylist(), status, strict=True) if st != "ok"
        )
        self.clips += pc.sum(videos["num_clips"]).as_py() or 0
        self.stage_s.update(stats["stage_s"])
        self.nodes.update(stats["nodes"])


def commit(out: Path, summary: pa.Table, stats: RunStats) -> int:
    """Write the videos shard (the commit record) of each clips shard a worker wrote;
    returns how many videos that committed."""
    done = 0
    for name, data, info in zip(
        *(summary[c].to_pylist() for c in SHARD_SUMMARY.names), strict=True
    ):
        storage.write_bytes(out / "videos" / f"{name}.parquet", data)
        videos = pq.read_table(pa.BufferReader(data))
        stats.add(videos, json.loads(info))
        stats.shards.append(name)
        done += videos.num_rows
    return done


def curate_videos(
    items: list[InputItem],
    cfg: CurateConfig,
    stages: list[str],
    out: Path,
    *,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    progress: bool = True,
    log_dir: Path | None = None,
) -> RunStats:
    """Run the pipeline over `items` (videos not yet recorded in `out`) and write shards."""
    from pipelines.common.progress import progress_bar

    stats = RunStats()
    log_dir = log_dir or local_folder(out) / "logs"
    if cfg.decode.threads == 0:
        # Videos run in parallel, one per task: FFmpeg threads beyond the task's CPUs
        # only fight the other tasks for cores.
        threads = max(1, round(cfg.pipeline.analysis_cpus))
        cfg = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, threads=threads))
    if not items:
        return stats
    from pipelines.common.ray_start import start_ray

    ray = start_ray(ray_address, num_cpus, num_gpus)
    resources = ray.cluster_resources()
    has_gpu = resources.get("GPU", 0) > 0
    slots = resources.get("CPU", 1) / cfg.pipeline.analysis_cpus
    per_task = videos_per_task(cfg.pipeline.videos_per_task, len(items), slots)
    listed = pa.table(
        {
            "video_path": [it.path for it in items],
            "caption": [it.caption for it in items],
            "caption_path": [it.caption_path for it in items],
            "timed_captions": [_spans_json(it.captions) for it in items],
            "meta_path": [it.meta_path for it in items],
        }
    )
    ds = ray.data.from_arrow(
        [listed.slice(i, per_task) for i in range(0, listed.num_rows, per_task)]
    )
    ds = ds.map_batches(
        analyze_batch,
        batch_size=per_task,
        batch_format="pyarrow",
        fn_kwargs={"cfg": cfg, "motion": "motion" in stages},
        num_cpus=cfg.pipeline.analysis_cpus,
        # TransNetV2 runs inside the analysis: give it a GPU where there is one
        num_gpus=cfg.pipeline.analysis_gpus if has_gpu and cfg.shots.transnetv2 != "off" else 0,
    )
    for name in STAGE_COLUMNS:
        if name not in stages:
            continue
        ds = ds.map_batches(
            ModelStageActor,
            fn_constructor_args=(name, cfg),
            batch_size=None,  # a block of whole videos; the actor batches their clips
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.pipeline.max_actors),
            num_cpus=cfg.pipeline.actor_cpus,
            num_gpus=cfg.pipeline.actor_gpus if has_gpu else 0,
        )
    ds = ds.map_batches(
        ShardWriter,
        batch_size=cfg.pipeline.videos_per_shard,
        batch_format="pyarrow",
        fn_kwargs={"out": str(out)},
        num_cpus=0,  # I/O: it must not wait for an analysis slot
        # Long-lived writers: as tasks needing no CPU, writes made the raylet start a
        # fresh worker process whenever the analysis held the others (14 processes on 2
        # CPUs, a third of the run's CPU time; benchmarks/ray_cpu.py).
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(slots // 8))),
    )
    bar = progress_bar(total=len(items), unit="video", disable=not progress, smoothing=0.1)
    try:
        for summary in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            bar.update(commit(out, summary, stats))
            bar.set_postfix(clips=stats.clips, errors=stats.videos - stats.videos_ok, refresh=False)
    except Exception as e:
        raise _worker_failure(e, log_dir) from None
    finally:
        bar.close()
        copy_worker_logs(log_dir)
    return stats


def _spans_json(spans) -> str | None:
    """A list file's timed captions for one video, as one small string column."""
    if spans is None:
        return None
    return json.dumps([[sp.start_s, sp.end_s, sp.caption] for sp in spans])


def videos_per_task(setting: int, videos: int, slots: float) -> int:
    """`pipeline.videos_per_task`, or for 0 (auto) 4 videos a task, or 2 where 4 would
    leave an analysis slot (a CPU) fewer than 4 tasks to balance the load with. On
    2 CPUs, 96 ten-second 360p videos curate 1.33x faster at 4 than at 2."""
    if setting:
        return setting
    return 4 if videos >= 4 * 4 * slots else 2


def _worker_failure(e: BaseException, logs: Path) -> Exception:
    """One line for a failure inside the pipeline, with the full traceback in logs/."""
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "error.log").write_text("".join(traceback.format_exception(e)))
    copy_worker_logs(logs)
    # Ray's errors carry the worker's exception as `cause`, their text the traceback.
    while isinstance(getattr(e, "cause", None), BaseException):
        e = e.cause
    text = str(e).strip()  # Ray Data appends its own lines to the message
    first = text.splitlines()[0] if text else type(e).__name__
    if isinstance(e, ModelLoadError):
        return UsageError(f"{first} (full log: {logs})")
    first = first[:200]
    return CommandFailed(f"a Ray worker failed: {first} (full log: {logs / 'error.log'})")


def totals(out: Path) -> dict[str, Any]:
    """Counts over every shard in the run folder (all reruns together)."""
    videos = shards.read_table(out / "videos", ["status", "error_kind", "num_clips"])
    if videos.num_rows == 0:
        return {"videos": 0, "videos_ok": 0, "videos_error": 0, "clips": 0, "errors_by_kind": {}}
    ok = pc.sum(pc.equal(videos["status"], "ok")).as_py() or 0
    kinds = collections.Counter(k for k in videos["error_kind"].to_pylist() if k)
    return {
        "videos": videos.num_rows,
        "videos_ok": ok,
        "videos_error": videos.num_rows - ok,
        "clips": pc.sum(videos["num_clips"]).as_py() or 0,
        "errors_by_kind": dict(kinds),
    }


CONFIG = CurateConfig  # `lvd curate --help-config` lists its keys (see cli.main)


def storage_options(args) -> dict[str, dict]:
    """The config's fsspec options, which the --out check at start-up needs."""
    return build(PRESETS, args.preset, args.config, args.overrides).storage.options


def run(args) -> int:
    cfg = build(PRESETS, args.preset, args.config, args.overrides)
    stages = parse_stages(args.stages)
    out = storage.location(args.out, "--out")
    use_storage_options(cfg.storage.options)
    inputs = list_inputs(args.inputs)
    try:
        models = check_models(cfg, stages)  # seconds: before any video is decoded
    except ModelLoadError as e:
        raise UsageError(str(e)) from None
    started = time.time()
    recorded = shards.prepare(out)
    todo = [it for it in inputs.items if _input_video_id(it.path) not in recorded]
    skipped = len(inputs.items) - len(todo)
    if args.limit is not None:
        todo = todo[: args.limit]
    if args.ray_address and storage.is_local(out):
        print(
            f"lvd curate: --out {out} is a local folder: every node of the cluster writes "
            "clips shards into it, so it must be a shared filesystem (or use s3://, gs://)",
            file=sys.stderr,
        )
    print(
        f"lvd curate: {len(inputs.items)} videos listed, {skipped} already in {out}, "
        f"{len(todo)} to do; stages {','.join(stages)}",
        file=sys.stderr,
    )
    stats = curate_videos(
        todo,
        cfg,
        stages,
        out,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        log_dir=getattr(args, "log_dir", None),
    )
    this_run = {
        "wall_s": round(time.time() - started, 3),
        "inputs": args.inputs,
        "stages": stages,
        "preset": args.preset,
        "videos_listed": len(inputs.items),
        "skipped_non_video": inputs.skipped_non_video,
        "skipped_already_done": skipped,
        "videos_processed": stats.videos,
        "videos_ok": stats.videos_ok,
        "clips": stats.clips,
        "errors_by_kind": dict(stats.errors_by_kind),
        "stage_time_s": {k: round(v, 3) for k, v in stats.stage_s.items()},
        "shards_written": stats.shards,
        "nodes": dict(stats.nodes),
        "driver_peak_rss_mb": peak_rss_mb(),
    }
    total = totals(out)
    this_run["models"] = models
    record_run(out, started, this_run, command="curate", config=to_dict(cfg), **total)
    print(
        f"lvd curate: {stats.videos} videos ({stats.videos_ok} ok, "
        f"{stats.videos - stats.videos_ok} errors), {stats.clips} clips this run; "
        f"{total['clips']} clips in {out / 'clips'}",
        file=sys.stderr,
    )
    return 0
