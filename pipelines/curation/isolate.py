"""Run one video's analysis in a separate process with a hard time limit.

FFmpeg can hang inside a single call on a hostile file, and a crash in native code
takes its process with it; neither may take a Ray worker down. Each worker keeps one
helper process (`python -m pipelines.curation.isolate`) that has imported the analysis code
once and answers requests over pipes. The worker waits for each answer with a deadline;
past it, or when the helper dies, the helper is killed and a fresh one is started for
the next video. The helper is recycled every `RECYCLE_AFTER` calls so a slow leak in a
native library cannot grow without bound.

(multiprocessing's forkserver would do, but under Python 3.11 every child re-imports
the parent's __main__, which inside a Ray worker is Ray's worker script: ~0.3 s a video.)
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

RECYCLE_AFTER = 200
_HEADER = struct.Struct("<Q")


class ChildTimeout(Exception):
    pass


class ChildCrashed(Exception):
    pass


def _write(f, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HEADER.pack(len(data)) + data)
    f.flush()


def _read_exact(fd: int, n: int, deadline_s: float | None) -> bytes | None:
    """n bytes from fd, or None at EOF; raises ChildTimeout when the deadline passes."""
    import time

    chunks, got = [], 0
    end = None if deadline_s is None else time.monotonic() + deadline_s
    while got < n:
        if end is not None:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ChildTimeout("no answer in time")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class IsolatedRunner:
    """A helper process that runs `fn(*args)` calls one at a time."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.calls = 0

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.curation.isolate"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.calls = 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                f.close()
            self.proc = None

    def run(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> Any:
        """`fn(*args)` in the helper; its exception is re-raised here with its trace.

        Raises ChildTimeout past `timeout_s` (the first call also covers start-up) and
        ChildCrashed when the helper dies without answering.
        """
        if self.proc is None or self.proc.poll() is not None or self.calls >= RECYCLE_AFTER:
            self.stop()
            self._start()
        self.calls += 1
        try:
            _write(self.proc.stdin, (fn, args))
            fd = self.proc.stdout.fileno()
            header = _read_exact(fd, _HEADER.size, timeout_s)
            payload = None if header is None else _read_exact(fd, _HEADER.unpack(header)[0], None)
        except ChildTimeout:
            self.stop()
            raise ChildTimeout(f"analysis passed its {timeout_s:g} s limit") from None
        except BrokenPipeError:
            payload = None
        if payload is None:
            code = self.proc.wait()
            self.stop()
            raise ChildCrashed(f"analysis process died (exit code {code})")
        status, value = pickle.loads(payload)
        if status == "raised":
            error, trace = value
            error.child_traceback = trace
            raise error
        return value


_runner: IsolatedRunner | None = None


def run_isolated(fn: Callable[..., Any], args: tuple, timeout_s: float) -> Any:
    """`fn(*args)` in this process's helper (started on first use)."""
    global _runner
    if _runner is None:
        _runner = IsolatedRunner()
    return _runner.run(fn, args, timeout_s)


def _serve() -> None:
    """The helper: answer length-prefixed pickled calls on stdin until EOF."""
    # Keep the protocol's stdout private: anything a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer.fileno()
    import curate.analyze  # noqa: F401  (imported once, before the first video)

    while True:
        header = _read_exact(stdin, _HEADER.size, None)
        if header is None:
            return
        fn, args = pickle.loads(_read_exact(stdin, _HEADER.unpack(header)[0], None))
        try:
            answer = ("ok", fn(*args))
        except Exception as e:
            answer = ("raised", (e, traceback.format_exc()))
        try:
            _write(out, answer)
        except Exception as e:  # an unpicklable result or exception: say what it was
            _write(
                out, ("raised", (RuntimeError(f"{type(e).__name__}: {e}"), traceback.format_exc()))
            )


if __name__ == "__main__":
    _serve()
