"""Training data: MNIST, plus pen-drawn digits (pendigits and UNIPEN training writers) rendered like canvas input.

The drawn digits go through ``digitrec.preprocess`` — the very pipeline the app uses — so
the models learn from exactly what they will be given. Renders are cached in
``training/.cache`` because they take a minute or two.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from digitrec.preprocess import preprocess

from . import unipen
from .strokes import HELD_OUT_WRITERS, data_path, distort_strokes, load_pendigits, random_condition, render
from .unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS, load_unipen, split_indices

CACHE = Path(__file__).resolve().parent / ".cache"


def code_key(*modules) -> str:
    """Return a short hash of the rendering and preprocessing code (and ``modules``), for render cache names.

    A cached render is only valid for the code that made it: an edit to ``preprocess.py``,
    the renderer, this module's writing styles or the ``modules`` that draw the drawings
    (``training/nondigits.py``'s shapes and touching pairs) changes this key, so stale
    renders are never read.
    """
    import hashlib

    from digitrec import preprocess as preprocess_module

    from . import strokes

    code = b"".join(
        Path(m.__file__).read_bytes() for m in (preprocess_module, strokes, sys.modules[__name__], *modules)
    )
    return hashlib.sha256(code).hexdigest()[:12]


def load_mnist(path=None):
    """Return (x_train, y_train, x_test, y_test), images float32 in [0, 1].

    Reads ``path``, else $DIGITREC_DATA/mnist.npz or ../shared/data/mnist.npz when present,
    else Keras' own download.
    """
    file = data_path("mnist.npz", path)
    if path or file.exists():
        with np.load(file) as data:
            arrays = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    else:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        arrays = x_train, y_train, x_test, y_test
    x_train, y_train, x_test, y_test = arrays
    if x_train.shape[1:] != (28, 28) or x_test.shape[1:] != (28, 28):
        raise ValueError(f"MNIST images must be 28×28; got {x_train.shape} and {x_test.shape}.")
    return (
        x_train.astype(np.float32) / 255.0,
        y_train.astype(np.int64),
        x_test.astype(np.float32) / 255.0,
        y_test.astype(np.int64),
    )


def slash_zero(strokes, rng: np.random.Generator) -> list:
    """Return a zero's strokes with a diagonal stroke through it: Ø, as much of Europe and IBM's writers write zero.

    The UNIPEN test and validation institutions slash their zeros; the training writers
    hardly do, so a model reads Ø as 8, 6 or 4 — or as no digit at all. The slash runs from
    below left to above right (y down), past the loop by a random overhang, at a random slope.
    """
    low, size = _box(strokes)
    overhang = rng.uniform(0.0, 0.25, 2)
    start = low + size * [rng.uniform(-0.25, 0.2) - overhang[0], 1.0 + overhang[1] * 0.8]
    end = low + size * [rng.uniform(0.8, 1.25) + overhang[0], rng.uniform(-0.05, 0.2) - overhang[1]]
    return [*strokes, _pen_line(start, end, size, rng)]


def bar_zero(strokes, rng: np.random.Generator) -> list:
    """Return a zero's strokes with a level bar across its middle, θ: the other way zeros are told from the letter O.

    A model that knows only open zeros and slashed ones reads θ as 8 (a loop with a waist).
    The bar crosses the loop between 35 % and 65 % of its height and sticks out on both sides.
    """
    low, size = _box(strokes)
    height = rng.uniform(0.35, 0.65)
    tilt = rng.uniform(-0.08, 0.08)
    start = low + size * [-rng.uniform(0.05, 0.35), height + tilt]
    end = low + size * [1.0 + rng.uniform(0.05, 0.35), height - tilt]
    return [*strokes, _pen_line(start, end, size, rng)]


def upright_slash_zero(strokes, rng: np.random.Generator) -> list:
    """Return a zero's strokes with a nearly upright stroke through it, past its top and bottom: φ.

    Some writers strike the zero from above to below rather than across; a model that knows
    only the rising slash reads that φ as a 9 (a loop on a stem) or an 8. The stroke leans at
    most 15° from upright and sticks out 5–35 % of the height above and below the loop.
    """
    low, size = _box(strokes)
    lean = np.tan(np.radians(rng.uniform(-15.0, 15.0)))
    centre = low[0] + size[0] * rng.uniform(0.4, 0.6)
    above, below = rng.uniform(0.05, 0.35, 2)
    start = np.array([centre + lean * size[1] * (0.5 + above), low[1] - above * size[1]])
    end = np.array([centre - lean * size[1] * (0.5 + below), low[1] + (1.0 + below) * size[1]])
    return [*strokes, _pen_line(start, end, size, rng)]


def flag_one(strokes, rng: np.random.Generator) -> list:
    """Return a one's strokes with a long flag: a rising lead-in stroke into the top of the stem, and no other flag.

    In much of Europe a one starts far down on the left and climbs to the top of its stem.
    The training writers draw short flags or none, so a model reads the long-flagged one as a
    7 whose stem stands upright. The flag is 30–75 % of the one's height, rising at 10–45°;
    whatever the writer drew before reaching the top (their own flag) is replaced by it.
    """
    low, size = _box(strokes)
    stroke_index = min(range(len(strokes)), key=lambda k: strokes[k][:, 1].min())
    stroke = strokes[stroke_index]
    top = int(np.argmin(stroke[:, 1]))
    if top > len(stroke) // 2:  # drawn upwards: read it from the top so the stem follows the flag
        stroke, top = stroke[::-1], len(stroke) - 1 - top
    stem = stroke[top:]
    length = size[1] * rng.uniform(0.3, 0.75)
    angle = np.radians(rng.uniform(10.0, 45.0))
    start = stem[0] + length * np.array([-np.cos(angle), np.sin(angle)])  # y down: below and left of the top
    flag = _pen_line(start, stem[0], size, rng)[:-1]  # its last point is the stem's top
    return [*strokes[:stroke_index], np.concatenate([flag, stem]).astype(np.float32), *strokes[stroke_index + 1:]]


def foot_one(strokes, rng: np.random.Generator) -> list:
    """Return a one with a long flag (``flag_one``) and a level foot under its stem: the one of much of Europe.

    With flag and foot the one is drawn as its writers learnt it at school; a model that has
    met flags only on footless ones reads the pair as a 7 with a bar. The foot is a separate
    stroke centred near the stem's lowest point, 15–40 % of the height out to each side.
    """
    flagged = flag_one(strokes, rng)
    points = np.concatenate(flagged)
    _, size = _box(flagged)
    bottom = points[np.argmax(points[:, 1])]
    left, right = rng.uniform(0.15, 0.4, 2) * size[1]
    tilt = rng.uniform(-0.04, 0.04) * size[1]
    start = bottom + [-left, tilt]
    end = bottom + [right, -tilt]
    return [*flagged, _pen_line(start, end, size, rng)]


def _box(strokes):
    """Return (low corner, size) of the strokes' bounding box, the size at least one unit each way."""
    points = np.concatenate(strokes)
    low = points.min(axis=0)
    return low, np.maximum(points.max(axis=0) - low, 1.0)


def _pen_line(start, end, size, rng: np.random.Generator) -> np.ndarray:
    """Return 12 pen points from ``start`` to ``end`` with a little tremor, as a hand draws a straight stroke."""
    return (np.linspace(start, end, 12) + rng.normal(0.0, 0.01, (12, 2)) * size).astype(np.float32)


class Style(NamedTuple):
    """A writing style drawn into a share of the training digits: how, on which digit, and its cache-name word."""

    draw: Callable
    digit: int
    word: str


# The styles by name: what ``styled_jobs`` may pick for a job.
STYLES = {
    "slash": Style(slash_zero, 0, "slashed"),
    "bar": Style(bar_zero, 0, "barred"),
    "flag": Style(flag_one, 1, "flagged"),
    "upright": Style(upright_slash_zero, 0, "upright"),
    "foot": Style(foot_one, 1, "footed"),
}


def _render_one(job):
    strokes, seed, distort, *style = job
    rng = np.random.default_rng(seed)
    condition = random_condition(rng)
    if distort:
        strokes = distort_strokes(strokes, rng)
    if style and style[0]:
        strokes = STYLES[style[0]].draw(strokes, rng)
    return preprocess(render(strokes, condition))


def styled_jobs(jobs, labels, shares, seed):
    """Return ``jobs`` with a style name: of the digits a style applies to, its share (from ``shares``) is drawn so.

    ``shares`` maps style names (``STYLES``) to shares; styles of one digit are exclusive (a
    zero is slashed or barred, never both). No share: the jobs as they were.
    """
    shares = {style: share for style, share in shares.items() if share}
    if not shares:
        return jobs
    picks = np.random.default_rng((seed, 2)).random(len(jobs))
    chosen = [""] * len(jobs)
    for index, (label, pick) in enumerate(zip(labels, picks)):
        bound = 0.0
        for style, share in shares.items():
            if STYLES[style].digit != label:
                continue
            bound += share
            if pick < bound:
                chosen[index] = style
                break
    return [(*job, style) for job, style in zip(jobs, chosen)]


def style_key(shares) -> str:
    """Return the cache-name part for ``shares`` ("_slashed0.3_flagged0.3"); empty when no style is drawn."""
    return "".join(f"_{STYLES[style].word}{share:g}" for style, share in shares.items() if share)


def drawn_training_digits(copies=4, seed=0, path=None, limit=None, processes=None, distort=True,
                          exclude=HELD_OUT_WRITERS, styles=None):
    """Return (x, y): ``copies`` random renders of every digit by the writers not in ``exclude``.

    With ``distort``, each render's strokes first go through ``distort_strokes``; ``styles``
    ({style: share}, ``styled_jobs``) draws that share of the zeros slashed or barred and of
    the ones flagged.
    """
    if copies <= 0:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
    digits, labels, writers = load_pendigits(path)
    keep = np.flatnonzero(~np.isin(writers, exclude))
    if limit:
        keep = keep[:limit]
    excluded = "" if tuple(exclude) == HELD_OUT_WRITERS else "_without" + "-".join(map(str, exclude))
    distorted = "_distort" if distort else ""
    cache = CACHE / (f"drawn_seed{seed}_copies{copies}_n{len(keep)}{distorted}{excluded}"
                     f"{style_key(styles or {})}_{code_key()}.npz")
    if cache.exists():
        with np.load(cache) as data:
            return data["x"], data["y"]
    jobs = [(digits[i], (seed, copy, int(i)), distort) for copy in range(copies) for i in keep]
    y = np.array([labels[i] for _, (_, _, i), _ in jobs], dtype=np.int64)
    return _render_and_cache(styled_jobs(jobs, y, styles or {}, seed), y, cache, processes)


def _render_and_cache(jobs, y, cache, processes=None):
    """Render every (strokes, seed, distort) job through preprocess, save (x, y) in ``cache``; return them."""
    x = np.stack(render_all(_render_one, jobs, processes))
    save_cache(cache, x=x, y=y)
    return x, y


def render_all(render_one, jobs, processes=None) -> list:
    """Return ``render_one(job)`` for every job, in a pool of processes when there are many (rendering is slow)."""
    processes = processes or min(2, os.cpu_count() or 1)
    if len(jobs) > 200 and processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return pool.map(render_one, jobs, chunksize=64)
    return [render_one(job) for job in jobs]


def save_cache(cache: Path, **arrays) -> None:
    """Write ``arrays`` to ``cache`` through a temporary file renamed into place: a killed run leaves no half file."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    with open(partial, "wb") as file:
        np.savez_compressed(file, **arrays)
    os.replace(partial, cache)


def unipen_training_digits(copies=4, seed=0, path=None, limit=None, processes=None, distort=True, styles=None):
    """Return (x, y): ``copies`` random renders of every UNIPEN digit of the training institutions.

    Rendered, distorted and preprocessed exactly as the pendigits training writers are, so the
    two pen sets teach the same canvas conditions; the test and validation institutions
    (training/unipen.py) are never loaded into the result.
    """
    if copies <= 0:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
    digits, labels, institutions = load_unipen(path)
    keep = split_indices(institutions, "train")
    if limit:
        keep = keep[:limit]
    held = "-".join(TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS)
    distorted = "_distort" if distort else ""
    cache = CACHE / (f"unipen_seed{seed}_copies{copies}_n{len(keep)}{distorted}_without-{held}"
                     f"{style_key(styles or {})}_{code_key(unipen)}.npz")
    if cache.exists():
        with np.load(cache) as data:
            return data["x"], data["y"]
    # The trailing 1 keeps these seeds apart from pendigits' (seed, copy, index) ones.
    jobs = [(digits[i], (seed, copy, int(i), 1), distort) for copy in range(copies) for i in keep]
    y = labels[[i for _ in range(copies) for i in keep]].astype(np.int64)
    return _render_and_cache(styled_jobs(jobs, y, styles or {}, seed), y, cache, processes)
