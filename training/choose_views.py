"""Choose a model's test-time views on validation writers, and with ``--write`` store them in its manifest.

    python -m training.choose_views weights/dense.json weights/numpy.json [--write]

Each candidate set of views (digitrec/views.py) reads the UNIPEN validation institution and
pendigits writers 21–24 under every benchmark condition (the renders ``training.validate_unipen``
and ``training.validate`` read); one Markdown row per candidate gives the errors of each and
the time a single drawing takes to read. The rule, fixed before any test figure was read:
the candidate with the fewest UNIPEN validation errors, among those that make no more
pendigits validation errors than reading once, wins only if it saves at least a tenth of
reading once's UNIPEN errors (fewer is noise on one institution); a tie goes to fewer views.
The test writers and institutions are never read.

Then the gate: the chosen views are read again with each of ``GATES`` as
``test_time_views_below`` (the other views read only where the first reading's top output is
below it), and the lowest gate at which neither validation set makes more errors than
reading every view always is kept; a sure drawing then costs one reading. After ``--write``,
refit the verdict files (``python -m training.verdicts``): a file fitted at other views or
another gate is not used.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from digitrec import manifest as manifests
from digitrec.registry import model_class
from digitrec import views as test_time_views
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
    "shifted 1 px each way": (IDENTITY, (0.0, 1.0, 1.0, 0.0), (0.0, 1.0, -1.0, 0.0), (0.0, 1.0, 0.0, 1.0),
                              (0.0, 1.0, 0.0, -1.0)),
}
CANDIDATES = {name: test_time_views.check_views(views) for name, views in CANDIDATES.items()}
GATES = (0.5, 0.8, 0.9, 0.95, 0.99)  # top output below which the other views are read; lowest first, the cheapest
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
    """Return (views, gate) the rules pick for ``model``, printing one row per candidate and per gate."""
    rows = {}
    first_condition = next(iter(unipen.values()))[0]
    model.views_below = None
    for name, views in CANDIDATES.items():
        model.views = views
        rows[name] = (errors(model, unipen), errors(model, pendigits), single_read_ms(model, first_condition))
        log(f"| {model.model_id} | {name} | always | {rows[name][0]} | {rows[name][1]} | {rows[name][2]:.2f} |",
            flush=True)
    name = pick({name: row[:2] for name, row in rows.items()})
    model.views = CANDIDATES[name]
    if name == "once":
        return model.views, None
    gated = {}
    for gate in GATES:
        model.views_below = gate
        gated[gate] = (errors(model, unipen), errors(model, pendigits), single_read_ms(model, first_condition))
        log(f"| {model.model_id} | {name} | below {gate:g} | {gated[gate][0]} | {gated[gate][1]} "
            f"| {gated[gate][2]:.2f} |", flush=True)
    return model.views, pick_gate({gate: row[:2] for gate, row in gated.items()}, rows[name][:2])


def pick(rows) -> str:
    """Return the name the rule picks from ``rows`` {name: (UNIPEN validation errors, pendigits validation errors)}."""
    once_unipen, once_pendigits = rows["once"]
    allowed = [name for name, (_, pendigits_errors) in rows.items() if pendigits_errors <= once_pendigits]
    best = min(allowed, key=lambda name: (rows[name][0], len(CANDIDATES[name])))
    return best if rows[best][0] <= (1 - MIN_SAVED) * once_unipen else "once"


def pick_gate(rows, always) -> float | None:
    """Return the lowest gate in ``rows`` {gate: (UNIPEN errors, pendigits errors)} no worse on either than ``always``.

    None when every gate loses a digit somewhere: then every view is read always.
    """
    fit = [gate for gate, row in rows.items() if row[0] <= always[0] and row[1] <= always[1]]
    return min(fit) if fit else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--write", action="store_true", help="store the chosen views in each manifest")
    args = parser.parse_args(argv)
    unipen, pendigits = unipen_arrays("validation"), drawn_arrays(writers=VALIDATION_WRITERS)
    reads = sum(len(y) for _, y in unipen.values()), sum(len(y) for _, y in pendigits.values())
    print(f"| model | views | read | UNIPEN validation errors /{reads[0]:,} | pendigits 21–24 errors /{reads[1]:,} "
          "| one drawing, ms (p50) |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for path in args.manifests:
        model = model_class(manifests.read(path)["model_id"]).load(path)
        views, gate = choose(model, unipen, pendigits)
        name = next(name for name, candidate in CANDIDATES.items() if candidate == views)
        when = "" if gate is None or name == "once" else f", read below {gate:g}"
        print(f"\n{model.model_id}: chosen {name}{when}" + (f", written to {path}" if args.write else ""), flush=True)
        if args.write:
            manifest = manifests.read(path)
            manifest.pop("test_time_views", None)
            manifest.pop("test_time_views_below", None)
            manifests.write(path, {**manifest, **test_time_views.to_json(views, gate)})
        print()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
