"""Choose a training setting on writers the benchmark never reads: train without and with it, compare.

    python -m training.validate --seed 0

Writers 21–24 (``--writers``) are taken out of the drawn training part; a one-network CNN
is trained briefly (``--epochs``) on MNIST plus the other training writers' renders, once
with the strokes as drawn and once through ``training/strokes.py: distort_strokes``, and
each reads the left-out writers under every benchmark condition. The test writers
(HELD_OUT_WRITERS) are excluded from both runs and never read, so the choice cannot be
fitted to them. This is how the stroke distortion was chosen (docs/training.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.heldout import drawn_arrays  # noqa: E402
from training.augment import augment_batch  # noqa: E402
from training.strokes import HELD_OUT_WRITERS  # noqa: E402
from training.train import prepare_data  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, nargs="+", default=[21, 22, 23, 24], help="validation writers")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--copies", type=int, default=4, help="random renders of each training writer's digit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only this many MNIST images (smoke tests)")
    parser.add_argument("--mnist", help="path of mnist.npz")
    parser.add_argument("--pendigits", help="path of pendigits_train.npz")
    args = parser.parse_args(argv)
    if set(args.writers) & set(HELD_OUT_WRITERS) or not set(args.writers) <= set(range(1, 31)):
        parser.error(f"--writers must be pendigits writers 1–30 outside the test writers {HELD_OUT_WRITERS}")
    if args.epochs < 1 or args.copies < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--epochs, --copies and --limit must be positive")
    return args


def train_and_read(distort, args, validation):
    """Train a one-network CNN with or without stroke distortion; return its figures as a dict."""
    from digitrec.keras_cnn import KerasCNN

    x_train, y_train, x_test, y_test = prepare_data(
        args.mnist, args.pendigits, args.copies, args.seed, args.limit, distort=distort,
        exclude=HELD_OUT_WRITERS + tuple(args.writers),
    )
    model = KerasCNN.fresh(args.seed, members=1)
    defaults = KerasCNN.training_defaults
    model.fit(
        x_train, y_train, epochs=args.epochs, batch_size=defaults["batch_size"],
        learning_rate=defaults["learning_rate"], augment=augment_batch, seed=args.seed, validation=(x_test, y_test),
    )
    rights = [model.predict_labels(x) == y for x, y in validation.values()]
    per_condition = [float(right.mean()) for right in rights]
    return {
        "mean": float(np.mean(per_condition)),
        "worst": min(per_condition),
        "errors": int(sum((~right).sum() for right in rights)),
        "reads": int(sum(len(right) for right in rights)),
        "mnist": float((model.predict_labels(x_test) == y_test).mean()),
    }


def main(argv=None):
    args = parse_args(argv)
    validation = drawn_arrays(args.limit and max(2, args.limit // 100), args.pendigits, args.writers)
    reads = sum(len(y) for _, y in validation.values())
    print(f"validation: writers {args.writers}, {reads} reads", flush=True)
    rows = {}
    for name, distort in (("strokes as drawn", False), ("strokes distorted", True)):
        print(f"\n== {name}", flush=True)
        rows[name] = train_and_read(distort, args, validation)
    print(f"\none-network CNN, {args.epochs} epochs, seed {args.seed}; validation writers {args.writers}\n")
    print("| training renders | validation mean | worst condition | errors | MNIST test |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['mean']:.2%} | {row['worst']:.2%} | {row['errors']}/{row['reads']} | {row['mnist']:.2%} |")
    return rows


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
