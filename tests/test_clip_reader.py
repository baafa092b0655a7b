"""Reading a clip's span at chosen times: the right frames, without decoding the rest."""

import numpy as np
import pytest

from curate.clip_reader import read_frames_at
from curate.encode import write_video


def numbered_frames(n, h=48, w=64):
    """Frame i shows a bar whose x position encodes i (robust to compression)."""
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, (i % w) : (i % w) + 1] = 255
        img[: h // 2, :, 1] = (i // w) * 60  # second digit in green
        yield img


def frame_number(img, w=64):
    x = int(np.argmax(img[:, :, 0].astype(float).mean(axis=0)))
    high = round(img[: img.shape[0] // 2, :, 1].astype(float).mean() / 60)
    return high * w + x


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("cr") / "numbered.mp4"
    write_video(path, numbered_frames(240), fps=24, crf=10, gop=48)
    return path


@pytest.mark.parametrize("start", [0, 50, 100, 190])
def test_frames_at_times_match_their_numbers(video, start):
    times = [(start + 3 * k) / 24 for k in range(9)]
    frames = read_frames_at(video, times)
    assert frames.shape == (9, 48, 64, 3)
    assert [frame_number(f) for f in frames] == [start + 3 * k for k in range(9)]


def test_times_between_frames_take_the_frame_on_screen(video):
    frames = read_frames_at(video, [10.5 / 24, 11.99 / 24])
    assert [frame_number(f) for f in frames] == [10, 11]


def test_past_the_end_repeats_the_last_frame(video):
    frames = read_frames_at(video, [238 / 24, 300 / 24])
    assert [frame_number(f) for f in frames] == [238, 239]


def test_short_side_scaling(video):
    assert read_frames_at(video, [0.0], short_side=24).shape == (1, 24, 32, 3)
