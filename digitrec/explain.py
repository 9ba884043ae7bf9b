"""Show what a model looked at: gradient × input over the 28×28 image it read.

The gradient of log p(answer) with respect to each pixel says how much brightening that
pixel would raise the answer's probability; multiplied by the pixel itself it credits the
ink that is there (Shrikumar et al. 2016). Each model computes its own gradient — the
numpy network by hand-written backpropagation, the Keras ones with ``tf.GradientTape``.
"""

from __future__ import annotations

import numpy as np


def saliency(model, x: np.ndarray, answer: int) -> np.ndarray:
    """Return a (28, 28) map in [0, 1]: the ink that most supported ``answer``."""
    gradient = model.input_gradient(x[None], [answer])[0]
    support = _smooth(np.maximum(gradient * x, 0.0))
    top = float(support.max())
    return support / top if top > 0 else support


def _smooth(values: np.ndarray) -> np.ndarray:
    """Average each pixel with its neighbours (3×3): single hot pixels become readable regions."""
    padded = np.pad(values, 1)
    return sum(padded[r : r + 28, c : c + 28] for r in range(3) for c in range(3)) / 9.0


def heatmap_image(processed: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Return a (28, 28, 3) RGB image: the processed digit in grey with the saliency in red-yellow over it."""
    grey = processed.astype(np.float32) / 255.0 * 0.45
    red = np.clip(grey + heat * 1.2, 0, 1)
    green = np.clip(grey + np.clip(heat - 0.5, 0, 1) * 1.6, 0, 1)
    blue = grey * (1 - heat)
    return (np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)
