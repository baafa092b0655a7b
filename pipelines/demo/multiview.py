"""`lvd demo --task multiview`: orbits around objects from one image, on a CPU, in minutes.

    orbit corpus (boxes, prisms, pyramids with coloured faces; camera path in KEY.json)
    -> lvd curate (the camera path goes onto each clip) -> lvd report -> lvd train (VAE,
    then the video and mv stages) -> lvd generate --image VIEW --orbit +-360 for views of
    held-out objects -> judge each orbit from its pixels -> one HTML page.

Like the text demo, every step is the real command (pipelines.cli.main), and a rerun
reuses what is done. The last line is the result:
`lvd demo: multiview: rotation direction N%, loop closure N% (K objects)`.
"""

from __future__ import annotations

import html
import os
import sys
import time
from pathlib import Path

import numpy as np

from pipelines.common.errors import UsageError
from pipelines.demo.orbit_judge import judge_orbit
from pipelines.demo.orbits import HELD_OUT, caption, held_out_views, make_orbit_corpus
from pipelines.demo.steps import frame_strip, loss_curves, read_video, run_step, write_results
from pipelines.demo.vae_check import orbit_fidelity

FRAMES, SIZE = 9, 32
ORBIT = 360.0  # both directions; one full turn, so loop closure is judged on every video
SEEDS = (0, 1)  # sampling seeds per view and direction
# Steps per training stage: small learns the task; tiny only runs every step. The
# text-to-video preset's image and hq stages teach nothing an orbit needs (4 of 17 min).
TRAINING = {
    "small": ["vae.steps=1000", "image.steps=0", "video.steps=500", "hq.steps=0", "mv.steps=2000"],
    "tiny": ["mv.steps=2"],
}


def train_argv(out: Path, preset: str) -> list[str]:
    argv = ["train", "--preset", preset, "--data", str(out / "curated"), "--out"]
    argv += [str(out / "train"), "--cache-latents", "--set", "cache_windows=8"]
    argv += ["--set", "model.dit.camera_conditioning=true"]
    argv += [x for s in TRAINING[preset] for x in ("--set", s)]
    if (out / "train" / "checkpoints").is_dir():
        argv.append("--resume")
    return argv


def generate_orbits(out: Path, timings: dict) -> list[dict]:
    """One orbit per held-out view, direction and seed, each judged from its pixels."""
    views = held_out_views(out / "views", SIZE)
    generated = out / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    for old in generated.glob("*.mp4"):
        old.unlink()
    started = time.perf_counter()
    results = []
    for view in views:
        for degrees in (ORBIT, -ORBIT):
            for seed in SEEDS:
                name = f"{Path(view.image).stem}_{'ccw' if degrees > 0 else 'cw'}_s{seed}.mp4"
                path = generated / name
                argv = ["generate", caption(view.shape, view.scheme), "--ckpt"]
                argv += [str(out / "train"), "--image", view.image, "--orbit", str(degrees)]
                argv += ["--elevation", str(view.elevation_deg), "--frames", str(FRAMES)]
                argv += ["--size", f"{SIZE}x{SIZE}", "--seed", str(seed), "--out", str(path)]
                run_step(f"generate {name}", argv, {})
                frames = read_video(path)
                j = judge_orbit(frames, degrees)
                results.append(
                    {
                        "file": name, "shape": view.shape, "scheme": view.scheme,
                        "elevation_deg": view.elevation_deg, "orbit_deg": degrees,
                        "seed": seed, "judged_direction": j.direction,
                        "shift": round(j.shift, 4), "direction_ok": bool(j.direction == np.sign(degrees)),
                        "loop_closed": j.loop_closed, "frames": frames,
                    }
                )  # fmt: skip
    timings["generate"] = round(time.perf_counter() - started, 1)
    return results


def orbit_fidelity_line(fidelity: dict) -> str:
    return (
        f"the VAE kept the turn of {fidelity['direction']:.0%} of {fidelity['clips']} corpus orbits"
    )


