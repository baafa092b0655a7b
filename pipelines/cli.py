"""The `lvd` command line: curate, filter, report, train, generate, export, demo.

Each subcommand's work lives in its own module, imported only when that subcommand
runs, so `lvd --help` answers at once. Every user-facing failure (bad argument, missing
path, bad config) ends as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from curate.container import use_storage_options
from model.config_dict import ConfigError
from pipelines.common import storage
from pipelines.common.console import quiet_console
from pipelines.common.errors import CommandFailed, UsageError
from pipelines.common.out_dir import local_folder, prepare_out

COMMANDS = {
    # name: (module that holds `run(args)`, one-line help)
    "curate": ("pipelines.curation.command", "analyse videos into clip shards (Ray Data)"),
    "filter": ("pipelines.selection.filter", "keep clips by score thresholds and percentile cuts"),
    "report": ("pipelines.selection.report", "draw an HTML report of a curated or filtered run"),
    "train": (
        "pipelines.training.command",
        "train the VAE and the video diffusion model on shards",
    ),
    "generate": ("pipelines.generation.command", "sample videos from a trained checkpoint"),
    "export": (
        "pipelines.export.command",
        "cut kept clips into mp4 files for other trainers (WebDataset, Open-Sora, CogVideoX)",
    ),
    "demo": ("pipelines.demo.command", "the whole job on a built-in synthetic corpus, on a CPU"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (and exit 2), not usage plus a message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _AppendRule(argparse.Action):
    """Collect filter rules as (op, 'COL=V') in command-line order: rules apply in order."""

    def __call__(self, parser, namespace, values, option_string=None):
        op = option_string.lstrip("-").replace("-", "_")
        namespace.rules = [*namespace.rules, (op, values)]


def _add_config_args(p: argparse.ArgumentParser, presets: str) -> None:
    p.add_argument("--preset", default="default", help=f"named config preset ({presets})")
    p.add_argument("--config", metavar="FILE", help="YAML or TOML file of config keys")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (repeatable), e.g. --set shots.min_clip_s=3",
    )
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")


def _add_verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose", action="store_true", help="show Ray's own messages (default: OUT/logs/)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lvd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lvd {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("curate", help=COMMANDS["curate"][1], description=COMMANDS["curate"][1])
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="video files, folders (recursive), globs, or a .txt/.csv/.parquet list",
    )
    p.add_argument("--out", help="run folder: videos/, clips/, run.json (required)")
    p.add_argument(
        "--stages",
        default="shots,motion,caption,clip,text",
        help="comma list of stages to run (shots always run)",
    )
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting one")
    p.add_argument("--num-cpus", type=int, help="CPUs for the local Ray")
    p.add_argument("--num-gpus", type=int, help="GPUs for the local Ray")
    p.add_argument("--limit", type=int, help="process at most this many new videos")
    _add_verbose_arg(p)
    _add_config_args(p, "default, tiny")

    p = sub.add_parser("filter", help=COMMANDS["filter"][1], description=COMMANDS["filter"][1])
    p.add_argument("input", metavar="IN", help="a curated (or filtered) run folder")
    p.add_argument("--out", required=True, help="folder for the kept clips and run.json")
    p.add_argument(
        "--ray-address",
        help="read and write the shards on Ray Data workers of this cluster ('local': a "
        "local Ray; default: in this process, or a local Ray for 64 shards or more)",
    )
    p.set_defaults(rules=[])
    for flag, meaning in (
        ("--min", "keep rows with COL >= V"),
        ("--max", "keep rows with COL <= V"),
        ("--drop-bottom", "drop the lowest FRACTION of COL (percentile cut)"),
        ("--drop-top", "drop the highest FRACTION of COL (percentile cut)"),
    ):
        p.add_argument(flag, action=_AppendRule, dest="rules", metavar="COL=V", help=meaning)
    p.add_argument(
        "--dedup",
        type=float,
        metavar="COSINE",
        help="drop near-duplicate clips whose clip_embedding cosine >= COSINE",
    )
    p.add_argument(
        "--dedup-method",
        choices=("semantic", "exact"),
        default="semantic",
        help="semantic: SemDeDup (k-means, then pairs within nearby clusters; 1M clips "
        "in minutes); exact: every pair (quadratic, for small sets and checks)",
    )
    p.add_argument(
        "--dedup-keep",
        default="aesthetic_score",
        metavar="COL",
        help="which clip of a duplicate group survives: the highest COL (default "
        "aesthetic_score; ties and missing scores: the earliest), or 'first'",
    )
    p.add_argument(
        "--dedup-clusters",
        type=int,
        default=0,
        metavar="K",
        help="k-means clusters for semantic dedup (default: one per 1,000 clips)",
    )
    p.add_argument(
        "--dedup-probes",
        type=int,
        default=8,
        metavar="P",
        help="each clip is compared with the clips of its P nearest clusters (default 8; "
        "1 is SemDeDup's hard assignment: faster, misses pairs across cluster borders)",
    )

    p = sub.add_parser("report", help=COMMANDS["report"][1], description=COMMANDS["report"][1])
    p.add_argument("input", metavar="DIR", help="a curated or filtered run folder")
    p.add_argument("--out", help="HTML file to write (default DIR/report.html)")

    p = sub.add_parser("train", help=COMMANDS["train"][1], description=COMMANDS["train"][1])
    p.add_argument("--data", help="a curated or filtered run folder")
    p.add_argument("--out", help="run folder for checkpoints and metrics (required)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--cache-latents",
        action="store_true",
        help="precompute samples, VAE latents and T5 embeddings (Ray Data), train from them",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="STEPS",
        help="stop after this many steps, with a checkpoint (continue later with --resume)",
    )
    p.add_argument("--ray-address", help="Ray cluster for --cache-latents (default: local)")
    _add_verbose_arg(p)
    _add_config_args(p, "tiny, small (default), base, large, xl")

    p = sub.add_parser(
        "generate", help=COMMANDS["generate"][1], description=COMMANDS["generate"][1]
    )
    p.add_argument(
        "prompts", nargs="*", metavar="PROMPT", help="text prompts (optional with --image)"
    )
    p.add_argument(
        "--ckpt", required=True, help="a training run folder or checkpoint (local or a URI)"
    )
    p.add_argument("--out", required=True, help="an .mp4 path (or a folder for many prompts)")
    p.add_argument("--prompts-file", help="a text file with one prompt per line")
    p.add_argument("--image", help="first frame (image-to-video)")
    p.add_argument("--last-image", help="last frame (interpolation, with --image)")
    p.add_argument(
        "--orbit",
        type=float,
        metavar="DEGREES",
        help="multi-view: orbit the object of --image by this many degrees over the video "
        "(negative: the other way; needs a model trained with the mv stage)",
    )
    p.add_argument(
        "--elevation",
        type=float,
        metavar="DEG",
        help="camera elevation of the orbit (default: the median the mv stage trained on)",
    )
    p.add_argument("--frames", type=int, help="number of frames")
    p.add_argument("--size", help="WIDTHxHEIGHT")
    p.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    p.add_argument(
        "--cfg", type=float, help="classifier-free guidance scale (default: the model's)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")

    p = sub.add_parser("export", help=COMMANDS["export"][1], description=COMMANDS["export"][1])
    p.add_argument("input", metavar="RUN", help="a curated or filtered run folder")
    p.add_argument(
        "--format",
        required=True,
        choices=("clips", "webdataset", "opensora", "cogvideox"),
        help="clips: mp4 files + clips.parquet; webdataset: tars of KEY.mp4/.json/.txt; "
        "opensora: mp4 files + Open-Sora's CSV; cogvideox: videos/ + prompts.txt, videos.txt",
    )
    p.add_argument("--out", required=True, help="destination folder (local or a URI)")
    p.add_argument("--max-clips", type=int, help="export at most this many clips")
    p.add_argument(
        "--shard-size", type=int, default=1000, help="clips per WebDataset tar (default 1000)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes cutting clips (default: one per CPU)",
    )
    p.add_argument(
        "--crf", type=int, default=12, help="libx264 quality of re-encoded clips (default 12)"
    )
    p.add_argument("--preset", default="veryfast", help="libx264 preset (default veryfast)")

    p = sub.add_parser("demo", help=COMMANDS["demo"][1], description=COMMANDS["demo"][1])
    p.add_argument("--out", default="runs/demo", help="folder for everything the demo makes")
    p.add_argument(
        "--preset",
        default="small",
        choices=("tiny", "small"),
        help="training preset: small learns the task (minutes); tiny only runs every step",
    )
    p.add_argument(
        "--task",
        default="text",
        choices=("text", "multiview"),
        help="text: text-to-video on moving shapes; multiview: orbits around objects "
        "from one image (SVD-MV)",
    )
    p.add_argument(
        "--videos-per-combo",
        type=int,
        help="corpus videos per colour/shape/direction combination (text, default 2) or "
        "per object (multiview, default 6)",
    )
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lvd")
    except Exception:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        if hasattr(args, "help_config"):  # commands with a typed config: curate, train
            if args.help_config:
                from pipelines.common.config_loader import describe

                print("\n".join(describe(module.CONFIG)))
                return 0
            if args.out is None:  # optional only so that --help-config needs none
                raise UsageError("the following argument is required: --out")
        if not hasattr(args, "verbose"):
            return int(module.run(args) or 0)
        if hasattr(module, "storage_options"):  # from config, needed to reach --out
            use_storage_options(module.storage_options(args))
        out = prepare_out(args.out)
        args.log_dir = local_folder(out) / "logs"
        started = time.time()
        try:
            with quiet_console(args.log_dir, args.verbose):
                return int(module.run(args) or 0)
        finally:
            if not storage.is_local(out) and args.log_dir.is_dir():
                storage.upload(args.log_dir, out / "logs", newer_than=started - 1)
    except (UsageError, ConfigError) as e:
        print(f"lvd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except CommandFailed as e:
        print(f"lvd {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lvd {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
