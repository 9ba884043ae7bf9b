"""Rendering pen trajectories for training: the stroke distortion that imitates other writers."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.preprocess import preprocess
from training.strokes import Condition, distort_strokes, load_pendigits, render


@pytest.fixture(scope="module")
def digits():
    strokes, labels, _ = load_pendigits()
    one_stroke = next(d for d in strokes if len(d) == 1)
    many_strokes = next(d for d in strokes if len(d) > 1)
    return one_stroke, many_strokes


def box(strokes):
    points = np.concatenate(strokes)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def test_no_distortion_is_the_identity(digits):
    for strokes in digits:
        out = distort_strokes(strokes, np.random.default_rng(0), proportion=0, shift=0, scale=0, rotation=0)
        for before, after in zip(strokes, out):
            np.testing.assert_allclose(after, before, atol=1e-3)


def test_a_one_stroke_digit_keeps_its_box_and_points_but_changes_its_proportions(digits):
    strokes = digits[0]
    out = distort_strokes(strokes, np.random.default_rng(1), proportion=0.3)
    assert [len(s) for s in out] == [len(s) for s in strokes]
    np.testing.assert_allclose(box(out), box(strokes), atol=1e-2)
    assert np.abs(out[0] - strokes[0]).max() > 5  # tablet units of a 500-unit box


def test_strokes_of_a_multi_stroke_digit_move_relative_to_each_other(digits):
    strokes = digits[1]
    out = distort_strokes(strokes, np.random.default_rng(2), proportion=0, shift=0.1)
    offsets = [np.mean(after - before, axis=0) for before, after in zip(strokes, out)]
    assert np.abs(offsets[0] - offsets[1]).max() > 1


def test_distortion_is_reproducible_and_renders_as_a_digit(digits):
    for strokes in digits:
        first = distort_strokes(strokes, np.random.default_rng(3))
        second = distort_strokes(strokes, np.random.default_rng(3))
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
        image = preprocess(render(first, Condition()))
        assert image.shape == (28, 28) and 0.05 < image.mean() < 0.5


def test_a_slashed_zero_keeps_its_loop_and_gains_a_rising_stroke_across_it():
    """Ø: the zero's strokes stay as drawn, and one more runs from below left to above right, through the loop."""
    from training.data import slash_zero

    strokes, labels, _ = load_pendigits()
    zero = strokes[int(np.flatnonzero(labels == 0)[0])]
    slashed = slash_zero(zero, np.random.default_rng(0))
    assert len(slashed) == len(zero) + 1
    for before, after in zip(zero, slashed):
        np.testing.assert_array_equal(after, before)
    low, high = box(zero)[:2], box(zero)[2:]
    start, end = slashed[-1][0], slashed[-1][-1]
    assert start[0] < end[0] and start[1] > end[1]  # y down: it rises to the right
    middle = slashed[-1][len(slashed[-1]) // 2]
    assert (low < middle).all() and (middle < high).all()  # it crosses the loop, not beside it


def test_only_the_chosen_share_of_zeros_is_slashed():
    from training.data import slashed_jobs

    labels = np.array([0, 1, 0, 7, 0] * 400)
    jobs = slashed_jobs([("strokes", (0, i), True) for i in range(len(labels))], labels, 0.3, seed=0)
    flags = np.array([job[-1] for job in jobs])
    assert not flags[labels != 0].any()
    assert 0.25 < flags[labels == 0].mean() < 0.35
    assert slashed_jobs(jobs[:3], labels[:3], 0.0, seed=0) == jobs[:3]  # no share: the jobs as they were
