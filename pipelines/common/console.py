"""A quiet console: Ray's messages and its workers' logs go to OUT/logs/, not the terminal.

Ray writes to the process's stderr from native code (its core worker's log lines) and
from the processes it starts (raylet, workers), which inherit that file descriptor, so
filtering Python loggers is not enough. While a command runs quietly, file descriptor 2
points at OUT/logs/stderr.log, and Python's own `sys.stderr` (lvd's lines, the progress
bars, a traceback) keeps the terminal through a duplicate of the original descriptor.
The workers' logs of a local Ray are copied into OUT/logs/workers/ when it is done.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
from pathlib import Path

RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune")
RAY_LOG = "stderr.log"  # what native code and child processes write to stderr
_active: logging.Handler | None = None  # the quiet console's log file, while one is on


def is_quiet() -> bool:
    return _active is not None


def route_ray_loggers() -> None:
    """Ray's Python loggers (configured when Ray starts) write to the log file only."""
    if _active is None:
        return
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if h is not _active and "File" not in type(h).__name__:
                logger.removeHandler(h)
        if _active not in logger.handlers:
            logger.addHandler(_active)


@contextlib.contextmanager
def quiet_console(log_dir: Path, verbose: bool = False):
    """Inside: native and child-process stderr go to log_dir/stderr.log (unless verbose)."""
    if verbose:
        yield
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    with open(log_dir / RAY_LOG, "ab") as log:
        os.dup2(log.fileno(), 2)
    previous = sys.stderr
    if _writes_to_fd2(previous):  # else it writes elsewhere already (a test's capture)
        sys.stderr = io.TextIOWrapper(
            os.fdopen(os.dup(terminal), "wb", buffering=0), write_through=True, errors="replace"
        )
    global _active
    outer, _active = _active, logging.FileHandler(log_dir / RAY_LOG)
    route_ray_loggers()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        if sys.stderr is not previous:
            sys.stderr.close()  # the duplicate descriptor it wrote to
        sys.stderr = previous
        for name in RAY_LOGGERS:
            logging.getLogger(name).removeHandler(_active)
        _active.close()
        _active = outer


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def copy_worker_logs(log_dir: Path) -> Path | None:
    """The local Ray session's log files into log_dir/workers (a cluster's stay on its
    nodes); returns that folder, or None when there is no local session."""
    try:
        import ray

        node = ray._private.worker._global_node
        source = Path(node.get_logs_dir_path()) if node is not None else None
    except Exception:  # no Ray session here (a cluster client, or Ray not started)
        return None
    if source is None or not source.is_dir():
        return None
    target = log_dir / "workers"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*"):
        if path.is_file() and path.suffix in (".err", ".out", ".log"):
            shutil.copy2(path, target / path.name)
    return target
