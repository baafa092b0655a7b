"""Ray Data adapters around the curate/ stages; the only place they meet Arrow and Ray.

Rows in flight share one schema (FLOW_SCHEMA): each video yields one row with
row_kind='video' (its metadata, status and clip count) and one row per clip with
row_kind='clip'. The analysis is a CPU task per video; the model stages are actor
pools that see the clip rows of a batch and pass video rows through untouched.
Only keyframe bytes travel through the object store, never decoded video.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.config import CurateConfig
from curate.ids import clip_id, video_id
from pipelines.common.shards import CLIP_SCHEMA, VIDEO_SCHEMA
from pipelines.curation.isolate import ChildCrashed, ChildTimeout, run_isolated

log = logging.getLogger("lvd.curate")

# Columns each model stage reads and adds (see curate/caption.py, clip_score.py, text_area.py).
STAGE_COLUMNS = {
    "caption": (["keyframes", "caption", "caption_source"], ["caption", "caption_source"]),
    "clip": (["keyframes", "caption"], ["clip_embedding", "aesthetic_score", "text_score"]),
    "text": (["keyframes"], ["text_area"]),
}

_extra = [f for f in VIDEO_SCHEMA if f.name not in CLIP_SCHEMA.names]
_timing = [pa.field(f"{name}_s", pa.float64()) for name in STAGE_COLUMNS]  # per clip row
FLOW_SCHEMA = pa.schema([pa.field("row_kind", pa.string()), *CLIP_SCHEMA, *_extra, *_timing])


def input_video_id(path: str) -> str:
    """The id a video will get, known before it is opened (for resume)."""
    try:
        size = os.path.getsize(path) if "://" not in path else -1
    except OSError:
        size = -1
    return video_id(path, size)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=FLOW_SCHEMA)


def analyze_one(path: str, caption: str | None, cfg: CurateConfig, motion: bool) -> pa.Table:
    """One video -> its video row and clip rows. Never raises for a bad video."""
    from curate.analyze import analyze_video
    from curate.container import VideoError

    vid = input_video_id(path)
    video: dict[str, Any] = {
        "row_kind": "video",
        "video_id": vid,
        "video_path": path,
        "num_clips": 0,
    }
    t0 = time.perf_counter()
    try:
        result = run_isolated(analyze_video, (path, cfg, motion), cfg.decode.timeout_s + 30)
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
    video["analysis_s"] = time.perf_counter() - t0
    rows = [video]
    if video["status"] == "ok":
        for clip in result.clips:
            row = {k: v for k, v in clip.items() if k in FLOW_SCHEMA.names}
            row.update(
                row_kind="clip",
                video_id=vid,
                video_path=path,
                clip_id=clip_id(vid, clip["start_frame"], clip["end_frame"]),
                caption=caption,
                caption_source="sidecar" if caption else None,
            )
            rows.append(row)
    return _table(rows)


def analyze_batch(batch: pa.Table, cfg: CurateConfig, motion: bool) -> pa.Table:
    """Ray Data task: a batch of input rows (video_path, caption) -> flow rows."""
    tables = [analyze_one(r["video_path"], r["caption"], cfg, motion) for r in batch.to_pylist()]
    return pa.concat_tables(tables)


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
    """Ray Data actor: loads one model stage once, then maps batches of flow rows."""

    def __init__(self, name: str, cfg: CurateConfig):
        self.name = name
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

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.load_error is not None:
            raise self.load_error
        is_clip = pc.equal(table["row_kind"], "clip")
        clips = table.filter(is_clip)
        if clips.num_rows == 0:
            return table
        t0 = time.perf_counter()
        others = table.filter(pc.invert(is_clip))
        batch = {c: clips[c].to_pylist() for c in self.inputs}
        result = self.stage(batch)
        for c in self.outputs:
            values = [_py(v) for v in result[c]]
            clips = clips.set_column(
                clips.schema.get_field_index(c), c, pa.array(values, FLOW_SCHEMA.field(c).type)
            )
        spent = (time.perf_counter() - t0) / clips.num_rows
        timing = f"{self.name}_s"
        clips = clips.set_column(
            clips.schema.get_field_index(timing),
            timing,
            pa.array([spent] * clips.num_rows, pa.float64()),
        )
        return pa.concat_tables([others, clips])


def _py(v: Any) -> Any:
    """numpy scalars -> Python values; numpy arrays stay (Arrow converts them directly)."""
    if hasattr(v, "ndim") and v.ndim == 0:
        return v.item()
    return v
