"""Ray Data adapters around the curate/ stages; the only place they meet Arrow and Ray.

A row in flight is one video (FLOW_SCHEMA): its videos columns, the node that analysed
it, and its clips as a nested list. Because a video is one row, no batching in Ray Data
can split a video's clips apart, so the last stage can write a shard of whole videos.
The analysis is a CPU task per video; the model stages are actor pools that see the
clips of a block, in batches of the stage's batch_size. Only keyframe bytes travel
through the object store, never decoded video.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.camera_path import CameraFileError, CameraPath, parse_camera
from curate.config import CurateConfig
from curate.ids import clip_id, video_id
from curate.timed_captions import TIMED_SUFFIXES, CaptionFileError, CaptionSpan
from curate.timed_captions import parse as parse_timed
from pipelines.common import storage
from pipelines.common.shards import CLIP_SCHEMA, VIDEO_SCHEMA
from pipelines.curation.isolate import ChildCrashed, ChildTimeout, run_isolated

log = logging.getLogger("lvd.curate")

# Columns each model stage reads and adds (see curate/caption.py, clip_score.py, text_area.py).
STAGE_COLUMNS = {
    "caption": (["keyframes", "caption", "caption_source"], ["caption", "caption_source"]),
    "clip": (["keyframes", "caption"], ["clip_embedding", "aesthetic_score", "text_score"]),
    "text": (["keyframes"], ["text_area"]),
}

_timing = [pa.field(f"{name}_s", pa.float64()) for name in STAGE_COLUMNS]  # per clip
CLIP_FLOW = pa.schema([*CLIP_SCHEMA, *_timing])
FLOW_SCHEMA = pa.schema(
    [
        *VIDEO_SCHEMA,
        pa.field("analysis_node", pa.string()),
        pa.field("clips", pa.list_(pa.struct(list(CLIP_FLOW)))),
    ]
)
# What the shard writer hands the driver per shard: the name, the videos shard as
# Parquet bytes (the commit record the driver writes), and counts for run.json.
SHARD_SUMMARY = pa.schema(
    [("shard", pa.string()), ("videos_parquet", pa.binary()), ("stats", pa.string())]
)


def input_video_id(path: str) -> str:
    """The id a video will get, known before it is opened (for resume)."""
    try:
        size = os.path.getsize(path) if "://" not in path else -1
    except OSError:
        size = -1
    return video_id(path, size)


def analyze_one(
    path: str, caption: str | None, cfg: CurateConfig, motion: bool, captions=None, camera=None
) -> dict[str, Any]:
    """One video -> its flow row, clips nested. Never raises for a bad video.
    `captions`: timed caption spans (each clip takes the one it overlaps most); `camera`:
    the video's CameraPath, recorded on each of its clips."""
    from curate.analyze import analyze_video
    from curate.container import VideoError

    vid = input_video_id(path)
    video: dict[str, Any] = {"video_id": vid, "video_path": path, "num_clips": 0, "clips": []}
    t0 = time.perf_counter()
    try:
        work = (path, cfg, motion, captions)
        result = run_isolated(analyze_video, work, cfg.decode.timeout_s + 30)
    except VideoError as e:
        video.update(status="error", error=str(e), error_kind=e.kind)
    except ChildTimeout as e:
        video.update(status="error", error=f"timeout: {e}", error_kind="timeout")
    except ChildCrashed as e:
        video.update(status="error", error=f"crashed: {e}", error_kind="crashed")
    except Exception as e:  # a bug on one file must not stop the corpus; it is reported
        trace = getattr(e, "child_traceback", "")
        log.error("analysis of %s failed:\n%s", path, trace)
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        video.update(status="error", error=f"internal: {reason}", error_kind="internal")
    else:
        info = result.info
        video.update(
            size_bytes=info.size_bytes,
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
            num_frames=result.frames_decoded,
            rotation=info.rotation,
            has_audio=info.has_audio,
            is_vfr=info.is_vfr,
            status="ok",
            num_clips=len(result.clips),
        )
        for clip in result.clips:
            row = {k: v for k, v in clip.items() if k in CLIP_FLOW.names}
            text = clip.get("caption") if captions is not None else caption
            source = "sidecar_timed" if captions is not None else "sidecar"
            row.update(
                video_id=vid,
                video_path=path,
                clip_id=clip_id(vid, clip["start_frame"], clip["end_frame"]),
                caption=text,
                caption_source=source if text else None,
                camera_elevation_deg=camera.elevation_deg if camera else None,
                camera_azimuth_deg_per_s=camera.azimuth_deg_per_s if camera else None,
            )
            video["clips"].append(row)
    video["analysis_s"] = time.perf_counter() - t0
    return video


