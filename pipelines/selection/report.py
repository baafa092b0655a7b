"""`lvd report DIR`: one self-contained HTML page about a curated or filtered run.

Counts per video status and error kind, the rows each filter rule removed, a histogram
of every score (matplotlib, embedded as PNG with the rule thresholds drawn on it) and a
grid of middle keyframes with their captions and scores, and after `lvd filter --dedup`
the largest duplicate groups side by side (kept and dropped clips). Everything is inlined, so the
file can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import collections
import html
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.common import shards, storage
from pipelines.common.errors import UsageError
from pipelines.common.run_json import read_run_json

SCORES = ("motion_score", "motion_p90", "aesthetic_score", "text_score", "text_area", "duration_s")
THUMBNAILS = 48
DUPLICATE_GROUPS = 6

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.hists{display:flex;flex-wrap:wrap;gap:8px}.hists img{width:330px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px;font-size:12px}
.card img{width:100%;border-radius:4px}.cap{margin:4px 0;font-style:italic}
.sc{color:#555}
"""


def histogram_png(name: str, values: np.ndarray, lines: list[tuple[str, float]]) -> str:
    """A histogram as a base64 PNG; `lines` are (label, x) thresholds to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.4, 2.8), dpi=90)
    finite = values[np.isfinite(values)]
    if finite.size:
        ax.hist(finite, bins=min(40, max(5, finite.size // 3)), color="#4a7bb7")
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    for label, x in lines:
        ax.axvline(x, color="#c0392b", linestyle="--", linewidth=1.2)
        ax.text(x, ax.get_ylim()[1] * 0.95, f" {label}", color="#c0392b", fontsize=7, va="top")
    missing = values.size - finite.size
    ax.set_title(
        f"{name}  (n={finite.size}" + (f", {missing} missing)" if missing else ")"), fontsize=9
    )
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table_html(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v}</td>'
            if isinstance(v, (int, float))
            else f"<td>{html.escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(row: dict, label: str = "") -> str:
    frames = row.get("keyframes") or []
    img = ""
    if frames:
        data = frames[len(frames) // 2]
        mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        img = f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}">'
    scores = " · ".join(
        f"{k.replace('_score', '')} {row[k]:.3g}"
        for k in ("motion_score", "aesthetic_score", "text_score", "text_area")
        if row.get(k) is not None and np.isfinite(row[k])
    )
    span = f"{row['start_s']:.1f}-{row['end_s']:.1f}s"
    name = Path(row.get("video_path") or "").name
    head = f'<div class="sc"><b>{html.escape(label)}</b></div>' if label else ""
    return (
        f'<div class="card">{head}{img}<div class="cap">{html.escape(row.get("caption") or "")}'
        f'</div><div class="sc">{html.escape(scores)}</div>'
        f'<div class="sc">{html.escape(name)} {span}</div></div>'
    )


def _thumbnail_cards(clips: pa.Table) -> str:
    n = clips.num_rows
    if n == 0 or "keyframes" not in clips.column_names:
        return "<p>no clips</p>"
    picks = np.unique(np.linspace(0, n - 1, min(THUMBNAILS, n)).round().astype(int))
    cards = [_card(clips.slice(int(i), 1).to_pylist()[0]) for i in picks]
    return f'<div class="grid">{"".join(cards)}</div>'


def _duplicate_groups(folder: Path, info: dict) -> str:
    """The largest duplicate groups `lvd filter --dedup` found, each clip beside the one
    kept for it (keyframes from the filter's input, where the dropped clips still are)."""
    path = folder / "duplicates" / "part-00000.parquet"
    source = storage.location(info.get("input", ""))
    if not path.is_file() or not (source / "clips").is_dir():
        return ""
    groups = storage.read_parquet(path)
    if groups.num_rows == 0:
        return "<h2>Duplicate groups</h2><p>none found</p>"
    sizes = collections.Counter(groups["group_id"].to_pylist())
    shown = [g for g, _ in sizes.most_common(DUPLICATE_GROUPS)]
    members = groups.filter(pc.is_in(groups["group_id"], pa.array(shown, pa.int64())))
    ids = members["clip_id"].to_pylist()
    picked = [
        storage.read_parquet(f, filters=[("clip_id", "in", ids)]) for f in shards.clip_files(source)
    ]
    rows = pa.concat_tables(picked).to_pylist() if picked else []
    by_id = {r["clip_id"]: r for r in rows}
    parts = [f"<h2>Duplicate groups ({len(sizes)}; the {len(shown)} largest)</h2>"]
    for g in shown:
        cards = [
            _card(by_id[m["clip_id"]], "kept" if m["kept"] else "dropped")
            for m in members.filter(pc.equal(members["group_id"], g)).to_pylist()
            if m["clip_id"] in by_id
        ]
        parts.append(f'<div class="grid">{"".join(cards)}</div><br>')
    return "".join(parts)


def build_report(folder: Path) -> str:
    info = read_run_json(folder)
    videos = shards.read_table(folder / "videos")
    clips = shards.read_table(folder / "clips")
    parts = [f"<h1>lvd report: {html.escape(str(folder))}</h1>"]

    status = collections.Counter(videos["status"].to_pylist()) if videos.num_rows else {}
    kinds = (
        collections.Counter(k for k in videos["error_kind"].to_pylist() if k)
        if videos.num_rows
        else {}
    )
    rows = [
        ("videos", videos.num_rows),
        *((f"status {k}", v) for k, v in sorted(status.items())),
        *((f"error: {k}", v) for k, v in sorted(kinds.items())),
        ("clips", clips.num_rows),
    ]
    parts += ["<h2>Counts</h2>", _table_html(rows, ("what", "count"))]

    rules = info.get("rules", [])
    if rules:
        rows = [(r["rule"], f"{r.get('threshold', r['value']):.4g}", r["removed"]) for r in rules]
        rows.append(("kept", "", info.get("clips_kept", clips.num_rows)))
        parts += [
            f"<h2>Filter rules ({info.get('clips_in', '?')} clips in)</h2>",
            _table_html(rows, ("rule", "threshold", "rows removed")),
        ]

    hists = []
    for name in SCORES:
        if name == "duration_s" and {"start_s", "end_s"} <= set(clips.column_names):
            values = clips["end_s"].to_numpy(zero_copy_only=False) - clips["start_s"].to_numpy(
                zero_copy_only=False
            )
        elif name in clips.column_names:
            values = clips[name].to_numpy(zero_copy_only=False)
        else:
            continue
        values = np.asarray(values, dtype=np.float64)
        lines = [
            (r["rule"].split()[0], r["threshold"])
            for r in rules
            if r.get("column") == name and "threshold" in r
        ]
        hists.append(
            f'<img alt="{name}" src="data:image/png;base64,{histogram_png(name, values, lines)}">'
        )
    parts += ["<h2>Scores</h2>", f'<div class="hists">{"".join(hists)}</div>']

    parts.append(_duplicate_groups(folder, info))
    parts += [f"<h2>Clips (up to {THUMBNAILS}, evenly spaced)</h2>", _thumbnail_cards(clips)]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lvd report</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def run(args) -> int:
    folder = storage.location(args.input, "DIR")
    storage.check_readable(folder, "DIR")
    if not (folder / "clips").is_dir() and not (folder / "videos").is_dir():
        raise UsageError(f"{folder} is not a curated or filtered run folder")
    out = storage.location(args.out, "--out") if args.out else folder / "report.html"
    storage.check_writable(out.parent)
    if storage.is_local(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    storage.write_bytes(out, build_report(folder).encode())
    print(f"lvd report: wrote {out}", file=sys.stderr)
    return 0
