"""Rendering pen trajectories for training: the stroke distortion that imitates other writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitrec.preprocess import preprocess
from training.strokes import (
    BENCHMARK_CONDITIONS, CANVAS, DEFAULT_BRUSH, MAX_BRUSH_PER_HEIGHT, Condition, distort_strokes, load_pendigits,
    random_condition, render,
)


@pytest.fixture(scope="module")
def digits():
    strokes, labels, _ = load_pendigits()
    one_stroke = next(d for d in strokes if len(d) == 1)
    many_strokes = next(d for d in strokes if len(d) > 1)
    return one_stroke, many_strokes


def box(strokes):
    points = np.concatenate(strokes)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def test_training_draws_small_digits_with_the_default_brush_as_visitors_do():
    """A visitor's small digit keeps the page's default brush; training must draw some so, not only thinner."""
    rng = np.random.default_rng(0)
    conditions = [random_condition(rng) for _ in range(20_000)]
    small = BENCHMARK_CONDITIONS["small, off-centre"].height
    as_small = [c for c in conditions if small - 0.02 <= c.height <= small]
    assert sum(c.brush == DEFAULT_BRUSH for c in as_small) >= 0.3 * len(as_small) > 0
    assert all(c.brush <= MAX_BRUSH_PER_HEIGHT * c.height * CANVAS for c in conditions)  # no brush so fat the digit is a blot


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


def crossed_zero(style):
    """Return (zero, crossed): a pendigits zero and ``style`` applied to it, checking that the zero stays as drawn."""
    strokes, labels, _ = load_pendigits()
    zero = strokes[int(np.flatnonzero(labels == 0)[0])]
    crossed = style(zero, np.random.default_rng(0))
    assert len(crossed) == len(zero) + 1
    for before, after in zip(zero, crossed):
        np.testing.assert_array_equal(after, before)
    return zero, crossed


def test_a_slashed_zero_keeps_its_loop_and_gains_a_rising_stroke_across_it():
    """Ø: the zero's strokes stay as drawn, and one more runs from below left to above right, through the loop."""
    from training.data import slash_zero

    zero, slashed = crossed_zero(slash_zero)
    low, high = box(zero)[:2], box(zero)[2:]
    start, end = slashed[-1][0], slashed[-1][-1]
    assert start[0] < end[0] and start[1] > end[1]  # y down: it rises to the right
    middle = slashed[-1][len(slashed[-1]) // 2]
    assert (low < middle).all() and (middle < high).all()  # it crosses the loop, not beside it


def test_a_barred_zero_gains_a_level_stroke_across_its_middle_and_past_both_sides():
    """θ: the zero as drawn, and one more stroke, nearly level, crossing the loop from outside left to outside right."""
    from training.data import bar_zero

    zero, barred = crossed_zero(bar_zero)
    left, top, right, bottom = box(zero)
    start, end = barred[-1][0], barred[-1][-1]
    assert start[0] < left and end[0] > right  # past the loop on both sides
    assert abs(end[1] - start[1]) < 0.25 * (bottom - top)  # level, not a slash
    assert top + 0.25 * (bottom - top) < barred[-1][:, 1].mean() < bottom - 0.25 * (bottom - top)  # across the middle


@pytest.mark.parametrize("upwards", [False, True])
def test_a_flagged_one_climbs_from_low_left_to_the_top_of_its_stem(upwards):
    """The one's stem is kept from its top down; a long flag leads into that top from below left, however it was drawn."""
    from training.data import flag_one

    stem = np.stack([np.full(20, 250.0), np.linspace(0.0, 500.0, 20)], axis=1).astype(np.float32)  # y down
    one = [stem[::-1] if upwards else stem]
    flagged = flag_one(one, np.random.default_rng(1))
    assert len(flagged) == 1
    stroke = flagged[0]
    np.testing.assert_allclose(stroke[-len(stem):], stem, atol=1e-3)  # it ends with the stem, top down, as drawn
    start = stroke[0]
    assert start[0] < 250.0 - 0.25 * 500 * np.cos(np.radians(45))  # starts well left of the stem
    assert 0.0 < start[1] < 0.75 * 500  # and below its top, above its foot
    assert flagged[0] is not one[0] and len(one[0]) == 20  # the writer's strokes are not changed in place


def test_an_upright_slashed_zero_is_struck_from_above_its_loop_to_below_it():
    """φ: the zero as drawn, and one more nearly upright stroke through the loop, sticking out above and below."""
    from training.data import upright_slash_zero

    zero, struck = crossed_zero(upright_slash_zero)
    left, top, right, bottom = box(zero)
    start, end = struck[-1][0], struck[-1][-1]
    assert start[1] < top and end[1] > bottom  # past the loop above and below
    assert abs(end[0] - start[0]) < 0.6 * (end[1] - start[1])  # upright (≤ 15° plus tremor), not a slash
    assert left < struck[-1][:, 0].mean() < right  # through the loop, not beside it


@pytest.mark.parametrize("upwards", [False, True])
def test_a_footed_one_has_a_long_flag_and_a_level_foot_under_its_stem(upwards):
    """The European one: the flagged one's strokes, then a level stroke across the stem's lowest point."""
    from training.data import flag_one, foot_one

    stem = np.stack([np.full(20, 250.0), np.linspace(0.0, 500.0, 20)], axis=1).astype(np.float32)  # y down
    one = [stem[::-1] if upwards else stem]
    footed = foot_one(one, np.random.default_rng(1))
    flagged = flag_one(one, np.random.default_rng(1))
    assert len(footed) == 2
    np.testing.assert_allclose(footed[0], flagged[0])  # the flag, drawn as flag_one draws it
    foot = footed[1]
    assert foot[0][0] < 250.0 - 0.1 * 500 and foot[-1][0] > 250.0 + 0.1 * 500  # out to both sides of the stem
    assert abs(foot[:, 1].mean() - 500.0) < 0.1 * 500  # at the stem's foot
    assert abs(foot[-1][1] - foot[0][1]) < 0.15 * 500  # level
    assert len(one[0]) == 20 and one[0] is not footed[0]  # the writer's strokes are not changed in place


def test_only_the_chosen_share_of_each_digit_gets_each_style():
    from training.data import styled_jobs

    labels = np.array([0, 1, 0, 7, 0] * 400)
    jobs = styled_jobs([("strokes", (0, i), True) for i in range(len(labels))], labels,
                       {"slash": 0.3, "bar": 0.2, "flag": 0.5, "upright": 0.1, "foot": 0.2}, seed=0)
    styles = np.array([job[-1] for job in jobs])
    assert (styles[labels == 7] == "").all()
    assert set(styles[labels == 0]) == {"", "slash", "bar", "upright"} and set(styles[labels == 1]) == {"", "flag", "foot"}
    assert 0.25 < (styles[labels == 0] == "slash").mean() < 0.35
    assert 0.15 < (styles[labels == 0] == "bar").mean() < 0.25
    assert 0.4 < (styles[labels == 1] == "flag").mean() < 0.6
    assert 0.05 < (styles[labels == 0] == "upright").mean() < 0.15
    assert 0.15 < (styles[labels == 1] == "foot").mean() < 0.25
    assert styled_jobs(jobs[:3], labels[:3], {"slash": 0.0}, seed=0) == jobs[:3]  # no share: the jobs as they were


def test_a_touching_pair_is_two_digits_run_together_and_never_hides_a_narrow_one():
    """The pairs taught as "not a digit" are one piece of ink: two digits side by side whose boxes meet or overlap."""
    from digitrec.number import components
    from training.nondigits import PAIR_HIDDEN, PAIR_OVERLAP, touching_pair

    stem = [np.stack([np.linspace(14.0, 6.0, 20), np.linspace(0.0, 100.0, 20)], axis=1).astype(np.float32)]  # a 1
    t = np.linspace(0, 2 * np.pi, 40)
    ring = [np.stack([60 + 50 * np.cos(t), 60 + 60 * np.sin(t)], axis=1).astype(np.float32)]  # a 0, 100 × 120
    rng = np.random.default_rng(0)
    for first, second in [(ring, ring), (ring, stem), (stem, ring), (stem, stem)] * 10:
        pair = touching_pair(first, second, rng)
        assert len(pair) == len(first) + len(second)
        a, b = box(pair[: len(first)]), box(pair[len(first):])
        heights = a[3] - a[1], b[3] - b[1]
        assert 0.9 <= min(heights) and max(heights) <= 1.1  # one height, give or take a tenth
        gap = b[0] - a[2]
        narrower = min(a[2] - a[0], b[2] - b[0])
        assert PAIR_OVERLAP[0] - 1e-6 <= gap <= PAIR_OVERLAP[1] + 1e-6  # overlapping to just touching
        assert gap >= -PAIR_HIDDEN * narrower - 1e-6  # a 1 never sinks into its neighbour
        assert abs(a[3] - b[3]) < 0.25  # on one baseline
    drawn = render(touching_pair(ring, ring, np.random.default_rng(3)))[:, :, 0] < 128
    assert components(drawn)[-1] == 1  # the two zeros' ink is one piece


def test_touching_pairs_come_from_one_training_writer_each():
    from training.nondigits import touching_pairs
    from training.strokes import HELD_OUT_WRITERS
    from training.unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS, writers_digits

    digits, _, writers = writers_digits("training")
    held = [f"pendigits/{w}" for w in HELD_OUT_WRITERS]
    assert not any(w in held or w.split("/")[0] in TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS for w in writers)
    assert len(digits) == len(writers) and {"pendigits"} < {w.split("/")[0] for w in writers}
    pairs = touching_pairs(5, seed=4)
    assert len(pairs) == 5 and all(len(p) >= 2 for p in pairs)
    assert [np.array_equal(p[0], q[0]) for p, q in zip(pairs, touching_pairs(5, seed=4))] == [True] * 5  # reproducible


def test_validation_writers_are_pendigits_21_to_24_and_the_validation_institution_only():
    """``bench.numbers --writers validation`` composes numbers from the writers retrainings are judged on."""
    from training.unipen import VALIDATION_INSTITUTIONS, writers_digits
    from training.verdict_sets import VALIDATION_WRITERS

    digits, labels, writers = writers_digits("validation")
    assert len(digits) == len(labels) == len(writers) > 0
    assert set(writers) >= {f"pendigits/{w}" for w in VALIDATION_WRITERS}
    assert {w.split("/")[0] for w in writers} == {"pendigits", *VALIDATION_INSTITUTIONS}
    assert {w for w in writers if w.startswith("pendigits/")} == {f"pendigits/{w}" for w in VALIDATION_WRITERS}
    with pytest.raises(ValueError, match="validation"):
        writers_digits("test")


def test_a_cached_render_is_not_reused_once_the_code_that_draws_it_changes(tmp_path, monkeypatch):
    """The writing styles (training/data.py) and the shapes and pairs (training/nondigits.py) key the render caches."""
    from training import data, nondigits

    monkeypatch.setattr(nondigits, "CACHE", tmp_path / "cache")
    drawings = [nondigits.shape("star", np.random.default_rng(0))]
    nondigits.render_set("star", drawings, seed=0, processes=1)
    for module in (data, nondigits):
        edited = tmp_path / f"{module.__name__}.py"
        edited.write_bytes(Path(module.__file__).read_bytes() + b"\n# an edit\n")
        with monkeypatch.context() as patched:
            patched.setattr(module, "__file__", str(edited))
            nondigits.render_set("star", drawings, seed=0, processes=1)
    assert len(list((tmp_path / "cache").iterdir())) == 3  # one render per version of the code, none reused
