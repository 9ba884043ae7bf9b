"""Compare candidate weights on validation drawings only, to choose which to ship.

    python -m training.compare_candidates weights/cnn.json /tmp/run/ck/epoch1/cnn.json ...

For each manifest, one Markdown row: digit accuracy on the validation digits of
``training/verdict_sets.py`` (pendigits writers 21–24 and UNIPEN's validation institution gmd,
each digit under one benchmark condition in turn) and, per validation non-digit source (gmd's
letters, new drawings of the training shape kinds, new scribbles), the share the model's
"not a digit" evidence rejects while letting through all but 0.5 % of those digits, and at
the verdict files' rule (``training.verdicts.operating_threshold``: also all but 0.1 % of the
digits read right), where a verdict file reading that output once will answer: the network's
own 11th output, or for a ten-output network one minus its top probability. The test
writers and institutions are never read.
"""

from __future__ import annotations

import argparse

import numpy as np

from digitrec.manifest import read as read_manifest
from digitrec.registry import model_class

from .verdict_sets import digit_sets, non_digit_sets
from .verdicts import auroc, operating_threshold, rejection_at


def non_digit_score(outputs):
    """Return the 11th output, or for ten outputs one minus the top probability (the plain baseline)."""
    return outputs[:, 10] if outputs.shape[1] > 10 else 1 - outputs.max(axis=1)


def row(manifest, digits, others):
    """Return one Markdown row of validation figures for the weights of ``manifest``."""
    model = model_class(read_manifest(manifest)["model_id"]).load(manifest)
    outputs = lambda x: np.concatenate([model.predict_outputs(x[i: i + 1000]) for i in range(0, len(x), 1000)])  # noqa: E731
    cells, digit_scores, right = [], [], []
    for x, _, labels, _ in digits.values():
        read = outputs(x)
        right.append(read[:, :10].argmax(axis=1) == labels)
        cells.append(f"{right[-1].mean():.2%}")
        digit_scores.append(non_digit_score(read))
    digit_scores, right = np.concatenate(digit_scores), np.concatenate(right)
    operating = operating_threshold(digit_scores, right)
    for x, _ in others.values():
        scores = non_digit_score(outputs(x))
        cells.append(f"{rejection_at(digit_scores, scores)[1]:.1%} / {np.mean(scores >= operating):.1%} "
                     f"({auroc(digit_scores, scores):.3f})")
    return f"| {manifest} | " + " | ".join(cells) + " |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args(argv)
    digits, others = digit_sets("validation"), non_digit_sets("validation")
    print("| weights | " + " | ".join(f"{name} digits" for name in digits) + " | "
          + " | ".join(f"{name} rejected at 0.5 % / at the rule (AUROC)" for name in others) + " |")
    print("| --- |" + " ---: |" * (len(digits) + len(others)))
    for manifest in args.manifests:
        print(row(manifest, digits, others), flush=True)


if __name__ == "__main__":
    main()
