"""Test-time views: read a drawing also turned, scaled or shifted a little, and average what the network says.

A writer's slant and size vary more than a network trained on augmented digits has learnt to
ignore; averaging its answers over a few views of the same 28×28 image (the one image the
preprocessing made) smooths that out. A model's views live in its manifest
(``test_time_views``, chosen on validation writers: docs/unipen.md); a model without them
reads the image once, as it is. With ``test_time_views_below`` the other views are read only
when the first reading's most likely digit is below it: the errors views fix are among the
readings a network is unsure of, and a sure digit then costs one image, not five. A drawing
that may be no digit at all is read at every view, so "not a digit" is judged as without the gate.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage, sparse

IDENTITY = (0.0, 1.0, 0.0, 0.0)  # (degrees turned, scale, pixels right, pixels down): the image as it is
MAX_SHIFT = 4  # pixels: a view moves the ink a little, never off the 20×20 box the preprocessing fills
CENTRE = 13.5  # the middle of a 28×28 image, about which each view turns and scales
PIXELS = 28 * 28
DIGITS = 10  # the gate looks at the first ten outputs, the digits; an 11th is "not a digit"


def check_views(views) -> tuple:
    """Return ``views`` as a tuple of (degrees, scale, right, down), or raise ValueError saying what is wrong.

    A view may be given as (degrees, scale), unshifted, as the manifests of turned and scaled views store it.
    """
    try:
        views = tuple(tuple(float(value) for value in view) for view in views)
    except (TypeError, ValueError):
        raise ValueError(f"Test-time views must be (degrees, scale[, right, down]) lists; got {views!r}.") from None
    views = tuple(view + (0.0, 0.0) if len(view) == 2 else view for view in views)
    if not views or any(
        len(view) != 4 or not (0.5 <= view[1] <= 2.0) or abs(view[0]) > 45 or max(map(abs, view[2:])) > MAX_SHIFT
        for view in views
    ):
        raise ValueError("Test-time views need at least one (degrees within ±45, scale 0.5–2[, right and down "
                         f"within ±{MAX_SHIFT} px]) view; got {views!r}.")
    return views


def check_below(below) -> float | None:
    """Return the gate ``below`` as a float in (0, 1], or None (read every view always); else raise ValueError."""
    if below is None:
        return None
    try:
        below = float(below)
    except (TypeError, ValueError):
        raise ValueError(f"test_time_views_below must be a probability; got {below!r}.") from None
    if not 0.0 < below <= 1.0:
        raise ValueError(f"test_time_views_below must be a probability in (0, 1]; got {below!r}.")
    return below


def to_json(views, below=None) -> dict:
    """Return the manifest keys that describe ``views`` and their gate: none for a model that reads once.

    Unshifted views are written as (degrees, scale) pairs, the form every manifest has used.
    """
    views = check_views(views)
    if views == (IDENTITY,):
        return {}
    lists = [list(view[:2]) if view[2:] == (0.0, 0.0) else list(view) for view in views]
    return {"test_time_views": lists, **({} if below is None else {"test_time_views_below": check_below(below)})}


def from_json(document) -> tuple:
    """Return (views, below) from a manifest or verdict file; a file without them reads once."""
    return check_views(document.get("test_time_views", [IDENTITY])), check_below(document.get("test_time_views_below"))


def describe(view) -> str:
    """Return a view in words for people: "as it is", "turned +8°", "scaled 0.9", "shifted 1 px right"…"""
    degrees, scale, right, down = check_views([view])[0]
    words = ([f"turned {degrees:+g}°"] if degrees else []) + ([f"scaled {scale:g}"] if scale != 1.0 else [])
    words += [f"shifted {abs(amount):g} px {way[amount > 0]}"
              for amount, way in ((right, ("left", "right")), (down, ("up", "down"))) if amount]
    return ", ".join(words) or "as it is"


def turned(x, degrees, scale, right=0.0, down=0.0) -> np.ndarray:
    """Return images ``x`` (N, 28, 28) turned and scaled about the centre, then shifted (pixels), ink kept in [0, 1]."""
    if (degrees, scale, right, down) == IDENTITY:
        return x
    angle = np.deg2rad(degrees)
    # affine_transform maps each output pixel back to its input: the inverse shift, turn and scale
    inverse = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) / scale
    matrix = np.eye(3)
    matrix[1:, 1:] = inverse
    offset = np.concatenate([[0.0], CENTRE - inverse @ [CENTRE + down, CENTRE + right]])
    return np.clip(ndimage.affine_transform(x, matrix, offset=offset, order=1), 0.0, 1.0).astype(x.dtype)


@functools.lru_cache(maxsize=8)
def operator(views) -> sparse.csr_matrix:
    """Return the sparse (views × 784, 784) matrix that makes every view of an image from its pixels in one product.

    Linear interpolation is linear in the pixels, so each view is a fixed matrix with at
    most four weights per row: built once from the 784 one-pixel images, it reads a drawing's
    views some 30 times faster than transforming the image again for each.
    """
    basis = np.eye(PIXELS, dtype=np.float32).reshape(PIXELS, 28, 28)
    return sparse.csr_matrix(np.concatenate([turned(basis, *view).reshape(PIXELS, PIXELS) for view in views], axis=1).T)


def all_views(x, views) -> np.ndarray:
    """Return (len(views) × N, 28, 28): every image of ``x`` at the first view, then all at the second, …"""
    stacked = operator(tuple(views)) @ x.reshape(len(x), PIXELS).T  # (views × 784, N)
    stacked = stacked.reshape(len(views), PIXELS, len(x)).transpose(0, 2, 1)
    return np.clip(stacked, 0.0, 1.0).astype(x.dtype).reshape(len(views) * len(x), 28, 28)


def averaged(forward, x, views=(IDENTITY,), below=None):
    """Return ``forward(x)`` averaged over each image's views: one call on all views stacked.

    ``forward`` returns an (N, …) array, or a tuple or list of them (features, then
    probabilities), each averaged on its own. With ``below``, the first view (the image as
    it is) is read for every image and the other views only for the images whose most likely
    digit (the largest of the last array's first ten columns) is below it; a sure digit keeps
    its one reading.
    """
    views = tuple(views)
    if views == (IDENTITY,):
        return forward(x)
    if below is None:
        return _mean_of_views(forward(all_views(x, views)), len(views), len(x))
    if views[0] != IDENTITY:
        raise ValueError(f"Gated test-time views must start with the image as it is; got {views!r}.")
    first = forward(x)
    arrays = [np.array(array, dtype=np.float32) for array in (first if isinstance(first, (tuple, list)) else [first])]
    unsure = np.flatnonzero(arrays[-1][:, :DIGITS].max(axis=1) < below)
    if len(unsure):
        rest = forward(all_views(x[unsure], views[1:]))
        for array, more in zip(arrays, rest if isinstance(rest, (tuple, list)) else [rest]):
            more = np.asarray(more, dtype=np.float32).reshape(len(views) - 1, len(unsure), *array.shape[1:])
            array[unsure] = (array[unsure] + more.sum(axis=0)) / len(views)
    return tuple(arrays) if isinstance(first, (tuple, list)) else arrays[0]


def _mean_of_views(outputs, count, n):
    """Return ``outputs`` of ``count`` views of ``n`` images stacked view after view, averaged per image."""

    def mean(array):
        array = np.asarray(array, dtype=np.float32)
        return array.reshape(count, n, *array.shape[1:]).mean(axis=0)

    return tuple(mean(array) for array in outputs) if isinstance(outputs, (tuple, list)) else mean(outputs)
