"""Choose a model's test-time views on validation writers, and with ``--write`` store them in its manifest.

    python -m training.choose_views weights/dense.json weights/numpy.json [--write]

Each candidate set of views (digitrec/views.py) reads the UNIPEN validation institution and
pendigits writers 21–24 under every benchmark condition (the renders ``training.validate_unipen``
and ``training.validate`` read); one Markdown row per candidate gives the errors of each and
the time a single drawing takes to read. The rule, fixed before any test figure was read:
the candidate with the fewest UNIPEN validation errors, among those that make no more
pendigits validation errors than reading once, wins only if it saves at least a tenth of
reading once's UNIPEN errors (fewer is noise on one institution); a tie goes to fewer views.
The test writers and institutions are never read. After ``--write``, refit the verdict files
(``python -m training.verdicts``): a file fitted at other views is not used.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from digitrec import manifest as manifests
from digitrec.registry import model_class
from digitrec.views import IDENTITY

from .heldout import drawn_arrays, unipen_arrays
from .verdict_sets import VALIDATION_WRITERS

CANDIDATES = {  # name: views; the identity first, so each view set is the image plus what it adds
    "once": (IDENTITY,),
    "turned ±4°": (IDENTITY, (4.0, 1.0), (-4.0, 1.0)),
    "turned ±8°": (IDENTITY, (8.0, 1.0), (-8.0, 1.0)),
    "turned ±12°": (IDENTITY, (12.0, 1.0), (-12.0, 1.0)),
    "scaled 0.9, 1.1": (IDENTITY, (0.0, 0.9), (0.0, 1.1)),
    "turned ±8°, scaled 0.9": (IDENTITY, (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9)),
    "turned ±8°, scaled 0.9, 1.1": (IDENTITY, (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9), (0.0, 1.1)),
}
MIN_SAVED = 0.1  # a candidate must save this share of reading once's UNIPEN validation errors


def errors(model, sets) -> int:
    """Return how many of every condition's digits in ``sets`` the model misreads."""
    return int(sum((model.predict_labels(x) != y).sum() for x, y in sets.values()))


def single_read_ms(model, x, repeats=200) -> float:
    """Return the median time of reading one image, in milliseconds."""
    for image in x[:20]:
        model.predict_proba(image[None])
    times = []
    for image in x[np.arange(repeats) % len(x)]:
        started = time.perf_counter()
        model.predict_proba(image[None])
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def choose(model, unipen, pendigits, log=print) -> tuple:
    """Return the views the rule picks for ``model``, printing one row per candidate."""
    rows = {}
    for name, views in CANDIDATES.items():
        model.views = views
        rows[name] = (errors(model, unipen), errors(model, pendigits), single_read_ms(model, next(iter(unipen.values()))[0]))
        log(f"| {model.model_id} | {name} | {rows[name][0]} | {rows[name][1]} | {rows[name][2]:.2f} |", flush=True)
    return CANDIDATES[pick({name: row[:2] for name, row in rows.items()})]


def pick(rows) -> str:
    """Return the name the rule picks from ``rows`` {name: (UNIPEN validation errors, pendigits validation errors)}."""
    once_unipen, once_pendigits = rows["once"]
    allowed = [name for name, (_, pendigits_errors) in rows.items() if pendigits_errors <= once_pendigits]
    best = min(allowed, key=lambda name: (rows[name][0], len(CANDIDATES[name])))
    return best if rows[best][0] <= (1 - MIN_SAVED) * once_unipen else "once"

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--write", action="store_true", help="store the chosen views in each manifest")
    args = parser.parse_args(argv)
    unipen, pendigits = unipen_arrays("validation"), drawn_arrays(writers=VALIDATION_WRITERS)
    reads = sum(len(y) for _, y in unipen.values()), sum(len(y) for _, y in pendigits.values())
    print(f"| model | views | UNIPEN validation errors /{reads[0]:,} | pendigits 21–24 errors /{reads[1]:,} "
          "| one drawing, ms (p50) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for path in args.manifests:
        model = model_class(manifests.read(path)["model_id"]).load(path)
        views = choose(model, unipen, pendigits)
        name = next(name for name, candidate in CANDIDATES.items() if candidate == views)
        print(f"\n{model.model_id}: chosen {name}" + (f", written to {path}" if args.write else ""), flush=True)
        if args.write:
            manifest = manifests.read(path)
            manifest.pop("test_time_views", None)
            if views != (IDENTITY,):
                manifest["test_time_views"] = [list(view) for view in views]
            manifests.write(path, manifest)
        print()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
