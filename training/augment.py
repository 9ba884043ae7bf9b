"""Distortions that make MNIST and rendered strokes look like more people drew them.

One function, ``augment_batch``, in numpy/scipy so all three trainers (the numpy network
included) share it: a random affine map (rotation, scale, slant, shift) and a smooth
elastic displacement (Simard et al. 2003) applied in one resampling, then, for some
images, a slightly thicker stroke.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def augment_batch(
    images,
    rng,
    rotation=10.0,
    scale=(0.9, 1.08),
    slant=0.2,
    shift=1.5,
    elastic_alpha=1.2,
    elastic_sigma=3.5,
    thicken=0.15,
):
    """Return a distorted copy of ``images`` (B, 28, 28) float32 in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    count, height, width = images.shape
    centre = np.array([(height - 1) / 2, (width - 1) / 2], dtype=np.float32)
    angle = np.deg2rad(rng.uniform(-rotation, rotation, count))
    zoom = rng.uniform(*scale, count)
    shear = rng.uniform(-slant, slant, count)
    # Output pixel (r, c) samples the input at M·((r, c) − centre) + centre + t + elastic(r, c).
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    matrix = np.stack([np.stack([cos, -sin], -1), np.stack([sin + shear * cos, cos - shear * sin], -1)], 1)
    grid = np.indices((height, width), dtype=np.float32).reshape(2, -1) - centre[:, None]
    source = np.einsum("bij,jn->bin", matrix, grid) + centre[None, :, None]
    source += rng.uniform(-shift, shift, (count, 2, 1))
    field = rng.uniform(-1, 1, (2, count, height, width)).astype(np.float32)
    field = ndimage.gaussian_filter(field, sigma=(0, 0, elastic_sigma, elastic_sigma)) * (
        elastic_alpha * elastic_sigma * 2.0
    )
    rows = source[:, 0].reshape(count, height, width) + field[0]
    cols = source[:, 1].reshape(count, height, width) + field[1]
    batch = np.broadcast_to(np.arange(count, dtype=np.float32)[:, None, None], rows.shape)
    out = ndimage.map_coordinates(images, [batch, rows, cols], order=1, mode="constant", cval=0.0)
    thick = rng.random(count) < thicken
    if thick.any():
        out[thick] = ndimage.grey_dilation(out[thick], size=(1, 2, 2))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
