"""Progress bars for long work: on stderr, live on a terminal, sparse in a log file."""

from __future__ import annotations

import sys


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar on stderr. Redirected to a file (a batch job's log), it redraws every
    30 s instead of ten times a second, so a long run's log stays readable."""
    from tqdm import tqdm

    live = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.1 if live else 30.0)
    return tqdm(iterable, file=sys.stderr, dynamic_ncols=live, **kwargs)
