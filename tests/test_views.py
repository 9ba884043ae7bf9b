"""Test-time views (digitrec/views.py): each view turns and scales about the centre, and answers average over them."""

import numpy as np
import pytest

from digitrec.views import IDENTITY, all_views, averaged, check_views, describe, turned


def ink_centre(image):
    rows, cols = np.nonzero(image > 0.5)
    return rows.mean(), cols.mean(), np.ptp(rows) + 1, np.ptp(cols) + 1


def test_the_identity_view_is_the_image_itself():
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    assert turned(x, *IDENTITY) is x


def test_a_quarter_turn_lays_an_upright_stroke_down_about_the_centre():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 4:24, 13:15] = 1.0  # an upright stroke through the centre, 20 px tall
    row, col, height, width = ink_centre(turned(x, 90.0, 1.0)[0])
    assert abs(row - 13.5) < 0.6 and abs(col - 13.5) < 0.6
    assert height <= 3 and width >= 18


def test_a_small_turn_tilts_and_scaling_grows_about_the_centre():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 4:24, 13:15] = 1.0
    tilted = turned(x, 12.0, 1.0)[0]
    top, bottom = np.nonzero(tilted[5] > 0.5)[0].mean(), np.nonzero(tilted[22] > 0.5)[0].mean()
    assert abs(top - bottom) > 2  # the top and the foot of the stroke have moved apart sideways
    square = np.zeros((1, 28, 28), np.float32)
    square[0, 11:17, 11:17] = 1.0
    row, col, height, width = ink_centre(turned(square, 0.0, 2.0)[0])
    assert abs(row - 13.5) < 0.6 and abs(col - 13.5) < 0.6 and 11 <= height <= 13 and 11 <= width <= 13
    assert turned(square, 0.0, 2.0).dtype == np.float32 and turned(square, 30.0, 1.5).max() <= 1.0


def test_answers_average_each_view_read_alone():
    """The stacked call gives, for every image, the mean of what each view alone gives (tuples averaged member by member)."""
    rng = np.random.default_rng(1)
    x = rng.random((4, 28, 28)).astype(np.float32)
    weights = rng.normal(size=(784, 3)).astype(np.float32)
    calls = []

    def forward(images):
        calls.append(len(images))
        flat = images.reshape(len(images), -1)
        return flat @ weights, flat.sum(axis=1, keepdims=True)

    views = ((0.0, 1.0), (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9), (0.0, 1.1))
    scores, sums = averaged(forward, x, views)
    expected = [forward(turned(x, *view)) for view in views]
    np.testing.assert_allclose(scores, np.mean([e[0] for e in expected], axis=0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(sums, np.mean([e[1] for e in expected], axis=0), rtol=1e-5)
    assert calls[0] == len(x) * len(views)  # one call on every view stacked
    np.testing.assert_allclose(all_views(x, views), np.concatenate([turned(x, *view) for view in views]), atol=1e-5)
    assert averaged(lambda images: images.sum(axis=(1, 2)), x) is not None
    np.testing.assert_array_equal(averaged(lambda images: images[:, 0], x), x[:, 0])


@pytest.mark.parametrize("bad", [[], [(0, 1, 2)], [("left", 1)], [(0, 0)], [(0, 5)], [(90, 1)], None, "0,1"])
def test_views_that_make_no_sense_are_refused(bad):
    with pytest.raises(ValueError, match="views"):
        check_views(bad)


def test_views_read_from_json_lists_are_tuples_of_floats():
    assert check_views([[0, 1], [12, 1]]) == ((0.0, 1.0), (12.0, 1.0))


def test_views_are_described_in_words():
    assert [describe(view) for view in ((0.0, 1.0), (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9), (-4.0, 1.1))] == [
        "as it is", "turned +8°", "turned -8°", "scaled 0.9", "turned -4°, scaled 1.1"]
