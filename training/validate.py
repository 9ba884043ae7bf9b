"""Choose a training setting on writers the benchmark never reads: train without and with it, compare.

    python -m training.validate --seed 0

Writers 21–24 (``--writers``) are taken out of the drawn training part; a one-network CNN
is trained briefly (``--epochs``) on MNIST plus the other training writers' renders, once
with the strokes as drawn and once through ``training/strokes.py: distort_strokes``, and
each reads the left-out writers under every benchmark condition. The test writers
(HELD_OUT_WRITERS) are excluded from both runs and never read, so the choice cannot be
fitted to them. This is how the stroke distortion was chosen (README, *Train*).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec.preprocess import preprocess  # noqa: E402
from training.augment import augment_batch  # noqa: E402
from training.data import drawn_training_digits, load_mnist  # noqa: E402
from training.strokes import BENCHMARK_CONDITIONS, HELD_OUT_WRITERS, load_pendigits, render  # noqa: E402
from training.train import DEFAULTS, fit_keras  # noqa: E402


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


def validation_digits(writers, path=None, limit=None):
    """Return (x, y, condition index): every digit of ``writers`` rendered under each benchmark condition."""
    digits, labels, owners = load_pendigits(path)
    index = np.concatenate([np.flatnonzero(owners == writer)[:limit] for writer in writers])
    x, y, condition = [], [], []
    for k, chosen in enumerate(BENCHMARK_CONDITIONS.values()):
        x += [preprocess(render(digits[i], chosen)) for i in index]
        y.append(labels[index])
        condition.append(np.full(len(index), k))
    return np.stack(x), np.concatenate(y), np.concatenate(condition)


def train_and_read(distort, args, mnist, validation):
    """Train a one-network CNN with or without stroke distortion; return its figures as a dict."""
    import keras

    from digitrec.keras_cnn import KerasCNN

    x_mnist, y_mnist, x_test, y_test = mnist
    x_drawn, y_drawn = drawn_training_digits(
        args.copies, args.seed, args.pendigits, limit=args.limit and args.limit // 4, distort=distort,
        exclude=HELD_OUT_WRITERS + tuple(args.writers),
    )
    x_train, y_train = np.concatenate([x_mnist, x_drawn]), np.concatenate([y_mnist, y_drawn])
    order = np.random.default_rng(args.seed).permutation(len(x_train))
    keras.utils.set_random_seed(args.seed)
    model = KerasCNN(members=1)
    started = time.time()
    fit_keras(
        model, x_train[order], y_train[order], x_test, y_test, DEFAULTS["cnn"]["learning_rate"], decay=True,
        epochs=args.epochs, batch_size=DEFAULTS["cnn"]["batch_size"], seed=args.seed, augment=augment_batch,
    )
    x_valid, y_valid, condition = validation
    right = model.predict_labels(x_valid) == y_valid
    per_condition = [float(right[condition == k].mean()) for k in range(len(BENCHMARK_CONDITIONS))]
    return {
        "mean": float(np.mean(per_condition)),
        "worst": min(per_condition),
        "errors": int((~right).sum()),
        "reads": int(len(right)),
        "mnist": float((model.predict_labels(x_test) == y_test).mean()),
        "seconds": time.time() - started,
    }


def main(argv=None):
    args = parse_args(argv)
    x_mnist, y_mnist, x_test, y_test = load_mnist(args.mnist)
    if args.limit:
        x_mnist, y_mnist = x_mnist[: args.limit], y_mnist[: args.limit]
        x_test, y_test = x_test[: max(100, args.limit // 4)], y_test[: max(100, args.limit // 4)]
    validation = validation_digits(args.writers, args.pendigits, limit=args.limit and max(2, args.limit // 100))
    print(f"validation: writers {args.writers}, {len(validation[1])} reads", flush=True)
    rows = {}
    for name, distort in (("strokes as drawn", False), ("strokes distorted", True)):
        print(f"\n== {name}", flush=True)
        rows[name] = train_and_read(distort, args, (x_mnist, y_mnist, x_test, y_test), validation)
    print(f"\none-network CNN, {args.epochs} epochs, seed {args.seed}; validation writers {args.writers}\n")
    print("| training renders | validation mean | worst condition | errors | MNIST test |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['mean']:.2%} | {row['worst']:.2%} | {row['errors']}/{row['reads']} | {row['mnist']:.2%} |")
    return rows


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
