"""Measure ``digitrec.read``'s verdicts on held-out drawings: the table in docs/verdicts.md.

    python -m bench.verdicts             # prints the tables (a few minutes on 2 cores; renders are cached)
    python -m bench.verdicts --figure    # … and writes docs/verdicts-tradeoff.png (validation curves)

Held-out digits: pendigits writers 25–30 (each under two benchmark conditions) and the UNIPEN
test institutions (apa, art, ibm; every condition in turn), rendered as ``bench.accuracy``
renders them. Non-digits: the test institutions' letters that look like no digit, shape kinds
never trained on, new scribbles. Pairs: two held-out digits side by side with a gap. Every
drawing is decided by ``Verdicts.decide`` on the model's ``features_and_proba`` and the layout's
``digits_side_by_side`` — what ``digitrec.read`` does, in batches. Accuracy "after" counts a digit read
right when the verdict still names it ("digit" or "unsure" with it as the most likely digit).
The last column times ``read`` against ``predict`` in-process on 800×800 held-out canvases.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import digitrec  # noqa: E402
from digitrec.read import digits_side_by_side, verdicts_for  # noqa: E402
from training.verdict_sets import digit_sets, non_digit_sets, pair_set  # noqa: E402
from training.verdicts import expected_calibration_error, features_of  # noqa: E402

TWO_STROKE_DIGITS = (4, 5, 7)


def parts_of(views, model_id):
    return np.array([digits_side_by_side(v / 255.0, model_id) for v in views])


def decide(model_id, x, parts):
    """Return (verdicts, probs, calibrated probs) for preprocessed images ``x`` whose layouts have ``parts`` parts."""
    model = digitrec.get_model(model_id)
    verdicts = verdicts_for(model_id, model)
    if verdicts is None:
        raise SystemExit(f"{model_id}: no verdict file fits the weights; run python -m training.verdicts first")
    features, probs = features_of(model, x)
    decided, calibrated = verdicts.decide(probs, features, parts)
    return decided, probs, calibrated


def latency(model_id, canvases, repeats=100):
    """Return (predict p50 ms, read p50 ms), alternating calls so load on the machine hits both alike."""
    times = {"predict": [], "read": []}
    for function in (digitrec.predict, digitrec.read):  # warm up
        function(canvases[0], model_id)
    for i in range(repeats):
        canvas = canvases[i % len(canvases)]
        for name, function in (("predict", digitrec.predict), ("read", digitrec.read)):
            started = time.perf_counter()
            function(canvas, model_id)
            times[name].append(time.perf_counter() - started)
    return float(np.median(times["predict"]) * 1000), float(np.median(times["read"]) * 1000)


def canvases(count=20):
    from training.strokes import HELD_OUT_WRITERS, Condition, load_pendigits, render

    digits, _, writers = load_pendigits()
    return [render(digits[i], Condition()) for i in np.flatnonzero(np.isin(writers, HELD_OUT_WRITERS))[:count]]


def figure(path):
    """Draw, per model, non-digits rejected against digits rejected as the threshold moves (validation sets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    val_digits, val_others = digit_sets("validation"), non_digit_sets("validation")
    fig, ax = plt.subplots(figsize=(6, 4))
    for model_id in digitrec.MODEL_IDS:
        verdicts = verdicts_for(model_id)
        model = digitrec.get_model(model_id)
        d = verdicts.non_digit_probability(np.concatenate([features_of(model, x)[0] for x, *_ in val_digits.values()]))
        o = verdicts.non_digit_probability(np.concatenate([features_of(model, x)[0] for x, _ in val_others.values()]))
        thresholds = np.quantile(d, 1 - np.geomspace(1e-3, 0.2, 60))
        ax.plot([np.mean(d >= t) * 100 for t in thresholds], [np.mean(o >= t) * 100 for t in thresholds], label=model_id)
        ax.plot([np.mean(d >= verdicts.reject_threshold) * 100], [np.mean(o >= verdicts.reject_threshold) * 100], "ko")
    ax.axvline(0.5, color="grey", ls=":")
    ax.axhline(90, color="grey", ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("validation digits answered 'not a digit' (%)")
    ax.set_ylabel("validation non-digits answered 'not a digit' (%)")
    ax.set_title("Trade-off (dots: the shipped thresholds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figure", action="store_true", help="also write docs/verdicts-tradeoff.png")
    parser.add_argument("--repeats", type=int, default=100, help="read/predict calls per model for the timing")
    args = parser.parse_args(argv)
    digits = digit_sets("test")
    others = non_digit_sets("test")
    pairs_x, pairs_views, _ = pair_set()
    digit_x = np.concatenate([x for x, *_ in digits.values()])
    digit_y = np.concatenate([y for _, _, y, _ in digits.values()])
    digit_views = np.concatenate([v for _, v, _, _ in digits.values()])
    strokes = np.concatenate([s for *_, s in digits.values()])
    two_stroke = np.isin(digit_y, TWO_STROKE_DIGITS) & (strokes >= 2)
    pictures = canvases()

    sources = list(others)
    print(f"Held-out digits: {len(digit_y)} ({', '.join(f'{k} {len(v[0])}' for k, v in digits.items())}); "
          f"non-digits: {', '.join(f'{k} {len(v[0])}' for k, v in others.items())}; pairs {len(pairs_x)}; "
          f"two-stroke 4/5/7: {int(two_stroke.sum())}\n")
    print("| model | accuracy before | after | not a digit | unsure | several | errors caught | ECE before | ECE after "
          "| pairs: several | two-stroke 4/5/7: several | predict p50 ms | read p50 ms |")
    print("| --- " + "| ---: " * 12 + "|")
    rejection_rows = []
    for model_id in digitrec.MODEL_IDS:
        verdict, probs, calibrated = decide(model_id, digit_x, parts_of(digit_views, model_id))
        before = probs.argmax(axis=1) == digit_y
        named = np.isin(verdict, ("digit", "unsure")) & (calibrated.argmax(axis=1) == digit_y)
        flagged = verdict != "digit"
        caught = float(np.mean(flagged[~before])) if (~before).any() else float("nan")
        pair_verdict, _, _ = decide(model_id, pairs_x, parts_of(pairs_views, model_id))
        p50_predict, p50_read = latency(model_id, pictures, args.repeats)
        print(f"| {model_id} | {before.mean():.2%} | {named.mean():.2%} | {np.mean(verdict == 'not_a_digit'):.2%} "
              f"| {np.mean(verdict == 'unsure'):.2%} | {np.mean(verdict == 'several'):.2%} | {caught:.0%} "
              f"| {expected_calibration_error(probs, digit_y):.2%} | {expected_calibration_error(calibrated, digit_y):.2%} "
              f"| {np.mean(pair_verdict == 'several'):.1%} | {np.mean(verdict[two_stroke] == 'several'):.1%} "
              f"| {p50_predict:.2f} | {p50_read:.2f} |")
        row = []
        for name in sources:
            answered, _, _ = decide(model_id, others[name][0], parts_of(others[name][1], model_id))
            row.append(np.mean(answered == "not_a_digit"))
        rejection_rows.append((model_id, row))
    print("\nNon-digits answered \"not a digit\" (held out: test institutions' letters, unseen shape kinds, new scribbles)\n")
    print("| model | " + " | ".join(sources) + " |")
    print("| --- " + "| ---: " * len(sources) + "|")
    for model_id, row in rejection_rows:
        print(f"| {model_id} | " + " | ".join(f"{r:.1%}" for r in row) + " |")
    for model_id in digitrec.MODEL_IDS:
        v = verdicts_for(model_id)
        print(f"\n{model_id}: temperature {v.temperature:.3f}, not a digit when p ≥ {v.reject_threshold:.4f}, "
              f"unsure when calibrated top < {v.unsure_threshold:.4f}; fitted on weights {v.weights_sha256[:12]}…", end="")
    print()
    if args.figure:
        figure(ROOT / "docs" / "verdicts-tradeoff.png")


if __name__ == "__main__":
    main()
