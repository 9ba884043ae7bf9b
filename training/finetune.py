"""Fine-tune the shipped models on the corrections visitors made; keep them only if nothing got worse.

    python -m training.finetune --model all                   # corrections from digitrec.feedback.data_dir()
    python -m training.finetune --model numpy --data-dir DIR --epochs 2 --mix 20000

The stored corrections (digitrec/feedback.py) are few, so each is repeated — augmented
differently every time — until they make up about a tenth of the training set, mixed with
a random sample of the original training data (MNIST + the training writers' drawings) so
the model does not forget what it knew. Each model is measured before and after on the
10,000 MNIST test digits, on the held-out writers' drawings under every benchmark
condition (as ``bench.accuracy`` measures them) and on the corrections themselves. New
weights are written only when neither MNIST nor drawn accuracy dropped; otherwise the
reason is printed and the old weights stay. Exit status: 0 when every chosen model was
written, 1 when there was nothing to learn from or a model was refused.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec import manifest as manifests  # noqa: E402
from digitrec.registry import MODEL_IDS, model_class  # noqa: E402
from training.augment import augment_batch  # noqa: E402
from training.data import drawn_training_digits, load_mnist  # noqa: E402
from training.train import accuracy  # noqa: E402

CORRECTION_SHARE = 0.1  # the corrections are repeated to about this share of the fine-tuning set
LEARNING_RATE_FACTOR = 0.1  # fine-tuning uses a tenth of the model's original peak learning rate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=[*MODEL_IDS, "all"], required=True)
    parser.add_argument("--data-dir", type=Path, help="corrections folder (default: digitrec.feedback.data_dir())")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mix", type=int, default=20000, help="original training images mixed in")
    parser.add_argument("--repeat", type=int, help="copies of each correction (default: about 10%% of the set)")
    parser.add_argument("--learning-rate", type=float, help="default: a tenth of the model's training peak")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--tolerance", type=float, default=0.0, help="accuracy drop accepted, in percentage points")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "weights", help="folder for the new weights and manifests")
    parser.add_argument("--limit", type=int, help="quick run: N held-out digits per writer, N training-writer drawings")
    parser.add_argument("--mnist", help="path of mnist.npz")
    parser.add_argument("--pendigits", help="path of pendigits_train.npz")
    args = parser.parse_args(argv)
    for name in ("epochs", "mix", "repeat", "batch_size", "limit"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "mix" else 1):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.tolerance < 0:
        parser.error("--tolerance must not be negative")
    return args


# ---------------------------------------------------------------- data


def load_pool(mnist=None, pendigits=None, limit=None, seed=0):
    """Return (pool_x, pool_y, test_x, test_y): the original training data to mix in, and MNIST test.

    The pool is MNIST's training set plus the training writers' drawings as rendered for
    training (cached by ``training.train``); ``limit`` renders only that many drawings once.
    """
    x_mnist, y_mnist, x_test, y_test = load_mnist(mnist)
    if limit:
        x_drawn, y_drawn = drawn_training_digits(1, seed, pendigits, limit=limit)
    else:
        x_drawn, y_drawn = drawn_training_digits(4, seed, pendigits)
    return np.concatenate([x_mnist, x_drawn]), np.concatenate([y_mnist, y_drawn]), x_test, y_test


def load_evaluation(mnist=None, pendigits=None, limit=None):
    """Return what every model is measured on: {"mnist": (x, y), "drawn": {condition: (x, y)}}."""
    from training.heldout import drawn_arrays

    _, _, x_test, y_test = load_mnist(mnist)
    return {"mnist": (x_test, y_test), "drawn": drawn_arrays(limit, pendigits)}


def repeats_for(corrections: int, mix: int) -> int:
    """Return how often to repeat each correction so they make up about CORRECTION_SHARE of the set."""
    return max(1, round(CORRECTION_SHARE * mix / ((1 - CORRECTION_SHARE) * corrections)))


def mix_data(corrections_x, corrections_y, pool_x, pool_y, mix, repeat, seed=0):
    """Return (x, y): the corrections ``repeat`` times plus ``mix`` random pool images, shuffled."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool_x), size=min(mix, len(pool_x)), replace=False)
    x = np.concatenate([np.repeat(corrections_x, repeat, axis=0), pool_x[chosen]])
    y = np.concatenate([np.repeat(corrections_y, repeat), pool_y[chosen]])
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.int64)


