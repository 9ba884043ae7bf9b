"""Digits as the number reader cuts them out of a touching pair, taught as the digits they are.

The number reader cuts touching digits apart along seams (``digitrec.number.candidate_seams``),
and a stretch between two cuts often keeps a sliver of its neighbour or loses a tip of its
own: a 7 whose bar ran into the next digit loses the bar's end and reads as 1. The networks
learnt touching pairs as "not a digit" and single digits whole, never such stretches, and
that is where most touching numbers fail (docs/numbers.md). Here two digits of one training
writer are drawn touching, as ``bench.numbers`` draws a touching number (each digit's ink
pasted beside the other's, so every pixel's owner is known), cut along the cheapest of the
reader's own seams that separates them, and each side whose ink is at least CLEAN its own
digit's, and which holds at least CLEAN of that digit's ink, is kept, labelled with that digit.
"""

from __future__ import annotations

import sys

import numpy as np

from digitrec.number import candidate_seams
from digitrec.preprocess import INK_THRESHOLD, crop_to_ink, preprocess_ink

from .data import CACHE, code_key, render_all, save_cache
from .strokes import digit_ink, distort_strokes
from .unipen import writers_digits

PAIRS_PER_COPY = 6000  # pairs per copy, as many as the touching pairs taught as "not a digit"
HEIGHT = (60.0, 160.0)  # px: a digit's height on the reader's work map (the wide canvas read at half size)
BRUSH = (0.08, 0.18)  # the pen's width × the height, as bench.numbers draws
OVERLAP = (-0.1, 0.0)  # the gap × the height: boxes overlapping by up to a tenth, bench.numbers' "touching"
CLEAN = 0.8  # a side is taught as its digit when this share of its ink is that digit's, and of the digit's ink is there


def cut_pair(first, second, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """Draw two digits' strokes touching, cut them at the seam that separates them best; return [(ink, side)].

    ``side`` is 0 for the first digit's stretch and 1 for the second's; a side whose ink is
    less than CLEAN its digit's or holds less than CLEAN of it, or a pair no seam separates, gives nothing.
    """
    height = rng.uniform(*HEIGHT)
    brush = max(2.0, rng.uniform(*BRUSH) * height)
    inks = [digit_ink(distort_strokes(d, rng), height * rng.uniform(0.9, 1.1), brush) for d in (first, second)]
    left = inks[0].shape[1] + int(rng.uniform(*OVERLAP) * height)
    tops = [int(round(rng.normal(0.0, 0.05) * height)) for _ in inks]
    lowest = min(tops)
    tops = [top - lowest for top in tops]
    rows = max(top + ink.shape[0] for top, ink in zip(tops, inks))
    columns = max(inks[0].shape[1], left + inks[1].shape[1])
    owned = np.zeros((2, rows, columns), np.float32)
    for k, (ink, top, x) in enumerate(zip(inks, tops, (0, max(left, 0)))):
        owned[k, top : top + ink.shape[0], x : x + ink.shape[1]] = ink
    paper = owned.max(axis=0)
    drawn = np.flatnonzero((paper >= INK_THRESHOLD).any(axis=0))
    paper, owned = paper[:, drawn[0] : drawn[-1] + 1], owned[:, :, drawn[0] : drawn[-1] + 1]
    first_owns = owned[0] >= owned[1]
    best, best_purity = None, 0.0
    column = np.arange(paper.shape[1])
    for seam, _ in candidate_seams(paper):
        on_left = column < seam[:, None]
        purity = min(_share(paper, on_left, first_owns), _share(paper, ~on_left, ~first_owns))
        if purity > best_purity:
            best, best_purity = on_left, purity
    if best is None:
        return []
    found = []
    for side, (where, owner) in enumerate(((best, first_owns), (~best, ~first_owns))):
        if min(_share(paper, where, owner), _share(paper, owner, where)) >= CLEAN:
            found.append((crop_to_ink(np.where(where, paper, 0.0)), side))
    return found


def _share(paper, where, owner) -> float:
    """Return the share of the ink inside ``where`` that ``owner`` drew (0 for no ink).

    With the arguments swapped it is the share of the owner's ink that lies inside: a side
    must be mostly its digit and hold most of it, not a fragment of it.
    """
    ink = float(paper[where].sum())
    return float(paper[where & owner].sum()) / ink if ink > 0 else 0.0


def _cut_job(job):
    first, second, labels, seed = job
    rng = np.random.default_rng(seed)
    return [(preprocess_ink(ink)[0], labels[side]) for ink, side in cut_pair(first, second, rng)]


def cut_digits(copies=1, seed=0, limit=None, pendigits=None, unipen=None, exclude=(), processes=None):
    """Return (x, y): the clean sides of ``copies`` × PAIRS_PER_COPY touching pairs, cut and labelled, cached.

    Each pair is two digits of one training writer; pendigits writers in ``exclude`` (the
    validation writers a run leaves out) give none. ``limit`` makes that many pairs per copy.
    """
    if copies <= 0:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
    digits, labels, writers = writers_digits("training", pendigits, unipen)
    left_out = {f"pendigits/{w}" for w in exclude}
    names = [name for name in np.unique(writers) if name not in left_out]
    by_writer = {name: np.flatnonzero(writers == name) for name in names}
    count = limit or PAIRS_PER_COPY
    without = "-".join(map(str, sorted(exclude))) or "none"
    key = code_key(sys.modules[__name__])
    xs, ys = [], []
    for copy in range(copies):
        base = 5000 + 100 * seed + copy
        cache = CACHE / f"cut_digits_n{count}_seed{base}_without{without}_{key}.npz"
        if cache.exists():
            with np.load(cache) as data:
                xs.append(data["x"]), ys.append(data["y"])
            continue
        rng = np.random.default_rng(base)
        jobs = []
        for k in range(count):
            own = by_writer[names[int(rng.integers(len(names)))]]
            a, b = rng.choice(own, size=2, replace=len(own) < 2)
            jobs.append((digits[a], digits[b], (int(labels[a]), int(labels[b])), (base, k)))
        cut = [item for found in render_all(_cut_job, jobs, processes) for item in found]
        x = np.stack([image for image, _ in cut]).astype(np.float32)
        y = np.array([label for _, label in cut], np.int64)
        save_cache(cache, x=x, y=y)
        xs.append(x), ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)
