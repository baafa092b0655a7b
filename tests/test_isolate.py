"""The analysis helper process: answers, errors, time limits and crashes."""

import os
import time

import pytest

from curate.container import VideoError
from pipelines.curation.isolate import ChildCrashed, ChildTimeout, IsolatedRunner


def add(a, b):
    return a + b


def pid():
    return os.getpid()


def fail_with_video_error():
    raise VideoError("empty", "file is empty: x.mp4")


def sleep(seconds):
    time.sleep(seconds)
    return "woke"


def die():
    os._exit(3)


def segfault():
    import ctypes

    ctypes.string_at(0)


@pytest.fixture
def runner():
    r = IsolatedRunner()
    yield r
    r.stop()


def test_runs_calls_in_another_process(runner):
    assert runner.run(add, (2, 3), 60) == 5
    assert runner.run(pid, (), 60) != os.getpid()


def test_errors_come_back_typed_with_the_child_trace(runner):
    with pytest.raises(VideoError) as e:
        runner.run(fail_with_video_error, (), 60)
    assert e.value.kind == "empty" and "fail_with_video_error" in e.value.child_traceback


def test_time_limit_kills_and_the_next_call_works(runner):
    runner.run(add, (1, 1), 60)  # started
    t = time.monotonic()
    with pytest.raises(ChildTimeout):
        runner.run(sleep, (30,), 0.5)
    assert time.monotonic() - t < 5
    assert runner.run(add, (1, 2), 60) == 3


@pytest.mark.parametrize("crash", [die, segfault])
def test_a_crash_is_reported_and_survived(runner, crash):
    with pytest.raises(ChildCrashed, match="exit code"):
        runner.run(crash, (), 60)
    assert runner.run(add, (2, 2), 60) == 4


def test_helper_is_reused_between_calls(runner):
    assert runner.run(pid, (), 60) == runner.run(pid, (), 60)
