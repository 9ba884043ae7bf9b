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
``test_time_views_below`` (the other views read only where the first reading's most likely
digit is below it). The lowest gate is kept at which neither validation set makes more
errors than reading every view always, and no more validation digits are "unsure" (the
calibrated top below ``digitrec.read``'s line, with the temperature fitted on that gate's
probabilities, as ``training.verdicts`` fits it): a sure digit then costs one reading, and
the verdicts do not change. With no such gate every view is read always. After ``--write``,
refit the verdict files (``python -m training.verdicts``): a file fitted at other views or
another gate is not used.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from digitrec import manifest as manifests
from digitrec.read import calibrate
from digitrec.registry import model_class
from digitrec import views as test_time_views
from digitrec.views import IDENTITY

from .heldout import drawn_arrays, unipen_arrays
from .verdict_sets import VALIDATION_WRITERS
from .verdicts import UNSURE_BELOW, fit_temperature

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
GATES = (0.5, 0.8, 0.9, 0.95, 0.99)  # top digit below which the other views are read; lowest first, the cheapest
MIN_SAVED = 0.1  # a candidate must save this share of reading once's UNIPEN validation errors


def outcomes(model, unipen, pendigits) -> tuple:
    """Return (UNIPEN errors, pendigits errors, share "unsure") of the model reading every condition's digits.

    "Unsure" is ``digitrec.read``'s: the top probability, calibrated by a temperature fitted
    on these very readings, below ``UNSURE_BELOW``.
    """
    readings = [(model.predict_proba(x), y) for sets in (unipen, pendigits) for x, y in sets.values()]
    probs, labels = np.concatenate([p for p, _ in readings]), np.concatenate([y for _, y in readings])
    wrong = probs.argmax(axis=1) != labels
    first = sum(len(y) for _, y in unipen.values())
    unsure = calibrate(probs, fit_temperature(probs, labels)).max(axis=1) < UNSURE_BELOW
    return int(wrong[:first].sum()), int(wrong[first:].sum()), float(unsure.mean())


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

    def measure(name, read):
        row = (*outcomes(model, unipen, pendigits), single_read_ms(model, first_condition))
        log(f"| {model.model_id} | {name} | {read} | {row[0]} | {row[1]} | {row[2]:.2%} | {row[3]:.2f} |", flush=True)
        return row

    model.views_below = None
    for name, views in CANDIDATES.items():
        model.views = views
        rows[name] = measure(name, "always")
    name = pick({name: row[:2] for name, row in rows.items()})
    model.views = CANDIDATES[name]
    if name == "once":
        return model.views, None
    gated = {}
    for gate in GATES:
        model.views_below = gate
        gated[gate] = measure(name, f"below {gate:g}")
    return model.views, pick_gate({gate: row[:3] for gate, row in gated.items()}, rows[name][:3])


def pick(rows) -> str:
    """Return the name the rule picks from ``rows`` {name: (UNIPEN validation errors, pendigits validation errors)}."""
    once_unipen, once_pendigits = rows["once"]
    allowed = [name for name, (_, pendigits_errors) in rows.items() if pendigits_errors <= once_pendigits]
    best = min(allowed, key=lambda name: (rows[name][0], len(CANDIDATES[name])))
    return best if rows[best][0] <= (1 - MIN_SAVED) * once_unipen else "once"


def pick_gate(rows, always) -> float | None:
    """Return the lowest gate in ``rows`` {gate: (UNIPEN errors, pendigits errors, share unsure)} no worse than ``always``.

    No worse on any of the three; None when every gate loses something: then every view is read always.
    """
    fit = [gate for gate, row in rows.items() if all(mine <= theirs for mine, theirs in zip(row, always))]
    return min(fit) if fit else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--write", action="store_true", help="store the chosen views in each manifest")
    args = parser.parse_args(argv)
    unipen, pendigits = unipen_arrays("validation"), drawn_arrays(writers=VALIDATION_WRITERS)
    reads = sum(len(y) for _, y in unipen.values()), sum(len(y) for _, y in pendigits.values())
    print(f"| model | views | read | UNIPEN validation errors /{reads[0]:,} | pendigits 21–24 errors /{reads[1]:,} "
          "| unsure | one drawing, ms (p50) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for path in args.manifests:
        model = model_class(manifests.read(path)["model_id"]).load(path)
        views, gate = choose(model, unipen, pendigits)
        name = next(name for name, candidate in CANDIDATES.items() if candidate == views)
        when = "" if gate is None else f", read below {gate:g}"
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