def analyze_batch(batch: pa.Table, cfg: CurateConfig, motion: bool) -> pa.Table:
    """Ray Data task: input rows (video_path, caption, caption_path, timed_captions)
    -> flow rows."""
    import ray

    from curate.container import use_storage_options

    use_storage_options(cfg.storage.options)
    node = ray.get_runtime_context().get_node_id()
    rows = []
    for r in batch.to_pylist():
        try:
            camera = read_camera(r.get("meta_path"))
        except CameraFileError as e:
            rows.append({**sidecar_error(r["video_path"], e, "metadata"), "analysis_node": node})
            continue
        caption, captions, sidecar = r["caption"], None, r.get("caption_path")
        if r.get("timed_captions") is not None:  # from a list file's start_s/end_s rows
            captions = [CaptionSpan(*span) for span in json.loads(r["timed_captions"])]
        elif caption is None and sidecar and sidecar.lower().endswith(TIMED_SUFFIXES):
            try:
                captions = read_timed_sidecar(sidecar)
            except CaptionFileError as e:
                rows.append({**sidecar_error(r["video_path"], e), "analysis_node": node})
                continue
            if captions is None:  # a metadata .json: the .txt beside it, if any
                caption = read_sidecar(os.path.splitext(sidecar)[0] + ".txt", quiet=True)
        elif caption is None and sidecar:
            caption = read_sidecar(sidecar)
        video = analyze_one(r["video_path"], caption, cfg, motion, captions, camera)
        rows.append({**video, "analysis_node": node})
    return pa.Table.from_pylist(rows, schema=FLOW_SCHEMA)


def read_timed_sidecar(uri: str) -> list | None:
    """The spans of a .srt/.vtt/.json sidecar; None for a .json that is not a list (a
    webdataset-style metadata file, not captions). Raises CaptionFileError."""
    text = storage.location(uri).read_bytes().decode(errors="replace")
    if uri.lower().endswith(".json") and not text.lstrip().startswith("["):
        return None
    return parse_timed(uri, text)


def sidecar_error(path: str, e: Exception, kind: str = "caption") -> dict[str, Any]:
    """The error row of a video whose timed captions (or metadata) are malformed."""
    return {
        "video_id": input_video_id(path),
        "video_path": path,
        "num_clips": 0,
        "clips": [],
        "status": "error",
        "error": f"{kind} file {e}",
        "error_kind": f"{kind}_file",
    }


def read_camera(uri: str | None) -> CameraPath | None:
    """The camera path in a video's KEY.json metadata, if it has one (raises
    CameraFileError for a malformed one; an unreadable file is logged and skipped)."""
    if not uri:
        return None
    try:
        text = storage.location(uri).read_bytes().decode(errors="replace")
    except Exception as e:
        log.warning("metadata file %s unreadable: %s", uri, e)
        return None
    return parse_camera(uri, text)


def read_sidecar(uri: str, quiet: bool = False) -> str | None:
    """A sidecar caption in object storage, read where the video is analysed (listing
    100,000 videos must not wait on 100,000 small reads). Unreadable: no caption."""
    try:
        text = storage.location(uri).read_bytes().decode(errors="replace").strip()
    except Exception as e:
        if not quiet:
            log.warning("sidecar caption %s unreadable: %s", uri, e)
        return None
    return text or None


def clip_rows(flow: pa.Table) -> pa.Table:
    """The nested clips of flow rows as one table (CLIP_FLOW columns)."""
    clips = flow["clips"].combine_chunks()
    return pa.Table.from_struct_array(clips.flatten())


def with_clip_rows(flow: pa.Table, clips: pa.Table) -> pa.Table:
    """`flow` with its nested clips replaced by `clips` (same rows, same order)."""
    old = flow["clips"].combine_chunks()
    offsets = pc.subtract(old.offsets, old.offsets[0])
    struct = pa.StructArray.from_arrays(
        [clips[c].combine_chunks() for c in CLIP_FLOW.names], fields=list(CLIP_FLOW)
    )
    nested = pa.ListArray.from_arrays(offsets, struct, type=FLOW_SCHEMA.field("clips").type)
    return flow.set_column(flow.schema.get_field_index("clips"), "clips", nested)


