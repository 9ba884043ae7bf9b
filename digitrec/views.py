"""Test-time views: read a drawing also turned and scaled a little, and average what the network says.

A writer's slant and size vary more than a network trained on augmented digits has learnt to
ignore; averaging its answers over a few views of the same 28×28 image (the one image the
preprocessing made) smooths that out. A model's views live in its manifest
(``test_time_views``, chosen on validation writers: docs/unipen.md); a model without them
reads the image once, as it is.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage, sparse

IDENTITY = (0.0, 1.0)  # (degrees turned, scale): the image as the preprocessing made it
CENTRE = 13.5  # the middle of a 28×28 image, about which each view turns and scales
PIXELS = 28 * 28


def check_views(views) -> tuple:
    """Return ``views`` as a tuple of (degrees, scale) pairs, or raise ValueError saying what is wrong."""
    try:
        views = tuple((float(degrees), float(scale)) for degrees, scale in views)
    except (TypeError, ValueError):
        raise ValueError(f"Test-time views must be (degrees, scale) pairs; got {views!r}.") from None
    if not views or any(not (0.5 <= scale <= 2.0) or abs(degrees) > 45 for degrees, scale in views):
        raise ValueError(f"Test-time views need at least one (degrees within ±45, scale 0.5–2) pair; got {views!r}.")
    return views


def describe(view) -> str:
    """Return a view in words for people: "as it is", "turned +8°", "scaled 0.9", "turned -8°, scaled 1.1"."""
    degrees, scale = view
    words = ([f"turned {degrees:+g}°"] if degrees else []) + ([f"scaled {scale:g}"] if scale != 1.0 else [])
    return ", ".join(words) or "as it is"


def turned(x, degrees, scale) -> np.ndarray:
    """Return images ``x`` (N, 28, 28) turned by ``degrees`` and scaled by ``scale`` about the centre, ink kept in [0, 1]."""
    if (degrees, scale) == IDENTITY:
        return x
    angle = np.deg2rad(degrees)
    # affine_transform maps each output pixel back to its input: the inverse turn and scale
    inverse = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) / scale
    matrix = np.eye(3)
    matrix[1:, 1:] = inverse
    offset = np.concatenate([[0.0], CENTRE - inverse @ [CENTRE, CENTRE]])
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


def averaged(forward, x, views=(IDENTITY,)):
    """Return ``forward(x)`` averaged over each image's views: one call on all views stacked.

    ``forward`` returns an (N, …) array, or a tuple or list of them (features and
    probabilities), each averaged on its own.
    """
    if tuple(views) == (IDENTITY,):
        return forward(x)
    outputs = forward(all_views(x, views))

    def mean(array):
        array = np.asarray(array, dtype=np.float32)
        return array.reshape(len(views), len(x), *array.shape[1:]).mean(axis=0)

    return tuple(mean(array) for array in outputs) if isinstance(outputs, (tuple, list)) else mean(outputs)
