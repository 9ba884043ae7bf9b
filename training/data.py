"""Training data: MNIST, plus pen-drawn digits (pendigits and UNIPEN training writers) rendered like canvas input.

The drawn digits go through ``digitrec.preprocess`` — the very pipeline the app uses — so
the models learn from exactly what they will be given. Renders are cached in
``training/.cache`` because they take a minute or two.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np

from digitrec.preprocess import preprocess

from . import unipen
from .strokes import HELD_OUT_WRITERS, data_path, distort_strokes, load_pendigits, random_condition, render
from .unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS, load_unipen, split_indices

CACHE = Path(__file__).resolve().parent / ".cache"


def code_key(*modules) -> str:
    """Return a short hash of the rendering and preprocessing code (and ``modules``), for render cache names.

    A cached render is only valid for the code that made it: an edit to ``preprocess.py``
    or the renderer changes this key, so stale renders are never read.
    """
    import hashlib

    from digitrec import preprocess as preprocess_module

    from . import strokes

    code = b"".join(Path(m.__file__).read_bytes() for m in (preprocess_module, strokes, *modules))
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
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    size = np.maximum(high - low, 1.0)
    overhang = rng.uniform(0.0, 0.25, 2)
    start = low + size * [rng.uniform(-0.25, 0.2) - overhang[0], 1.0 + overhang[1] * 0.8]
    end = low + size * [rng.uniform(0.8, 1.25) + overhang[0], rng.uniform(-0.05, 0.2) - overhang[1]]
    slash = np.linspace(start, end, 12) + rng.normal(0.0, 0.01, (12, 2)) * size
    return [*strokes, slash.astype(np.float32)]


def _render_one(job):
    strokes, seed, distort, *slashed = job
    rng = np.random.default_rng(seed)
    condition = random_condition(rng)
    if distort:
        strokes = distort_strokes(strokes, rng)
    if slashed and slashed[0]:
        strokes = slash_zero(strokes, rng)
    return preprocess(render(strokes, condition))


def slashed_jobs(jobs, labels, share, seed):
    """Return ``jobs`` with a slash flag: ``share`` of the zeros (chosen from ``seed``) are drawn as Ø."""
    if not share:
        return jobs
    chosen = np.random.default_rng((seed, 2)).random(len(jobs)) < share
    return [(*job, bool(label == 0 and pick)) for job, label, pick in zip(jobs, labels, chosen)]


def drawn_training_digits(copies=4, seed=0, path=None, limit=None, processes=None, distort=True,
                          exclude=HELD_OUT_WRITERS, slashed=0.0):
    """Return (x, y): ``copies`` random renders of every digit by the writers not in ``exclude``.

    With ``distort``, each render's strokes first go through ``distort_strokes``; ``slashed``
    of the zeros get a slash (``slash_zero``).
    """
    if copies <= 0:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
    digits, labels, writers = load_pendigits(path)
    keep = np.flatnonzero(~np.isin(writers, exclude))
    if limit:
        keep = keep[:limit]
    excluded = "" if tuple(exclude) == HELD_OUT_WRITERS else "_without" + "-".join(map(str, exclude))
    distorted = "_distort" if distort else ""
    slash = f"_slashed{slashed:g}" if slashed else ""
    cache = CACHE / f"drawn_seed{seed}_copies{copies}_n{len(keep)}{distorted}{excluded}{slash}_{code_key()}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["x"], data["y"]
    jobs = [(digits[i], (seed, copy, int(i)), distort) for copy in range(copies) for i in keep]
    y = np.array([labels[i] for _, (_, _, i), _ in jobs], dtype=np.int64)
    return _render_and_cache(slashed_jobs(jobs, y, slashed, seed), y, cache, processes)


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
    CACHE.mkdir(exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    with open(partial, "wb") as file:
        np.savez_compressed(file, **arrays)
    os.replace(partial, cache)


def unipen_training_digits(copies=4, seed=0, path=None, limit=None, processes=None, distort=True, slashed=0.0):
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
    slash = f"_slashed{slashed:g}" if slashed else ""
    cache = CACHE / f"unipen_seed{seed}_copies{copies}_n{len(keep)}{distorted}_without-{held}{slash}_{code_key(unipen)}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["x"], data["y"]
    # The trailing 1 keeps these seeds apart from pendigits' (seed, copy, index) ones.
    jobs = [(digits[i], (seed, copy, int(i), 1), distort) for copy in range(copies) for i in keep]
    y = labels[[i for _ in range(copies) for i in keep]].astype(np.int64)
    return _render_and_cache(slashed_jobs(jobs, y, slashed, seed), y, cache, processes)