# ---------------------------------------------------------------- measure


def evaluate(model, evaluation, corrections_x, corrections_y) -> dict:
    """Return accuracy on MNIST test, on the drawn digits (mean, worst, by condition) and on the corrections."""
    by_condition = {name: accuracy(model, x, y) for name, (x, y) in evaluation["drawn"].items()}
    return {
        "mnist": accuracy(model, *evaluation["mnist"]),
        "drawn": float(np.mean(list(by_condition.values()))),
        "drawn_worst": min(by_condition.values()),
        "drawn_by_condition": by_condition,
        "corrections": accuracy(model, corrections_x, corrections_y),
    }


def format_report(model_id, before, after, evaluation, corrections) -> str:
    """Return the before/after table as text."""
    drawn_count = len(next(iter(evaluation["drawn"].values()))[1])
    rows = [
        (f"MNIST test ({len(evaluation['mnist'][1]):,})", "mnist"),
        (f"drawn, mean of {len(evaluation['drawn'])} conditions ({drawn_count} digits)", "drawn"),
        ("drawn, worst condition", "drawn_worst"),
        (f"the corrections ({corrections})", "corrections"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{model_id:<{width}}  {'before':>8}  {'after':>8}  {'change':>7}"]
    for name, key in rows:
        change = 100 * (after[key] - before[key])
        lines.append(f"{name:<{width}}  {before[key]:>8.2%}  {after[key]:>8.2%}  {change:>+7.2f}")
    return "\n".join(lines)


def accepted(before, after, tolerance=0.0) -> tuple[bool, str]:
    """Return (keep, reason): keep only if neither MNIST nor drawn accuracy dropped more than ``tolerance`` points."""
    drops = []
    for key, name in (("mnist", "MNIST test"), ("drawn", "drawn-digit")):
        if 100 * (before[key] - after[key]) > tolerance + 1e-9:
            drops.append(f"{name} accuracy dropped from {before[key]:.2%} to {after[key]:.2%}")
    if drops:
        return False, "; ".join(drops)
    return True, "neither MNIST nor drawn-digit accuracy dropped"


# ---------------------------------------------------------------- train


def fresh_model(model_id):
    """Return a new instance of the shipped model, loaded like ``digitrec.get_model`` loads it.

    The app's model (``get_model``) is shared by every request, so it is never trained in place.
    """
    from digitrec.weights import load_weights

    return load_weights(model_class(model_id))


def train(model, x, y, epochs, batch_size, learning_rate, seed=0, augment=True):
    """Continue training ``model`` through its own ``fit``, the learning rate decaying by cosine to a tenth.

    The same ``fit`` trains the model from scratch, so fine-tuning learns the same way
    (for the CNN: each member on its own loss).
    """
    return model.fit(
        x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        final_learning_rate=learning_rate * 0.1, augment=augment_batch if augment else None, seed=seed,
    )


def finetune(
    model_id,
    corrections_x,
    corrections_y,
    *,
    epochs=2,
    mix=20000,
    repeat=None,
    learning_rate=None,
    batch_size=128,
    seed=0,
    augment=True,
    limit=None,
    pool=None,
    evaluation=None,
    model=None,
    verbose=True,
):
    """Fine-tune one model on the corrections mixed with original data; return (model, before, after).

    ``corrections_x`` is float32 (N, 28, 28) in [0, 1], ink = 1 (``FeedbackStore.load_arrays``).
    ``pool`` (x, y) and ``evaluation`` (``load_evaluation``) are loaded when not given;
    ``model`` defaults to a fresh copy of the shipped one. ``before`` and ``after`` are the
    ``evaluate`` figures; with ``verbose`` the table is printed. Nothing is written here.
    """
    corrections_x = np.asarray(corrections_x, dtype=np.float32)
    corrections_y = np.asarray(corrections_y, dtype=np.int64)
    if corrections_x.ndim != 3 or corrections_x.shape[1:] != (28, 28) or len(corrections_x) == 0:
        raise ValueError(f"Expected corrections of shape (N, 28, 28), N ≥ 1; got {corrections_x.shape}.")
    if len(corrections_x) != len(corrections_y):
        raise ValueError(f"{len(corrections_x)} corrections but {len(corrections_y)} labels.")
    if ((corrections_y < 0) | (corrections_y > 9)).any():
        raise ValueError("Labels must be digits 0 to 9.")
    if pool is None:
        pool = load_pool(limit=limit, seed=seed)[:2]
    if evaluation is None:
        evaluation = load_evaluation(limit=limit)
    model = model if model is not None else fresh_model(model_id)
    repeat = repeat or repeats_for(len(corrections_x), mix)
    learning_rate = learning_rate or model_class(model_id).training_defaults["learning_rate"] * LEARNING_RATE_FACTOR

    before = evaluate(model, evaluation, corrections_x, corrections_y)
    x, y = mix_data(corrections_x, corrections_y, *pool, mix, repeat, seed)
    if verbose:
        print(
            f"{model_id}: fine-tuning on {len(corrections_x)} corrections × {repeat}"
            f" + {len(x) - repeat * len(corrections_x)} original images,"
            f" {epochs} epoch(s), learning rate {learning_rate:g}",
            flush=True,
        )
    history = train(model, x, y, epochs, batch_size, learning_rate, seed, augment)
    after = evaluate(model, evaluation, corrections_x, corrections_y)
    after["settings"] = {
        "corrections": int(len(corrections_x)),
        "repeat": int(repeat),
        "mixed_with": int(len(x) - repeat * len(corrections_x)),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "augmentation": "affine + elastic + thickening" if augment else "none",
        "seed": int(seed),
        "history": history,
    }
    if verbose:
        print(format_report(model_id, before, after, evaluation, len(corrections_x)), flush=True)
    return model, before, after


# ---------------------------------------------------------------- save


def save(model, out, before, after, evaluation, source) -> Path:
    """Write the fine-tuned weights with the old manifest's training info plus a ``fine_tuned`` entry."""
    from training.strokes import HELD_OUT_WRITERS

    training = dict(getattr(model, "manifest", {}).get("training", {}))
    rounds = list(training.get("fine_tuned", []))
    rounds.append(
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "note": "fine-tuned on visitors' corrections mixed with original training data",
            "corrections_from": str(source),
            **after["settings"],
            "before": {key: before[key] for key in ("mnist", "drawn", "drawn_worst", "corrections")},
            "after": {key: after[key] for key in ("mnist", "drawn", "drawn_worst", "corrections")},
        }
    )
    training["fine_tuned"] = rounds
    metrics = {
        "mnist_test_accuracy": after["mnist"],
        "mnist_test_images": int(len(evaluation["mnist"][1])),
        **manifests.heldout_metrics(
            "drawn_heldout", after["drawn_by_condition"], len(next(iter(evaluation["drawn"].values()))[1]),
            writers=HELD_OUT_WRITERS,
        ),
        "measured_by": "python -m training.finetune (bench.accuracy's held-out drawings)",
    }
    return model.save(out, training=training, metrics=metrics)


def main(argv=None) -> int:
    from digitrec.feedback import DB_NAME, FeedbackStore, data_dir

    args = parse_args(argv)
    directory = args.data_dir or data_dir()
    if not (directory / DB_NAME).exists():
        print(f"No corrections stored in {directory}: nothing to fine-tune on.")
        return 1
    corrections_x, corrections_y = FeedbackStore(directory).load_arrays()
    if len(corrections_x) == 0:
        print(f"No corrections stored in {directory} yet: nothing to fine-tune on.")
        return 1
    counts = np.bincount(corrections_y, minlength=10)
    print(f"corrections: {len(corrections_y)} from {directory}; per digit {counts.tolist()}", flush=True)
    pool_x, pool_y, _, _ = load_pool(args.mnist, args.pendigits, args.limit, args.seed)
    evaluation = load_evaluation(args.mnist, args.pendigits, args.limit)
    status = 0
    for model_id in list(MODEL_IDS) if args.model == "all" else [args.model]:
        model, before, after = finetune(
            model_id,
            corrections_x,
            corrections_y,
            epochs=args.epochs,
            mix=args.mix,
            repeat=args.repeat,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            seed=args.seed,
            augment=not args.no_augment,
            pool=(pool_x, pool_y),
            evaluation=evaluation,
        )
        keep, reason = accepted(before, after, args.tolerance)
        if keep:
            print(f"{model_id}: {reason}; wrote {save(model, args.out, before, after, evaluation, directory)}\n")
        else:
            print(f"{model_id}: not writing new weights: {reason}.\n")
            status = 1
    return status


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
