"""The demo's pixel judge reads colour and direction off ground-truth shots."""

import itertools

import cv2
import numpy as np
import pytest

from pipelines.demo.corpus import COLOURS, DIRECTIONS, SHAPES, shot_frames
from pipelines.demo.judge import judge


@pytest.mark.parametrize("size", [32, 64])
def test_judge_reads_every_combination(size):
    rng = np.random.default_rng(0)
    wrong = []
    for colour, shape, direction in itertools.product(COLOURS, SHAPES, DIRECTIONS):
        frames = np.stack(shot_frames(rng, 64, 9, colour, shape, direction))
        if size != 64:
            frames = np.stack(
                [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
            )
        j = judge(frames)
        if (j.colour, j.direction) != (colour, direction):
            wrong.append((colour, shape, direction, j))
    assert not wrong


def test_still_subject_has_no_direction():
    rng = np.random.default_rng(1)
    frames = np.stack(shot_frames(rng, 64, 9, "blue", "square", "left", moving=False))
    j = judge(frames)
    assert j.colour == "blue" and j.direction is None


def test_grey_noise_has_no_subject():
    rng = np.random.default_rng(2)
    grey = rng.integers(80, 160, size=(9, 32, 32, 1)).astype(np.uint8).repeat(3, axis=3)
    assert judge(grey).colour is None
