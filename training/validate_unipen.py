"""Compare saved models on the UNIPEN validation institution, to choose without reading the test ones.

    python -m training.validate_unipen weights/cnn.json /tmp/run/cnn.json …

Each manifest's model reads the validation institutions (training/unipen.py:
VALIDATION_INSTITUTIONS) rendered under every benchmark condition — the same renders and
preprocessing ``bench.accuracy`` uses — and prints one Markdown row: mean and worst
condition, errors, and MNIST test accuracy (reported so a candidate that forgets MNIST is
seen; it is a target, not what a choice is made on).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.heldout import unipen_arrays  # noqa: E402
from digitrec.manifest import read as read_manifest  # noqa: E402
from digitrec.registry import model_class  # noqa: E402
from training.data import load_mnist  # noqa: E402
from training.unipen import VALIDATION_INSTITUTIONS  # noqa: E402


def read(manifest, validation, x_test, y_test):
    """Return one model's figures on the validation renders and MNIST test as a dict."""
    model = model_class(read_manifest(manifest)["model_id"]).load(manifest)
    rights = {name: model.predict_labels(x) == y for name, (x, y) in validation.items()}
    per_condition = {name: float(right.mean()) for name, right in rights.items()}
    return {
        "mean": float(np.mean(list(per_condition.values()))),
        "worst": min(per_condition.values()),
        "errors": int(sum((~right).sum() for right in rights.values())),
        "reads": int(sum(len(right) for right in rights.values())),
        "mnist": float((model.predict_labels(x_test) == y_test).mean()),
        "by_condition": per_condition,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--unipen", help="path of unipen_digits.npz")
    parser.add_argument("--mnist", help="path of mnist.npz")
    args = parser.parse_args(argv)
    validation = unipen_arrays("validation", args.unipen)
    _, _, x_test, y_test = load_mnist(args.mnist)
    print(f"UNIPEN validation institutions {', '.join(VALIDATION_INSTITUTIONS)}, every benchmark condition\n")
    print("| weights | validation mean | worst condition | errors | MNIST test |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = {}
    for manifest in args.manifests:
        row = rows[str(manifest)] = read(manifest, validation, x_test, y_test)
        print(f"| {manifest} | {row['mean']:.2%} | {row['worst']:.2%} | {row['errors']}/{row['reads']} "
              f"| {row['mnist']:.2%} |", flush=True)
    return rows


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