def _load_stage(name: str, cfg: CurateConfig):
    if name == "caption":
        from curate.caption import CaptionStage

        return CaptionStage(cfg.caption)
    if name == "clip":
        from curate.clip_score import ClipStage

        return ClipStage(cfg.clip)
    if name == "text":
        from curate.text_area import TextAreaStage

        return TextAreaStage(cfg.text)
    raise ValueError(f"unknown stage {name}")


class ModelStageActor:
    """Ray Data actor: loads one model stage once, then maps blocks of flow rows, the
    clips of a block in batches of `batch_size`."""

    def __init__(self, name: str, cfg: CurateConfig):
        self.name = name
        self.batch_size = getattr(cfg, name).batch_size
        self.inputs, self.outputs = STAGE_COLUMNS[name]
        # A model that cannot load will not load on a retry either: keep the error and
        # raise it from the first batch, where it fails the run once. Raised here, Ray
        # would restart the actor without end.
        self.stage, self.load_error = None, None
        try:
            self.stage = _load_stage(name, cfg)
        except Exception as e:
            logging.getLogger("lvd.curate").exception("%s stage failed to load", name)
            self.load_error = e

    def __call__(self, flow: pa.Table) -> pa.Table:
        if self.load_error is not None:
            raise self.load_error
        clips = clip_rows(flow)
        if clips.num_rows == 0:
            return flow
        t0 = time.perf_counter()
        values: dict[str, list] = {c: [] for c in self.outputs}
        for start in range(0, clips.num_rows, self.batch_size):
            part = clips.slice(start, self.batch_size)
            result = self.stage({c: part[c].to_pylist() for c in self.inputs})
            for c in self.outputs:
                values[c] += [_py(v) for v in result[c]]
        for c in self.outputs:
            index = clips.schema.get_field_index(c)
            clips = clips.set_column(index, c, pa.array(values[c], CLIP_FLOW.field(c).type))
        spent = (time.perf_counter() - t0) / clips.num_rows
        timing = f"{self.name}_s"
        clips = clips.set_column(
            clips.schema.get_field_index(timing),
            timing,
            pa.array([spent] * clips.num_rows, pa.float64()),
        )
        return with_clip_rows(flow, clips)


def write_clips_shard(flow: pa.Table, out: str) -> pa.Table:
    """Ray Data task, the last stage: write the clips shard of these whole videos to
    OUT/clips and hand the driver their videos shard to commit (SHARD_SUMMARY).

    The name is a hash of the video ids, so a retried task (its node died) writes the
    same file again rather than a second copy."""
    ids = sorted(flow["video_id"].to_pylist())
    name = "part-" + hashlib.sha1("\0".join(ids).encode()).hexdigest()[:16]
    clips = clip_rows(flow)
    storage.write_parquet(
        clips.select(CLIP_SCHEMA.names).cast(CLIP_SCHEMA),
        storage.location(out) / "clips" / f"{name}.parquet",
    )
    videos = io.BytesIO()
    pq.write_table(flow.select(VIDEO_SCHEMA.names).cast(VIDEO_SCHEMA), videos, compression="zstd")
    stage_s = {"analysis": float(pc.sum(flow["analysis_s"]).as_py() or 0.0)}
    for stage in STAGE_COLUMNS:
        stage_s[stage] = float(pc.sum(clips[f"{stage}_s"]).as_py() or 0.0)
    nodes = Counter(flow["analysis_node"].to_pylist())
    stats = json.dumps({"stage_s": stage_s, "nodes": nodes})
    return pa.table(
        {"shard": [name], "videos_parquet": [videos.getvalue()], "stats": [stats]},
        schema=SHARD_SUMMARY,
    )


class ShardWriter:
    """Ray Data actor: write_clips_shard in one long-lived worker process."""

    def __call__(self, flow: pa.Table, out: str) -> pa.Table:
        return write_clips_shard(flow, out)


def _py(v: Any) -> Any:
    """numpy scalars -> Python values; numpy arrays stay (Arrow converts them directly)."""
    if hasattr(v, "ndim") and v.ndim == 0:
        return v.item()
    return v
