"""The text demo's result page (OUT/index.html): accuracy by kind of held-out prompt,
the curation report, each training stage (its rules, clip count, loss curve and the
samples it wrote when it ended), every generated video under its prompt, step times."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from pipelines.demo.steps import frame_strip, loss_curves, read_video
from pipelines.demo.vae_check import fidelity_line

KINDS = {
    "pair": "(colour, direction) pairs no training clip shows together",
    "triple": "(colour, shape, direction) triples whose pairs all appear in training",
}
STAGE_ROLES = {
    "vae": "the autoencoder (samples: clip | reconstruction)",
    "image": "the DiT on single frames",
    "video": "the DiT on the filtered clips",
    "hq": "the DiT on a stricter cut",
}

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1300px;color:#222}
td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.n{text-align:right}.ok{color:#1e7b34;font-weight:600}.bad{color:#b3261e;font-weight:600}
img{image-rendering:pixelated}"""


def _strip(path: Path) -> str:
    return f"<img src='data:image/png;base64,{frame_strip(read_video(path))}'>"


def last_samples(train: Path, stage: str) -> list[tuple[str, Path]]:
    """(prompt or file name, video) of the samples the stage wrote last."""
    folders = sorted((train / "samples").glob(f"{stage}-step-*"))
    if not folders:
        return []
    prompts_file = folders[-1] / "prompts.txt"
    prompts = dict(
        line.split("\t", 1) for line in prompts_file.read_text().splitlines() if "\t" in line
    ) if prompts_file.is_file() else {}  # fmt: skip
    return [(prompts.get(v.name, v.name), v) for v in sorted(folders[-1].glob("*.mp4"))]


def stages_section(train: Path) -> str:
    """One row per stage that ran: what it trained on and what it made."""
    info = json.loads((train / "run.json").read_text())
    counts = info.get("stage_clips", {})
    rows = []
    for name, role in STAGE_ROLES.items():
        stage = info["config"][name]
        if not stage["steps"]:
            continue
        rules = ", ".join(stage["rules"]) or "none"
        samples = "<br>".join(
            f"{html.escape(prompt)}<br>{_strip(path)}" for prompt, path in last_samples(train, name)
        )
        rows.append(
            f"<tr><td><b>{name}</b>: {role}</td><td class=n>{stage['steps']}</td>"
            f"<td class=n>{counts.get(name, {}).get('clips', '?')}</td>"
            f"<td>{html.escape(rules)}</td><td>{samples}</td></tr>"
        )
    return (
        "<table><tr><th>stage</th><th>steps</th><th>clips after its rules</th>"
        f"<th>rules</th><th>samples at its end</th></tr>{''.join(rows)}</table>"
        f"<p>Loss of each stage:</p><img src='data:image/png;base64,{loss_curves(train)}'>"
    )


def write_page(
    out: Path, results: list[dict], timings: dict, accuracy: dict, fidelity: dict
) -> Path:
    report = os.path.relpath(out / "filtered" / "report.html", out)
    rows = "".join(
        f"<tr><td>{html.escape(r['prompt'])}</td><td>{r['held_out']}</td>"
        f"<td><img src='data:image/png;base64,{frame_strip(r['frames'])}'></td>"
        f"<td class={'ok' if r['colour_ok'] else 'bad'}>{r['judged_colour']}</td>"
        f"<td class={'ok' if r['direction_ok'] else 'bad'}>{r['judged_direction']}</td></tr>"
        for r in results
    )
    scores = "".join(
        f"<tr><td>{KINDS[kind]}</td><td class=n>{a['colour']:.0%}</td>"
        f"<td class=n>{a['direction']:.0%}</td><td class=n>{a['videos']}</td></tr>"
        for kind, a in accuracy.items()
    )
    steps = "".join(f"<tr><td>{k}</td><td class=n>{v:.0f} s</td></tr>" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lvd demo</title>
<style>{STYLE}</style></head><body>
<h1>lvd demo</h1>
<p>A corpus of coloured shapes moving in named directions was curated (shots, motion,
tiny captioner/CLIP/OCR scorers; sidecar captions kept), filtered, and used to train a
VAE and a DiT in three stages (images, video, a high-quality cut) on this CPU. The
prompts below were never in training: whole colour/direction pairs no clip showed
together, and colour/shape/direction triples whose pairs all appeared. Each generated
video was judged from its pixels.</p>
<h2>Accuracy on held-out prompts</h2>
<table><tr><th>held out</th><th>colour</th><th>direction</th><th>videos</th></tr>{scores}</table>
<p>The DiT can only learn what its VAE reconstructs: {html.escape(fidelity_line(fidelity))}
(first shot of each moving corpus video, judged the same way).</p>
<h2>Curation</h2><p><a href="{report}">The curation report</a>
(score histograms, filter counts, keyframes with captions), also shown here:</p>
<iframe src="{report}" style="width:100%;height:560px;border:1px solid #ddd"></iframe>
<h2>Training stages</h2>{stages_section(out / "train")}
<h2>Generated videos</h2>
<table><tr><th>prompt</th><th>held out</th><th>frames</th><th>colour</th><th>direction</th></tr>
{rows}</table>
<h2>Time per step</h2><table>{steps}</table></body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path
