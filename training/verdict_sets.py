"""The drawings the verdicts are fitted, chosen and measured on: digits and non-digits, split three ways.

- train (the detector's fit): pendigits writers 1–20, UNIPEN training institutions, an MNIST
  sample, letters of the training institutions, the training shape kinds and scribbles;
- validation (temperature, thresholds, every choice): pendigits writers 21–24, UNIPEN's
  validation institution (gmd) — its digits and letters — new shapes and scribbles, and Hershey
  symbols no network is trained on;
- test (the held-out table only, docs/verdicts.md): pendigits writers 25–30 and the UNIPEN test institutions
  (apa, art, ibm), digits under every benchmark condition, their letters, held-out shape
  kinds, new scribbles, and pairs of held-out digits side by side.

Held-out digits are rendered as ``bench.accuracy`` renders them (benchmark conditions, not
distorted); non-digits and training digits with random conditions or distortion as training
renders digits. Sizes are subsampled to keep the whole fit to minutes on two cores.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import symbols
from .data import load_mnist
from .nondigits import TEST_SHAPES, TRAIN_SHAPES, letter_indices, load_letters, render_set, synthetic
from .strokes import BENCHMARK_CONDITIONS, CANVAS, HELD_OUT_WRITERS, load_pendigits
from .unipen import BOX, load_unipen, split_indices

TRAIN_WRITERS = tuple(range(1, 21))
VALIDATION_WRITERS = (21, 22, 23, 24)
SIZES = dict(pendigits=3000, unipen=3000, mnist=4000, letters=4000, shapes=2000, scribbles=1500,
             test_letters=800, pairs=400)
TEST_COPIES = 2  # each held-out pendigits digit under two of the benchmark conditions


def _subsample(index, count, seed):
    index = np.asarray(index)
    if len(index) <= count:
        return index
    return np.sort(np.random.default_rng(seed).choice(index, count, replace=False))


def _pen(part):
    """Return (drawings, labels, strokes per drawing) of pendigits writers or UNIPEN institutions in ``part``."""
    if part[0] == "pendigits":
        digits, labels, writers = load_pendigits()
        index = np.flatnonzero(np.isin(writers, part[1]))
    else:
        digits, labels, institutions = load_unipen()
        index = split_indices(institutions, part[1])
    return [digits[i] for i in index], labels[index]


def pair(left, right, gap):
    """Return the strokes of two digits side by side, both scaled to BOX high, ``gap`` × BOX apart."""
    placed, offset = [], 0.0
    for strokes in (left, right):
        points = np.concatenate(strokes)
        low, high = points.min(axis=0), points.max(axis=0)
        scale = BOX / max(float(high[1] - low[1]), 1.0)
        placed += [((s - low) * scale + [offset, 0]).astype(np.float32) for s in strokes]
        offset += float(high[0] - low[0]) * scale + gap * BOX
    return placed


def pair_condition(strokes, condition):
    """Return ``condition`` for a pair of digits: each digit as tall as a single one would be, all on the canvas.

    A benchmark condition's height is the drawing's; a pair is about twice as wide as high, so
    at the same height each digit would be drawn half as tall under the same brush — not how
    people write "12". The height is scaled back up to the digits' own (at most what fits the
    canvas's width) and the centre moved in just enough to keep the pair on the canvas.
    """
    points = np.concatenate(strokes)
    width, height = np.ptp(points, axis=0)
    extent = max(height, 0.75 * width)
    tall = min(condition.height * extent / max(height, 1.0), 0.9 * extent / max(width, 1.0))
    half = np.array([tall * width / extent, tall * height / extent]) / 2
    centre = np.clip(condition.centre, half + 0.02, 1 - half - 0.02)
    return dataclasses.replace(condition, height=float(tall), centre=(float(centre[0]), float(centre[1])))


def spaced_pair(left, right, gap, condition):
    """Return (strokes, condition) of two digits with a visible gap of ``gap`` × their height once the brush has drawn.

    The brush widens every stroke by its width, so the strokes are first placed, the canvas
    scale read from the condition, and the pair re-placed with the brush's width added.
    """
    drawing = pair(left, right, gap)
    condition = pair_condition(drawing, condition)
    width, height = np.ptp(np.concatenate(drawing), axis=0)
    scale = condition.height * CANVAS / max(height, 0.75 * width)  # canvas pixels per stroke unit
    drawing = pair(left, right, gap + condition.brush / scale / BOX)
    return drawing, pair_condition(drawing, condition)


def digit_sets(split):
    """Return {name: (x, views, labels, strokes)} of drawn digits for ``split`` ("train", "validation", "test")."""
    out = {}
    if split == "train":
        for name, part, seed in (("pendigits", ("pendigits", TRAIN_WRITERS), 1), ("unipen", ("unipen", "train"), 2)):
            drawings, labels = _pen(part)
            keep = _subsample(np.arange(len(drawings)), SIZES[name], seed)
            drawings = [drawings[i] for i in keep]
            x, views = render_set(f"train_{name}", drawings, seed, "random", distort=True)
            out[name] = (x, views, labels[keep], np.array([len(d) for d in drawings]))
        x_train, y_train, _, _ = load_mnist()
        keep = _subsample(np.arange(len(x_train)), SIZES["mnist"], 3)
        out["mnist"] = (x_train[keep], None, y_train[keep], None)
        return out
    parts = {"validation": (("pendigits", ("pendigits", VALIDATION_WRITERS), 1), ("unipen", ("unipen", "validation"), 1)),
             "test": (("pendigits", ("pendigits", HELD_OUT_WRITERS), TEST_COPIES), ("unipen", ("unipen", "test"), 1))}
    for name, part, copies in parts[split]:
        drawings, labels = _pen(part)
        drawings, labels = drawings * copies, np.tile(labels, copies)
        x, views = render_set(f"{split}_{name}", drawings, 5, "benchmark", distort=False)
        out[name] = (x, views, labels, np.array([len(d) for d in drawings]))
    return out


def non_digit_sets(split):
    """Return {name: (x, views)} of letters, shapes and scribbles for ``split``; test letters per institution."""
    letters, chars, institutions = load_letters()
    out = {}
    index = letter_indices(chars, institutions, split)
    conditions = "random" if split == "train" else "benchmark"
    seed = {"train": 11, "validation": 12, "test": 13}[split]
    if split == "test":
        for institution in sorted(set(institutions[index])):
            chosen = _subsample(index[institutions[index] == institution], SIZES["test_letters"], seed)
            out[f"letters {institution}"] = render_set(f"test_letters_{institution}", [letters[i] for i in chosen],
                                                       seed, conditions)
    else:
        chosen = _subsample(index, SIZES["letters"], seed)
        out["letters"] = render_set(f"{split}_letters", [letters[i] for i in chosen], seed, conditions)
    share = {"train": 1.0, "validation": 0.2, "test": 0.3}[split]
    shapes = ",".join(TEST_SHAPES) if split == "test" else ",".join(TRAIN_SHAPES)
    count = int(SIZES["shapes"] * share)
    out["shapes"] = render_set(f"{split}_shapes", synthetic(shapes, count, seed), seed, conditions)
    count = int(SIZES["scribbles"] * share)
    out["scribbles"] = render_set(f"{split}_scribbles", synthetic("scribble", count, seed + 100), seed, conditions)
    if split == "validation":  # glyphs no network is trained on (training/symbols.py); the test set stays as it was
        count = int(SIZES["shapes"] * share)
        out["symbols"] = render_set(f"validation_symbols_{symbols.glyphs_key()}",
                                    symbols.symbols(count, seed + 200, "validation"), seed, conditions)
    return out


def pair_set(count=SIZES["pairs"], seed=31):
    """Return (x, views, labels): ``count`` pairs of held-out digits (pendigits 25–30, UNIPEN test) side by side."""
    rng = np.random.default_rng(seed)
    pools = [_pen(("pendigits", HELD_OUT_WRITERS)), _pen(("unipen", "test"))]
    drawings, labels, conditions_used, conditions = [], [], [], list(BENCHMARK_CONDITIONS.values())
    for i in range(count):
        pool_digits, pool_labels = pools[i % 2]
        a, b = rng.integers(len(pool_digits), size=2)
        drawing, condition = spaced_pair(pool_digits[a], pool_digits[b], float(rng.uniform(0.1, 0.4)),
                                         conditions[i % len(conditions)])
        drawings.append(drawing)
        conditions_used.append(condition)
        labels.append(int(pool_labels[a]) * 10 + int(pool_labels[b]))
    x, views = render_set("test_pairs", drawings, seed, conditions_used, distort=False)
    return x, views, np.array(labels)


if __name__ == "__main__":  # render and cache every set (the first run of training.verdicts does this too)
    for split in ("validation", "test", "train"):
        digit_sets(split)
        non_digit_sets(split)
    pair_set()
