"""The held-out drawings every measurement reads: pendigits writers 25–30 and the UNIPEN test institutions.

Each set is rendered on the 800×800 canvas under every condition of BENCHMARK_CONDITIONS
and preprocessed by the app's pipeline once, then kept as arrays (cached in
training/.cache under a hash of the rendering and preprocessing code), so a model's
``predict_proba`` reads exactly what ``digitrec.predict`` would be given. ``bench.accuracy``
reports them; training and fine-tuning measure before and after on them.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from .strokes import BENCHMARK_CONDITIONS, HELD_OUT_WRITERS, load_pendigits, render
from .unipen import load_unipen, split_indices


def held_out_digits(path=None, limit=None, writers=HELD_OUT_WRITERS):
    """Return the digits and labels of ``writers`` (the held-out ones), the first ``limit`` per writer if given."""
    digits, labels, owners = load_pendigits(path)
    chosen = []
    for writer in writers:
        index = np.flatnonzero(owners == writer)
        chosen.extend(index[:limit] if limit else index)
    return [digits[i] for i in chosen], labels[chosen]


def drawn_arrays(limit=None, path=None, writers=HELD_OUT_WRITERS):
    """Return {condition: (x float32 (N, 28, 28), y int64)}: the held-out drawings, preprocessed once.

    ``writers`` other than the held-out ones serve ``training/validate.py``, which reads
    training writers left out of its runs the same way.

    The same renders and preprocessing ``drawn_accuracy`` sends through ``digitrec.predict``,
    as arrays, so a model's ``predict_proba`` gives the same accuracy without re-rendering
    for every model or every evaluation (fine-tuning measures before and after). Cached in
    training/.cache under a hash of the rendering and preprocessing code.
    """
    who = "heldout" if tuple(writers) == HELD_OUT_WRITERS else "writers" + "-".join(map(str, writers))
    return condition_arrays(f"drawn_{who}_limit{limit or 'all'}", lambda: held_out_digits(path, limit, writers),
                            cache=path is None)


def unipen_digits(part="test", path=None):
    """Return the digits and labels of one part of the UNIPEN institution split (training/unipen.py)."""
    digits, labels, institutions = load_unipen(path)
    chosen = split_indices(institutions, part)
    return [digits[i] for i in chosen], labels[chosen]


def unipen_arrays(part="test", path=None):
    """Return {condition: (x, y)}: one UNIPEN part's digits rendered under every condition, preprocessed once.

    Read with ``predict_proba`` in batches, as ``drawn_arrays``: the same pixels
    ``digitrec.predict`` would be given, without 14,000 single-image calls per model.
    """
    from . import unipen

    return condition_arrays(f"unipen_{part}", lambda: unipen_digits(part, path), cache=path is None, also=(unipen,))


def condition_arrays(name, load, cache=True, also=()):
    """Render ``load()``'s digits under every benchmark condition and preprocess them; cache the arrays.

    The cache key hashes the rendering and preprocessing code (and the modules ``also``, which
    load the digits), so changing any of them re-renders.
    """
    from digitrec import preprocess as preprocess_module

    from .data import CACHE, code_key

    key = hashlib.sha256((code_key(*also) + repr(sorted(BENCHMARK_CONDITIONS.items()))).encode()).hexdigest()[:12]
    file = CACHE / f"{name}_{key}.npz"
    if cache and file.exists():
        with np.load(file) as data:
            return {name: (data[f"x{i}"], data["y"]) for i, name in enumerate(BENCHMARK_CONDITIONS)}
    digits, labels = load()
    arrays = {
        name: np.stack([preprocess_module.preprocess(render(strokes_, condition)) for strokes_ in digits])
        for name, condition in BENCHMARK_CONDITIONS.items()
    }
    if cache:
        CACHE.mkdir(exist_ok=True)
        partial = file.with_suffix(f".{os.getpid()}.tmp")  # renamed into place: readers never see half a file
        with open(partial, "wb") as out:
            np.savez_compressed(out, y=labels, **{f"x{i}": x for i, x in enumerate(arrays.values())})
        os.replace(partial, file)
    return {name: (x, labels) for name, x in arrays.items()}
