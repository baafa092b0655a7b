"""Curating from and to object storage against local disk: the same corpus, the same
command, `lvd curate --stages shots,motion`, once local disk -> local disk and once
S3 -> S3, interleaved, on a local S3-protocol server (moto's, started here, as the tests
do; a real store adds its network's latency, which reads in 8 MiB blocks amortise).

    python -m benchmarks.storage [--videos 200] [--seconds 4] [--size 320x180] [--repeats 2]

Prints each run's wall time and the ratio S3 / local (issue 14's target: <= 1.3x).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.encode import write_video  # noqa: E402


def make_corpus(folder: Path, videos: int, seconds: float, width: int, height: int) -> None:
    """Short videos of two shots each (a smooth random texture, still then panning)."""
    import cv2

    rng = np.random.default_rng(0)
    fps = 24
    n = int(seconds * fps / 2)
    for v in range(videos):
        frames = []
        for speed in (0, 3):
            tex = cv2.resize((rng.random((height // 8, width // 4, 3)) * 255).astype(np.uint8),
                             (width * 2, height), interpolation=cv2.INTER_CUBIC)  # fmt: skip
            frames += [tex[:, i * speed : i * speed + width] for i in range(n)]
        write_video(folder / f"v{v:04d}.mp4", frames, fps, crf=23)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curate(inputs: list[str], out: str, env: dict, *extra: str) -> float:
    """Wall seconds of `lvd curate INPUTS --out OUT --stages shots,motion EXTRA...`."""
    cmd = [sys.executable, "-m", "pipelines.cli", "curate", *inputs, "--out", out]
    cmd += ["--stages", "shots,motion", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lvd curate failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="lvd-storage-bench-"))
    corpus = tmp / "raw"
    corpus.mkdir()
    make_corpus(corpus, args.videos, args.seconds, width, height)

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
    import boto3
    import fsspec

    boto3.client("s3").create_bucket(Bucket="bench")
    fs = fsspec.filesystem("s3")
    for p in sorted(corpus.iterdir()):
        fs.put_file(str(p), f"bench/raw/{p.name}")
    print(
        f"corpus: {args.videos} videos of {args.seconds:g} s at {args.size}, on disk and in s3://bench/raw"
    )
    local, remote = [], []
    for k in range(args.repeats):  # interleaved: the machine is shared
        local.append(curate([str(corpus)], str(tmp / f"out-{k}"), env))
        remote.append(curate(["s3://bench/raw"], f"s3://bench/runs/r{k}", env))
        print(f"  run {k}: local -> local {local[-1]:.1f} s, s3 -> s3 {remote[-1]:.1f} s")
    server.stop()
    print(f"best of {args.repeats}: local {min(local):.1f} s, s3 {min(remote):.1f} s, "
          f"s3 / local = {min(remote) / min(local):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
