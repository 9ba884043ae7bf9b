"""Train the digit models: prepare data → build → train → evaluate → save.

    python -m training.train --model all --seed 0

trains on MNIST plus the training writers' pen-drawn digits rendered as canvas input,
with augmentation, then evaluates on the 10,000 MNIST test digits and on the held-out
writers' drawn digits (bench/drawn_digits.py), and writes ``weights/<id>.*`` with a
manifest holding the config, training settings, per-epoch history and metrics.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.augment import augment_batch  # noqa: E402
from training.data import drawn_training_digits, load_mnist, unipen_training_digits  # noqa: E402
from training.strokes import HELD_OUT_WRITERS  # noqa: E402
from training.unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS  # noqa: E402
from training.figures import draw as draw_figures  # noqa: E402
from digitrec.base import read_manifest  # noqa: E402
from digitrec.registry import model_class  # noqa: E402

DEFAULTS = {  # per model: epochs, batch size, peak learning rate, last epochs without augmentation
    "cnn": dict(epochs=30, batch_size=128, learning_rate=2e-3, clean_epochs=3),
    "dense": dict(epochs=30, batch_size=128, learning_rate=1e-3, clean_epochs=0),
    "numpy": dict(epochs=30, batch_size=128, learning_rate=1e-3, clean_epochs=0),
}
FINAL_FRACTION = 0.01  # the learning rate decays to 1 % of its peak


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["cnn", "dense", "numpy", "all"], default="all")
    parser.add_argument("--mnist", help="path of mnist.npz (default: $DIGITREC_DATA or ../shared/data, else download)")
    parser.add_argument("--pendigits", help="path of pendigits_train.npz (default: $DIGITREC_DATA or ../shared/data)")
    parser.add_argument("--copies", type=int, default=4, help="random renders of each training writer's digit")
    parser.add_argument("--unipen", help="path of unipen_digits.npz (default: $DIGITREC_DATA or ../shared/data)")
    parser.add_argument("--unipen-copies", type=int, default=4,
                        help="random renders of each UNIPEN training-institution digit (training/unipen.py); 0: none")
    parser.add_argument("--init", help="a saved manifest: start from these weights instead of fresh ones")
    parser.add_argument("--checkpoints", help="folder to save the model into after every epoch (a killed run "
                        "keeps its last epoch; continue with --init)")
    parser.add_argument("--epochs", type=int, help="override the model's default number of epochs")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--clean-epochs", type=int, help="last epochs without augmentation (Keras models)")
    parser.add_argument("--resume", help="a saved manifest: skip the augmented epochs and continue from it")
    parser.add_argument("--limit", type=int, help="use only this many training images (smoke tests)")
    parser.add_argument("--subsample", type=int,
                        help="train on a random N of the prepared images (all sets in proportion): a short fine-tune")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-distort-strokes", action="store_true",
                        help="render the training writers' strokes as drawn (training/strokes.py: distort_strokes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "weights"), help="folder for the weights and manifests")
    parser.add_argument("--skip-drawn-eval", action="store_true", help="skip the held-out drawn-digit benchmark")
    args = parser.parse_args(argv)
    if args.resume and args.model == "all":
        parser.error("--resume continues one model: give --model too")
    if args.resume and not (DEFAULTS[args.model]["clean_epochs"] if args.clean_epochs is None else args.clean_epochs):
        parser.error("--resume runs only the epochs without augmentation: give --clean-epochs")
    if args.init and args.model == "all":
        parser.error("--init starts one model from saved weights: give --model too")
    if args.init and args.resume:
        parser.error("--init and --resume both choose the starting weights: give one")
    for name in ("copies", "unipen_copies", "epochs", "batch_size", "limit", "subsample", "clean_epochs"):
        value = getattr(args, name)
        if value is not None and value < (0 if name in ("copies", "unipen_copies", "clean_epochs") else 1):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


# ---------------------------------------------------------------- prepare data


def prepare_data(mnist, pendigits, copies, seed, limit=None, distort=True, exclude=HELD_OUT_WRITERS,
                 unipen=None, unipen_copies=0):
    """Return (x_train, y_train, x_test, y_test): MNIST plus rendered drawn digits, shuffled.

    The drawn digits are ``copies`` renders of every digit by the writers not in ``exclude``
    and ``unipen_copies`` renders of every UNIPEN digit of the training institutions (the test
    and validation institutions never); ``limit`` keeps that many MNIST images and a quarter
    as many drawn ones of each set (smoke tests).
    """
    x_mnist, y_mnist, x_test, y_test = load_mnist(mnist)
    drawn_limit = limit // 4 if limit else None
    x_drawn, y_drawn = drawn_training_digits(
        copies, seed, pendigits, limit=drawn_limit, distort=distort, exclude=exclude
    )
    x_unipen, y_unipen = unipen_training_digits(unipen_copies, seed, unipen, limit=drawn_limit, distort=distort)
    x_drawn, y_drawn = np.concatenate([x_drawn, x_unipen]), np.concatenate([y_drawn, y_unipen])
    if limit:
        x_mnist, y_mnist = x_mnist[:limit], y_mnist[:limit]
        x_test, y_test = x_test[: max(100, limit // 4)], y_test[: max(100, limit // 4)]
    x_train = np.concatenate([x_mnist, x_drawn])
    y_train = np.concatenate([y_mnist, y_drawn])
    order = np.random.default_rng(seed).permutation(len(x_train))
    print(f"data: {len(x_mnist)} MNIST + {len(x_drawn)} rendered drawn digits ({len(x_unipen)} of them UNIPEN), "
          f"{len(x_test)} test", flush=True)
    return x_train[order], y_train[order], x_test, y_test


# ---------------------------------------------------------------- build and train


def settings_for(model_id, args):
    settings = dict(DEFAULTS[model_id])
    for name in ("epochs", "batch_size", "learning_rate", "clean_epochs"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if model_id == "numpy" and settings["clean_epochs"]:
        raise ValueError("--clean-epochs applies to the Keras models only.")
    settings.update(
        seed=args.seed,
        optimizer="Adam, cosine decay to 1% of the peak"
        + (f"; then {settings['clean_epochs']} epochs without augmentation at 1%" if settings["clean_epochs"] else ""),
        augmentation="none" if args.no_augment else "affine (rotation, scale, slant, shift) + elastic + thickening",
        drawn_copies=args.copies,
        stroke_distortion=not args.no_distort_strokes,
    )
    if args.unipen_copies:
        settings.update(unipen_copies=args.unipen_copies, unipen_institutions="all but " + ", ".join(
            TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS))
    if args.init:  # fine-tuning: the saved model's own training stays on record beside these settings
        settings.update(init=str(args.init), init_training=read_manifest(args.init)["training"])
    if args.checkpoints:
        settings["checkpoints"] = str(args.checkpoints)
    if args.subsample:
        settings["subsample"] = args.subsample
    return settings


def fit_keras(model, x_train, y_train, x_test, y_test, learning_rate, decay, epochs, batch_size, seed, augment,
              first_epoch=1, callbacks=()):
    """Train ``model`` on shuffled (and, if ``augment``, distorted) batches; return one history row per epoch.

    With ``decay`` the learning rate falls from ``learning_rate`` to FINAL_FRACTION of it
    along a cosine over these epochs; without, it stays at ``learning_rate``.
    """
    import keras

    steps = int(np.ceil(len(x_train) / batch_size))
    if decay:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps, alpha=FINAL_FRACTION)
    network = model.training_network()
    network.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=model.training_loss,
        metrics=[keras.metrics.MeanMetricWrapper(model.training_accuracy, name="accuracy")],
    )

    class Batches(keras.utils.PyDataset):
        """Shuffled mini-batches, reproducible from (seed, epoch, batch)."""

        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng((seed, 0)).permutation(len(x_train))

        def __len__(self):
            return steps

        def __getitem__(self, index):
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            batch = x_train[chosen]
            if augment is not None:
                batch = augment(batch, np.random.default_rng((seed, self.epoch, index)))
            return batch, y_train[chosen]

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(x_train))

    history = network.fit(Batches(), epochs=epochs, validation_data=(x_test, y_test), verbose=2,
                          callbacks=list(callbacks))
    return [
        {"epoch": first_epoch + i, **{k: float(v[i]) for k, v in history.history.items()}} for i in range(epochs)
    ]


def train_keras(model_id, x_train, y_train, x_test, y_test, settings, augment):
    """Build a fresh network and train it with augmentation under a cosine learning-rate decay."""
    import keras

    keras.utils.set_random_seed(settings["seed"])
    model = model_class(model_id).load(settings["init"]) if settings.get("init") else model_class(model_id)()
    callbacks = []
    if settings.get("checkpoints"):
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: checkpoint(model, settings, epoch + 1, x_test, y_test)))
    rows = fit_keras(
        model, x_train, y_train, x_test, y_test, settings["learning_rate"], decay=True,
        epochs=settings["epochs"], batch_size=settings["batch_size"], seed=settings["seed"], augment=augment,
        callbacks=callbacks,
    )
    return model, rows


def train_clean(model_id, manifest_path, x_train, y_train, x_test, y_test, settings, first_epoch):
    """Fine-tune the saved network on undistorted images at the final learning rate; return (model, rows).

    Augmentation teaches robustness to how people draw, but its distortions also move the
    images away from real ones; a few last epochs on the images as they are (MNIST and the
    canvas renders, both real inputs) settle the network on the real distribution, as
    detectors such as YOLOX switch their strongest augmentation off for the last epochs.
    It starts by re-seeding and reloading the saved weights, so ``--resume`` on a saved
    run performs exactly the same steps as one uninterrupted run.
    """
    import keras

    keras.utils.set_random_seed(settings["seed"] + 1)
    model = model_class(model_id).load(manifest_path)
    rows = fit_keras(
        model, x_train, y_train, x_test, y_test, settings["learning_rate"] * FINAL_FRACTION, decay=False,
        epochs=settings["clean_epochs"], batch_size=settings["batch_size"], seed=settings["seed"] + 1,
        augment=None, first_epoch=first_epoch,
    )
    return model, rows


def train_numpy(x_train, y_train, x_test, y_test, settings, augment):
    from digitrec.numpy_net import NumpyNet

    if settings.get("init"):
        model = NumpyNet.load(settings["init"])
    else:
        model = NumpyNet(sizes=(784, 800, 800, 10), dropout=0.2, seed=settings["seed"])
    started = time.time()

    def report(epoch, row):
        row["val_accuracy"] = accuracy(model, x_test, y_test)
        print(
            f"epoch {epoch}/{settings['epochs']} - {time.time() - started:.0f}s - loss {row['loss']:.4f}"
            f" - val_accuracy {row['val_accuracy']:.4f}",
            flush=True,
        )
        if settings.get("checkpoints"):
            checkpoint(model, settings, epoch, x_test, y_test)

    rows = model.fit(
        x_train,
        y_train,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        final_learning_rate=settings["learning_rate"] / 100,
        augment=augment,
        seed=settings["seed"],
        on_epoch=report,
    )
    return model, rows


# ---------------------------------------------------------------- evaluate and save


def accuracy(model, x, y):
    return float((model.predict_labels(x) == y).mean())


def checkpoint(model, settings, epoch, x_test, y_test):
    """Save the model after ``epoch`` into the checkpoint folder, so a killed run keeps its last epoch."""
    folder = Path(settings["checkpoints"]) / f"epoch{epoch}"
    model.save(folder, training={**settings, "checkpoint_epoch": epoch},
               metrics={"mnist_test_accuracy": accuracy(model, x_test, y_test), "mnist_test_images": int(len(x_test))})
    print(f"checkpoint: {folder}", flush=True)


def save(model_id, model, out, settings, history, x_test, y_test):
    """Evaluate on the MNIST test digits and save the weights with their manifest; return its path."""
    settings["history"] = history
    metrics = {"mnist_test_accuracy": accuracy(model, x_test, y_test), "mnist_test_images": int(len(x_test))}
    print(f"{model_id}: MNIST test accuracy {metrics['mnist_test_accuracy']:.4%}", flush=True)
    return model.save(out, training=settings, metrics=metrics)


def main(argv=None):
    args = parse_args(argv)
    x_train, y_train, x_test, y_test = prepare_data(
        args.mnist, args.pendigits, args.copies, args.seed, args.limit, distort=not args.no_distort_strokes,
        unipen=args.unipen, unipen_copies=args.unipen_copies,
    )
    if args.subsample:  # prepare_data shuffled them: the first N are a random N of every set in proportion
        x_train, y_train = x_train[: args.subsample], y_train[: args.subsample]
    augment = None if args.no_augment else augment_batch
    chosen = ["cnn", "dense", "numpy"] if args.model == "all" else [args.model]
    for model_id in chosen:
        settings = settings_for(model_id, args)
        settings["training_images"] = int(len(x_train))
        print(f"\n== {model_id}: {settings}", flush=True)
        started = time.time()
        if args.resume:
            manifest = Path(args.resume)
            saved = read_manifest(manifest)["training"]
            for name, before in (("drawn_copies", 4), ("stroke_distortion", False)):  # older manifests' values
                if saved.get(name, before) != settings[name]:
                    raise ValueError(
                        f"{manifest} was trained with {name}={saved.get(name, before)}; resume with the same data "
                        f"(--copies / --no-distort-strokes), not {name}={settings[name]}."
                    )
            history = [row for row in saved.get("history", []) if row["epoch"] <= saved.get("epochs", 0)]
            settings.update(epochs=saved.get("epochs", 0), seconds=saved.get("seconds", 0), resumed_from=str(manifest))
        else:
            if model_id == "numpy":
                model, history = train_numpy(x_train, y_train, x_test, y_test, settings, augment)
            else:
                model, history = train_keras(model_id, x_train, y_train, x_test, y_test, settings, augment)
            settings["seconds"] = round(time.time() - started)
            manifest = save(model_id, model, args.out, settings, history, x_test, y_test)
        if settings["clean_epochs"]:
            started = time.time()
            model, rows = train_clean(
                model_id, manifest, x_train, y_train, x_test, y_test, settings, first_epoch=len(history) + 1
            )
            history = history + rows
            settings["seconds"] = settings.get("seconds", 0) + round(time.time() - started)
            manifest = save(model_id, model, args.out, settings, history, x_test, y_test)
        draw_figures(model_id, model, args.out, x_test, y_test)
        print(f"{model_id}: wrote {manifest} and its figures", flush=True)
    if not args.skip_drawn_eval and Path(args.out).resolve() == (ROOT / "weights").resolve():
        # Measure the saved weights exactly as shipped, through digitrec.predict, in a fresh process.
        subprocess.run([sys.executable, "-m", "bench.accuracy", "--record", "--models", *chosen], cwd=ROOT, check=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
