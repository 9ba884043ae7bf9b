"""UNIPEN digits: pen trajectories by writers of ten institutions, split by whole institution.

pendigits' 30 writers are one lab's style; UNIPEN's writers come from other countries and
other tablets (slashed zeros, flagged ones, crossed sevens). To measure how the models read
people unlike anyone they were trained on, whole institutions are held out — never a random
split of samples, which would put a writer's other digits in training.

The split (sizes: digits / writers in unipen_digits.npz):

- test ``TEST_INSTITUTIONS``: ibm (1,175 / 22), apa (692 / 9), art (170 / 3) — 2,037 digits by
  34 writers, the most writers of any choice near the 2,000-digit size the benchmark can read
  under every condition in minutes; three labs and tablets rather than one.
- validation ``VALIDATION_INSTITUTIONS``: gmd (1,145 / 3) — the one institution left of the
  right size once the two large ones stay in training; every tuning choice is read here.
- training: everything else — syn (4,554 / 17), apb (2,033 / 38), val (1,457 / 2) and the
  tiny cea, ceb, lou (30 digits) — 8,074 digits by 63 writers.
"""

from __future__ import annotations

import numpy as np

from .strokes import HELD_OUT_WRITERS, data_path, load_pendigits, read_pen_file

TEST_INSTITUTIONS = ("apa", "art", "ibm")
VALIDATION_INSTITUTIONS = ("gmd",)
BOX = 500.0  # each sample is scaled so its longer side spans this, like pendigits' 500×500 box


def load_unipen(path=None):
    """Return (digits, labels, institutions): strokes y down, each digit scaled to a common size.

    Tablets differ in resolution, so every sample is scaled on its own (aspect kept) to span
    BOX along its longer side; ``render`` rescales anyway, but ``distort_strokes`` and any
    code that compares sizes then see comparable numbers.
    """
    digits, labels, writers = load_unipen_writers(path)
    return digits, labels, np.array([writer.split("/")[0] for writer in writers])


def load_unipen_writers(path=None):
    """Return (digits, labels, writers) as ``load_unipen``, with each digit's writer ("institution/id").

    Numbers are composed from one writer's digits (bench.numbers), so they need the writer,
    not only the institution.
    """
    with np.load(data_path("unipen_digits.npz", path)) as data:
        points, samples, labels, writers = read_pen_file(data)
        names = np.array([str(name) for name in data["writer_names"]])
    if labels.max(initial=0) > 9:
        raise ValueError("unipen file holds non-digits (label > 9): give unipen_digits.npz, not the letters")
    return [scaled(group) for group in samples(points)], labels, names[writers]


def scaled(group):
    """Return one sample's strokes y down, scaled on their own so the longer side spans BOX (tablets differ)."""
    flat = np.concatenate(group)
    low, high = flat.min(axis=0), flat.max(axis=0)
    scale = BOX / max(float((high - low).max()), 1.0)
    strokes = []
    for stroke in group:
        xy = (stroke - low) * scale
        xy[:, 1] = (high[1] - stroke[:, 1]) * scale  # the tablet's y points up; the canvas's points down
        strokes.append(xy.astype(np.float32))
    return strokes


def split_indices(institutions, part):
    """Return the sample indices of one part of the split: "test", "validation" or "train".

    Training is everything outside the test and validation institutions, so an institution
    added to the file later lands in training, never silently in a measured set.
    """
    institutions = np.asarray(institutions)
    if part == "test":
        return np.flatnonzero(np.isin(institutions, TEST_INSTITUTIONS))
    if part == "validation":
        return np.flatnonzero(np.isin(institutions, VALIDATION_INSTITUTIONS))
    if part == "train":
        return np.flatnonzero(~np.isin(institutions, TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS))
    raise ValueError(f"part must be 'test', 'validation' or 'train'; got {part!r}")


def writers_digits(part: str, pendigits=None, unipen=None):
    """Return (digits, labels, writers) of both sources' "held-out", "training" or "validation" writers: strokes, y down.

    Held out are pendigits writers 25–30 (HELD_OUT_WRITERS) and the test institutions; the
    training writers are the other pendigits writers and the training institutions — those
    the models learn digits from (the validation institution is neither); validation is
    pendigits writers 21–24 (``training.verdict_sets.VALIDATION_WRITERS``, left out of a run by
    ``--leave-out-writers``) and the validation institution. Writers are named
    "pendigits/<id>" and "<institution>/<id>".
    """
    from .verdict_sets import VALIDATION_WRITERS

    if part not in ("held-out", "training", "validation"):
        raise ValueError(f"part must be 'held-out', 'training' or 'validation'; got {part!r}.")
    pen_digits, pen_labels, pen_writers = load_pendigits(pendigits)
    uni_digits, uni_labels, uni_writers = load_unipen_writers(unipen)
    held_out = np.isin(pen_writers, HELD_OUT_WRITERS)
    pen_keep = np.flatnonzero({"held-out": held_out, "training": ~held_out,
                               "validation": np.isin(pen_writers, VALIDATION_WRITERS)}[part])
    institutions = np.array([writer.split("/")[0] for writer in uni_writers])
    uni_keep = split_indices(institutions, {"held-out": "test", "training": "train", "validation": "validation"}[part])
    digits = [pen_digits[i] for i in pen_keep] + [uni_digits[i] for i in uni_keep]
    labels = np.concatenate([pen_labels[pen_keep], uni_labels[uni_keep]])
    writers = np.concatenate([np.array([f"pendigits/{w}" for w in pen_writers[pen_keep]]), uni_writers[uni_keep]])
    return digits, labels, writers
