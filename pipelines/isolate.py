"""Run one video's analysis in a child process with a hard time limit.

FFmpeg can hang inside a single call on a hostile file, and a crash in native code
takes its process with it; neither may take the worker pool down. Each video is
analysed in a child forked from a forkserver that has already imported the analysis
code (so a fork costs milliseconds, and the forkserver is single-threaded, which makes
forking safe even inside a multi-threaded Ray worker). The parent waits with a deadline
and kills the child when it passes.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
from typing import Any

_PRELOAD = ["curate.analyze"]
_context: mp.context.BaseContext | None = None


class ChildTimeout(Exception):
    pass


class ChildCrashed(Exception):
    pass


def _ctx() -> mp.context.BaseContext:
    global _context
    if _context is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _context = ctx
    return _context


def _child(conn, fn, args) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # the parent re-raises it; nothing may escape a child
        conn.send(("raised", (e, traceback.format_exc())))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., Any], args: tuple, timeout_s: float) -> Any:
    """`fn(*args)` in a child; its exception is re-raised here, with the child's trace.

    Raises ChildTimeout past `timeout_s` and ChildCrashed when the child dies without
    an answer (a segfault in a decoder, the OOM killer).
    """
    ctx = _ctx()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise ChildTimeout(f"analysis passed its {timeout_s:g} s limit")
        try:
            status, payload = parent.recv()
        except EOFError:
            proc.join(5)
            raise ChildCrashed(f"analysis process died (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status == "raised":
        error, trace = payload
        error.child_traceback = trace
        raise error
    return payload