def write_page(
    out: Path, results: list[dict], timings: dict, accuracy: dict, fidelity: dict
) -> Path:
    report = out / "curated" / "report.html"

    def mark(ok: bool) -> str:
        return f"<td class={'ok' if ok else 'bad'}>{'yes' if ok else 'no'}</td>"

    rows = "".join(
        f"<tr><td>{html.escape(r['shape'])} {r['scheme']}</td><td class=n>"
        f"{r['elevation_deg']:g}</td><td class=n>{r['orbit_deg']:+g}</td>"
        f"<td><img src='data:image/png;base64,{frame_strip(r['frames'])}'></td>"
        f"{mark(r['direction_ok'])}{mark(bool(r['loop_closed']))}</tr>"
        for r in results
    )
    steps = "".join(f"<tr><td>{k}</td><td class=n>{v:.0f} s</td></tr>" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lvd demo: multiview</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1300px;color:#222}}
td,th{{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}}.n{{text-align:right}}
.ok{{color:#1e7b34;font-weight:600}}.bad{{color:#b3261e;font-weight:600}}
img{{image-rendering:pixelated}}</style></head><body>
<h1>lvd demo: multiview</h1>
<p>A corpus of boxes, prisms and pyramids with coloured faces, each filmed by a camera
orbiting it (the path in a KEY.json sidecar), was curated and used to train a VAE, a
video DiT and then its multi-view stage (an orbit from its first frame, the camera path
as a condition) on this CPU. Below, each held-out object (a shape and colour scheme no
training video showed) was given as one image and orbited a full turn each way. Each
orbit was judged from its pixels: do the faces slide the asked way, and is the last
frame closer to the first than the half-way frame is?</p>
<h2>Held-out objects ({accuracy["objects"]}, {accuracy["videos"]} orbits)</h2>
<table><tr><th>rotation direction</th><td class=n>{accuracy["direction"]:.0%}</td></tr>
<tr><th>loop closure</th><td class=n>{accuracy["loop_closure"]:.0%}</td></tr></table>
<p>The DiT can only learn what its VAE reconstructs: {html.escape(orbit_fidelity_line(fidelity))}
(their start, at the DiT's frames, rate and size, judged like the orbits below).</p>
<h2>Curation</h2><p><a href="{os.path.relpath(report, out)}">The curation report</a>.</p>
<h2>Training</h2><img src="data:image/png;base64,{loss_curves(out / "train")}">
<h2>Generated orbits</h2>
<table><tr><th>object</th><th>elevation</th><th>degrees</th><th>frames</th>
<th>direction</th><th>loop</th></tr>{rows}</table>
<h2>Time per step</h2><table>{steps}</table></body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path


def run(args) -> int:
    if args.preset not in TRAINING:
        raise UsageError(f"--preset must be one of {sorted(TRAINING)}, got {args.preset!r}")
    per_object = args.videos_per_combo or 6
    if per_object < 1:
        raise UsageError(f"--videos-per-combo must be >= 1, got {per_object}")
    out = Path(args.out).resolve()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    corpus = out / "corpus"
    if not (corpus / "manifest.json").is_file():
        t = time.perf_counter()
        make_orbit_corpus(corpus, videos_per_object=per_object)
        timings["corpus"] = round(time.perf_counter() - t, 1)
    cpus = str(min(2, os.cpu_count() or 1))
    curate = ["curate", str(corpus), "--out", str(out / "curated"), "--preset", "tiny"]
    run_step("curate", [*curate, "--num-cpus", cpus], timings)
    import ray

    ray.shutdown()  # free the workers' memory before training
    run_step("report", ["report", str(out / "curated")], timings)
    run_step("train", train_argv(out, args.preset), timings)
    t = time.perf_counter()
    fidelity = orbit_fidelity(out / "train", corpus)
    timings["vae check"] = round(time.perf_counter() - t, 1)
    print(f"lvd demo: {orbit_fidelity_line(fidelity)}", file=sys.stderr)
    results = generate_orbits(out, timings)
    accuracy = {
        "direction": float(np.mean([r["direction_ok"] for r in results])),
        "loop_closure": float(np.mean([bool(r["loop_closed"]) for r in results])),
        "objects": len(HELD_OUT),
        "videos": len(results),
    }
    timings["total"] = round(time.perf_counter() - started, 1)
    page = write_page(out, results, timings, accuracy, fidelity)
    write_results(
        out,
        {"task": "multiview", "timings_s": timings, "accuracy": accuracy, "vae_fidelity": fidelity},
        results,
        page,
        timings["total"],
    )
    print(
        f"lvd demo: multiview: rotation direction {accuracy['direction']:.0%}, "
        f"loop closure {accuracy['loop_closure']:.0%} ({accuracy['objects']} objects)"
    )
    return 0
