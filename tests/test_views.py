"""Test-time views (digitrec/views.py): each view turns, scales and shifts, and answers average over them."""

import numpy as np
import pytest

from digitrec.views import IDENTITY, all_views, averaged, check_views, describe, from_json, to_json, turned


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
    assert check_views([[0, 1], [12, 1], [0, 1, -1, 2]]) == (
        (0.0, 1.0, 0.0, 0.0), (12.0, 1.0, 0.0, 0.0), (0.0, 1.0, -1.0, 2.0))


def test_views_and_their_gate_go_to_json_and_back():
    """Unshifted views keep the (degrees, scale) pairs manifests have always had; a model read once writes nothing."""
    views = check_views([[0, 1], [8, 1], [0, 1, 1, 0]])
    document = to_json(views, 0.9)
    assert document == {"test_time_views": [[0, 1], [8, 1], [0, 1, 1, 0]], "test_time_views_below": 0.9}
    assert from_json(document) == (views, 0.9)
    assert from_json(to_json(views)) == (views, None) and "test_time_views_below" not in to_json(views)
    assert to_json([IDENTITY], 0.9) == {} and from_json({}) == ((IDENTITY,), None)
    for bad in (0.0, 1.5, "sure"):
        with pytest.raises(ValueError, match="test_time_views_below"):
            from_json({"test_time_views": [[0, 1], [8, 1]], "test_time_views_below": bad})


def test_a_shift_moves_ink_by_whole_pixels():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 8:20, 10:14] = 1.0
    np.testing.assert_array_equal(turned(x, 0.0, 1.0, 1.0, 0.0), np.roll(x, 1, axis=2))  # one pixel right
    np.testing.assert_array_equal(turned(x, 0.0, 1.0, 0.0, -2.0), np.roll(x, -2, axis=1))  # two pixels up
    edge = np.zeros((1, 28, 28), np.float32)
    edge[0, :, 27] = 1.0
    assert turned(edge, 0.0, 1.0, 1.0, 0.0).sum() == 0  # ink pushed off the edge is gone, not wrapped round
    views = check_views([[0, 1], [0, 1, 1, 0], [0, 1, 0, -1]])
    np.testing.assert_allclose(all_views(x, views), np.concatenate([turned(x, *view) for view in views]), atol=1e-6)


def test_sure_images_keep_their_one_reading_and_unsure_ones_average_every_view():
    """With a gate, only images whose first top digit is below it are read at the other views, in one call."""
    rng = np.random.default_rng(2)
    x = rng.random((6, 28, 28)).astype(np.float32)
    x[3:] *= 0.1  # faint images: the forward below is sure of them; of the half-inked three it is not
    calls = []

    def forward(images):
        calls.append(len(images))
        ink = images.reshape(len(images), -1).mean(axis=1, keepdims=True)
        probs = np.concatenate([ink, 1 - ink], axis=1)
        return images.reshape(len(images), -1)[:, :5], probs

    views = check_views([[0, 1], [8, 1], [0, 1, 1, 0]])
    first_features, first_probs = forward(x)
    unsure = first_probs.max(axis=1) < 0.85
    assert unsure[:3].all() and not unsure[3:].any()
    calls.clear()
    features, probs = averaged(forward, x, views, below=0.85)
    assert calls == [len(x), 3 * (len(views) - 1)]  # every image once, then the unsure three at two more views
    every = averaged(forward, x, views)
    np.testing.assert_array_equal(probs[3:], first_probs[3:])
    np.testing.assert_array_equal(features[3:], first_features[3:])
    np.testing.assert_allclose(probs[:3], every[1][:3], atol=1e-6)
    np.testing.assert_allclose(features[:3], every[0][:3], atol=1e-5)
    calls.clear()
    assert np.array_equal(averaged(lambda images: forward(images)[1], x[3:], views, below=0.85), first_probs[3:])
    assert calls == [3]  # all sure: one reading each, nothing more
    with pytest.raises(ValueError, match="as it is"):
        averaged(forward, x, views[::-1], below=0.85)


def test_a_drawing_sure_to_be_no_digit_is_still_read_at_every_view():
    """The gate looks at the digits only: "not a digit" is judged on every view, as without the gate."""
    x = np.zeros((2, 28, 28), np.float32)
    x[1] = 1.0  # the forward below is sure the empty image is a 3 and the full one is no digit
    calls = []

    def forward(images):  # an 11-output network
        calls.append(len(images))
        full = images.reshape(len(images), -1).mean(axis=1) > 0.5
        probs = np.full((len(images), 11), 0.002, np.float32)
        probs[~full, 3] = probs[full, 10] = 0.982
        return probs

    read = averaged(forward, x, check_views([[0, 1], [8, 1]]), below=0.9)
    assert calls == [2, 1]  # the sure 3 once; the sure non-digit again at its second view
    np.testing.assert_allclose(read, forward(x), atol=1e-6)
