"""Train the digit models: prepare data → build → train → evaluate → save.

    python -m training.train --model all --seed 0

trains on MNIST plus the training writers' pen-drawn digits rendered as canvas input,
with augmentation, then evaluates on the 10,000 MNIST test digits, and writes
``weights/<id>.*`` with a manifest holding the config, training settings, per-epoch
history and metrics. Every model trains through its own ``fit`` (``digitrec/base.py``),
with the defaults its class carries (``training_defaults``); ``--model`` takes any id in
``digitrec.registry.REGISTRY``. The held-out drawn-digit figures are measured afterwards
on the saved weights by ``python -m bench.accuracy --record``.
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

from training.augment import augment_batch  # noqa: E402
from training.cut_digits import cut_digits  # noqa: E402
from training.data import STYLES, drawn_training_digits, load_mnist, unipen_training_digits  # noqa: E402
from training.nondigits import training_non_digits  # noqa: E402
from training.symbols import training_symbols  # noqa: E402
from training.strokes import HELD_OUT_WRITERS  # noqa: E402
from training.unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS  # noqa: E402
from training.figures import draw as draw_figures  # noqa: E402
from digitrec import manifest as manifests  # noqa: E402
from digitrec.backup import saved_history  # noqa: E402
from digitrec.base import CLASSES, FINAL_FRACTION  # noqa: E402
from digitrec.registry import MODEL_IDS, model_class  # noqa: E402


# The writing styles drawn into a share of the training digits: option → training/data.py's style name.
STYLE_OPTIONS = {"slashed_zeros": "slash", "barred_zeros": "bar", "flagged_ones": "flag",
                 "upright_slashed_zeros": "upright", "footed_ones": "foot"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=[*MODEL_IDS, "all"], default="all")
    parser.add_argument("--mnist", help="path of mnist.npz (default: $DIGITREC_DATA or ../shared/data, else download)")
    parser.add_argument("--pendigits", help="path of pendigits_train.npz (default: $DIGITREC_DATA or ../shared/data)")
    parser.add_argument("--copies", type=int, default=4, help="random renders of each training writer's digit")
    parser.add_argument("--unipen", help="path of unipen_digits.npz (default: $DIGITREC_DATA or ../shared/data)")
    parser.add_argument("--unipen-copies", type=int, default=4,
                        help="random renders of each UNIPEN training-institution digit (training/unipen.py); 0: none")
    parser.add_argument("--slashed-zeros", type=float, default=0.3,
                        help="share of the drawn training zeros given a slash, Ø (training/data.py: slash_zero); 0: none")
    parser.add_argument("--barred-zeros", type=float, default=0.0,
                        help="share of the drawn training zeros given a level bar, θ (training/data.py: bar_zero); 0: none")
    parser.add_argument("--flagged-ones", type=float, default=0.0,
                        help="share of the drawn training ones given a long rising flag (training/data.py: flag_one); 0: none")
    parser.add_argument("--upright-slashed-zeros", type=float, default=0.0,
                        help="share of the drawn training zeros struck from above to below, φ "
                        "(training/data.py: upright_slash_zero); 0: none")
    parser.add_argument("--footed-ones", type=float, default=0.0,
                        help="share of the drawn training ones given a long flag and a foot "
                        "(training/data.py: foot_one); 0: none")
    parser.add_argument("--non-digits", type=int, default=1,
                        help="random renders of each training-institution letter (plus shapes and scribbles) taught as "
                        "an 11th output, 'not a digit' (training/nondigits.py: training_non_digits); 0: ten outputs")
    parser.add_argument("--touching-pairs", type=int, default=0,
                        help="renders of 6,000 pairs of a training writer's digits touching, taught as 'not a digit' "
                        "so the number reader cuts them (training/nondigits.py: touching_pairs); 0: none")
    parser.add_argument("--cut-digits", type=int, default=0,
                        help="copies of 6,000 touching pairs of a training writer's digits cut apart at the number "
                        "reader's own seam, each clean side taught as its digit (training/cut_digits.py); 0: none")
    parser.add_argument("--symbols", type=int, default=0,
                        help="renders of 3,000 random Hershey symbols of the training glyphs, taught as 'not a digit' "
                        "(training/symbols.py); 0: none")
    parser.add_argument("--letters", help="path of unipen_letters.npz (default: $DIGITREC_DATA or ../shared/data)")
    parser.add_argument("--init", help="a saved manifest: start from these weights instead of fresh ones")
    parser.add_argument("--checkpoints", help="folder to save the model into after every epoch (a killed run "
                        "keeps its last epoch; continue with --init)")
    parser.add_argument("--backup", help="folder where the run keeps its state after every epoch (weights, optimizer, "
                        "epoch, history): run the same command again after a kill and it continues from the last "
                        "epoch, as one uninterrupted run would (digitrec/backup.py)")
    parser.add_argument("--epochs", type=int, help="override the model's default number of epochs")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--clean-epochs", type=int, help="last epochs without augmentation (Keras models)")
    parser.add_argument("--resume", help="a saved manifest: skip the augmented epochs and continue from it")
    parser.add_argument("--limit", type=int, help="use only this many training images (smoke tests)")
    parser.add_argument("--subsample", type=int,
                        help="train on a random N of the prepared images (all sets in proportion): a short fine-tune")
    parser.add_argument("--leave-out-writers", type=int, nargs="+", default=[],
                        help="pendigits writers whose digits are not trained on, besides the test writers: 21 22 23 24, "
                        "the validation writers of training/verdict_sets.py, so choices on them are made on writers "
                        "the model never learnt a digit from (their digits may still appear in touching pairs)")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-distort-strokes", action="store_true",
                        help="render the training writers' strokes as drawn (training/strokes.py: distort_strokes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "weights"), help="folder for the weights and manifests")
    args = parser.parse_args(argv)
    if args.resume and args.model == "all":
        parser.error("--resume continues one model: give --model too")
    if args.resume and not (
        model_class(args.model).training_defaults["clean_epochs"] if args.clean_epochs is None else args.clean_epochs
    ):
        parser.error("--resume runs only the epochs without augmentation: give --clean-epochs")
    if args.init and args.model == "all":
        parser.error("--init starts one model from saved weights: give --model too")
    for name in STYLE_OPTIONS:
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} is a share of the digits, from 0 to 1")
    for digit in {STYLES[style].digit for style in STYLE_OPTIONS.values()}:
        names = [name for name, style in STYLE_OPTIONS.items() if STYLES[style].digit == digit]
        if sum(getattr(args, name) for name in names) > 1.0:
            parser.error(" and ".join("--" + name.replace("_", "-") for name in names)
                         + f" share the {digit}s (a digit gets one style): together at most 1")
    if set(args.leave_out_writers) & set(HELD_OUT_WRITERS) or not set(args.leave_out_writers) <= set(range(1, 31)):
        parser.error(f"--leave-out-writers takes pendigits writers 1–30 besides the test writers {HELD_OUT_WRITERS}")
    if args.init and args.resume:
        parser.error("--init and --resume both choose the starting weights: give one")
    for option in ("touching_pairs", "symbols"):
        if getattr(args, option) and not args.non_digits:
            parser.error(f"--{option.replace('_', '-')} are taught as 'not a digit': give --non-digits too")
    counts = ("copies", "unipen_copies", "non_digits", "touching_pairs", "cut_digits", "symbols", "clean_epochs")  # 0: none
    for name in (*counts, "epochs", "batch_size", "limit", "subsample"):
        value, least = getattr(args, name), 0 if name in counts else 1
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}")
    return args


# ---------------------------------------------------------------- prepare data


def prepare_data(mnist, pendigits, copies, seed, limit=None, distort=True, exclude=HELD_OUT_WRITERS,
                 unipen=None, unipen_copies=0, letters=None, non_digits=0, styles=None, touching_pairs=0,
                 symbols=0, cut=0):
    """Return (x_train, y_train, x_test, y_test): MNIST plus rendered drawn digits and non-digits, shuffled.

    The drawn digits are ``copies`` renders of every digit by the writers not in ``exclude``
    and ``unipen_copies`` renders of every UNIPEN digit of the training institutions (the test
    and validation institutions never), ``styles`` ({style: share}, training/data.py: styled_jobs)
    of their zeros drawn as Ø or θ and of their ones with a long flag; ``non_digits`` renders of the training institutions'
    letters, with shapes and scribbles, ``touching_pairs`` renders of training writers' digits run
    together and ``symbols`` renders of Hershey symbols, labelled ``NOT_A_DIGIT``; ``cut`` copies of
    touching pairs cut apart, each clean side labelled its digit (the writers in ``exclude`` give none); ``limit`` keeps that many
    MNIST images and a quarter as many drawn ones of each set (smoke tests).
    """
    x_mnist, y_mnist, x_test, y_test = load_mnist(mnist)
    drawn_limit = limit // 4 if limit else None
    x_drawn, y_drawn = drawn_training_digits(
        copies, seed, pendigits, limit=drawn_limit, distort=distort, exclude=exclude, styles=styles
    )
    x_unipen, y_unipen = unipen_training_digits(unipen_copies, seed, unipen, limit=drawn_limit, distort=distort,
                                                styles=styles)
    x_other, y_other = training_non_digits(non_digits, seed, letters, limit=drawn_limit, pair_copies=touching_pairs,
                                           pendigits=pendigits, unipen=unipen)
    x_symbols, y_symbols = training_symbols(symbols, seed, limit=drawn_limit)
    x_other, y_other = np.concatenate([x_other, x_symbols]), np.concatenate([y_other, y_symbols])
    x_cut, y_cut = cut_digits(cut, seed, limit=drawn_limit, pendigits=pendigits, unipen=unipen,
                              exclude=[w for w in exclude if w not in HELD_OUT_WRITERS])
    x_drawn = np.concatenate([x_drawn, x_unipen, x_cut, x_other])
    y_drawn = np.concatenate([y_drawn, y_unipen, y_cut, y_other])
    if limit:
        x_mnist, y_mnist = x_mnist[:limit], y_mnist[:limit]
        x_test, y_test = x_test[: max(100, limit // 4)], y_test[: max(100, limit // 4)]
    x_train = np.concatenate([x_mnist, x_drawn])
    y_train = np.concatenate([y_mnist, y_drawn])
    order = np.random.default_rng(seed).permutation(len(x_train))
    cut_text = f", {len(x_cut)} cut from touching pairs" if len(x_cut) else ""
    print(f"data: {len(x_mnist)} MNIST + {len(x_drawn) - len(x_other)} rendered drawn digits ({len(x_unipen)} of "
          f"them UNIPEN{cut_text}) + {len(x_other)} non-digits, {len(x_test)} test", flush=True)
    return x_train[order], y_train[order], x_test, y_test


# ---------------------------------------------------------------- build and train


def settings_for(model_id, args):
    """Return the model class's training defaults with the command line's overrides and the data's description."""
    settings = dict(model_class(model_id).training_defaults)
    for name in ("epochs", "batch_size", "learning_rate", "clean_epochs"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    settings.update(
        seed=args.seed,
        optimizer="Adam, cosine decay to 1% of the peak"
        + (f"; then {settings['clean_epochs']} epochs without augmentation at 1%" if settings["clean_epochs"] else ""),
        augmentation="none" if args.no_augment else "affine (rotation, scale, slant, shift) + elastic + thickening",
        drawn_copies=args.copies,
        stroke_distortion=not args.no_distort_strokes,
        outputs=CLASSES + 1 if args.non_digits else CLASSES,
    )
    if args.leave_out_writers:
        settings["left_out_writers"] = sorted(args.leave_out_writers)
    for name in STYLE_OPTIONS:
        if getattr(args, name):
            settings[name] = getattr(args, name)
    if args.non_digits:
        settings.update(non_digit_copies=args.non_digits,
                        non_digits="letters of the training institutions, training shape kinds, scribbles"
                        + (", training writers' digits touching in pairs" if args.touching_pairs else "")
                        + (", Hershey symbols of the training glyphs" if args.symbols else ""))
        if args.touching_pairs:
            settings["touching_pair_copies"] = args.touching_pairs
        if args.symbols:
            settings["symbol_copies"] = args.symbols
    if args.cut_digits:
        settings["cut_digit_copies"] = args.cut_digits
    if args.unipen_copies:
        settings.update(unipen_copies=args.unipen_copies, unipen_institutions="all but " + ", ".join(
            TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS))
    if args.init:  # fine-tuning: the saved model's own training stays on record beside these settings
        settings.update(init=str(args.init), init_training=manifests.read(args.init)["training"])
    if args.checkpoints:
        settings["checkpoints"] = str(args.checkpoints)
    if args.backup:
        settings["backup"] = str(args.backup)
    if args.subsample:
        settings["subsample"] = args.subsample
    return settings


def progress(model_id, epochs, started, after_epoch=None, before=()):
    """Return an ``on_epoch`` callback printing one line per epoch (a long run shows it is alive), then ``after_epoch``.

    ``after_epoch(epoch, rows)`` gets the rows of every epoch so far — ``before``, a killed
    run's saved epochs, included — so a checkpoint carries its own history.
    """
    rows = list(before)

    def report(epoch, row):
        figures = " - ".join(f"{name} {value:.4f}" for name, value in row.items() if name != "epoch")
        print(f"{model_id} epoch {epoch}/{epochs} - {time.time() - started:.0f}s - {figures}", flush=True)
        rows.append(dict(row))  # every model's row starts with its epoch
        if after_epoch is not None:
            after_epoch(epoch, list(rows))

    return report


def train(model_id, x_train, y_train, x_test, y_test, settings, augment):
    """Train a model with augmentation under a cosine decay: fresh from ``settings['seed']``, or from ``--init``.

    With ``--checkpoints`` the model is saved after every epoch, so a killed run keeps its
    last epoch (continue with ``--init``); with ``--backup`` it also keeps the optimizer and
    the schedule, and the same command continues it.
    """
    if settings.get("init"):
        model = model_class(model_id).load(settings["init"], seed=settings["seed"])
    else:
        model = model_class(model_id).fresh(settings["seed"])
    if model.outputs != settings["outputs"]:
        try:
            model = model.widened(settings["outputs"])  # a ten-digit model learns "not a digit" as a new output
        except NotImplementedError:
            raise ValueError(f"{model_id} cannot add a 'not a digit' output (no widened()): train it with "
                             "--non-digits 0") from None
    after_epoch = None
    if settings.get("checkpoints"):
        after_epoch = lambda epoch, rows: checkpoint(model, settings, epoch, rows, x_test, y_test)  # noqa: E731
    backup = backup_folder(settings, model_id, "augmented")
    before = [] if backup is None else saved_history(backup, model.backed_up_epochs(backup))
    if before:
        settings["continued_after_epoch"] = len(before)  # its "seconds" count from there
        print(f"{model_id}: continuing after epoch {len(before)}, kept in {backup}", flush=True)
    rows = model.fit(
        x_train, y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"], final_learning_rate=settings["learning_rate"] * FINAL_FRACTION,
        augment=augment, seed=settings["seed"], validation=(x_test, y_test),
        on_epoch=progress(model_id, settings["epochs"], time.time(), after_epoch, before),
        **backup_argument(backup),
    )
    return model, rows


def backup_folder(settings, model_id, phase):
    """Return the folder keeping ``phase`` of ``model_id``'s run under ``--backup``, or None without it."""
    return None if not settings.get("backup") else Path(settings["backup"]) / model_id / phase


def backup_argument(folder) -> dict:
    """Return fit's ``backup`` keyword for ``folder``, or none without one: a model class of one's own may not keep backups."""
    return {} if folder is None else {"backup": folder}


def train_clean(model_id, manifest_path, x_train, y_train, x_test, y_test, settings, first_epoch):
    """Fine-tune the saved model on undistorted images at the final learning rate; return (model, rows).

    Augmentation teaches robustness to how people draw, but its distortions also move the
    images away from real ones; a few last epochs on the images as they are (MNIST and the
    canvas renders, both real inputs) settle the network on the real distribution, as
    detectors such as YOLOX switch their strongest augmentation off for the last epochs.
    It starts by reloading the saved weights into a model seeded afresh, so ``--resume`` on
    a saved run performs exactly the same steps as one uninterrupted run.
    """
    model = model_class(model_id).load(manifest_path, seed=settings["seed"] + 1)
    final = settings["learning_rate"] * FINAL_FRACTION
    rows = model.fit(
        x_train, y_train, epochs=settings["clean_epochs"], batch_size=settings["batch_size"],
        learning_rate=final, final_learning_rate=final, augment=None, seed=settings["seed"] + 1,
        validation=(x_test, y_test), on_epoch=progress(model_id, settings["clean_epochs"], time.time()),
        **backup_argument(backup_folder(settings, model_id, "clean")),
    )
    return model, [{**row, "epoch": first_epoch + i} for i, row in enumerate(rows)]


# ---------------------------------------------------------------- evaluate and save


def accuracy(model, x, y):
    return float((model.predict_labels(x) == y).mean())


def checkpoint(model, settings, epoch, history, x_test, y_test):
    """Save the model after ``epoch``, with its epochs' ``history``, so a killed run keeps its last epoch.

    A checkpoint may ship (its manifest then describes its own training, and its curves are drawn from it).
    """
    folder = Path(settings["checkpoints"]) / f"epoch{epoch}"
    model.save(folder, training={**settings, "checkpoint_epoch": epoch, "history": history},
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
        exclude=HELD_OUT_WRITERS + tuple(sorted(args.leave_out_writers)),
        unipen=args.unipen, unipen_copies=args.unipen_copies, letters=args.letters, non_digits=args.non_digits,
        styles={style: getattr(args, name) for name, style in STYLE_OPTIONS.items()}, touching_pairs=args.touching_pairs,
        symbols=args.symbols, cut=args.cut_digits,
    )
    if args.subsample:  # prepare_data shuffled them: the first N are a random N of every set in proportion
        x_train, y_train = x_train[: args.subsample], y_train[: args.subsample]
    augment = None if args.no_augment else augment_batch
    chosen = list(MODEL_IDS) if args.model == "all" else [args.model]
    for model_id in chosen:
        settings = settings_for(model_id, args)
        settings["training_images"] = int(len(x_train))
        print(f"\n== {model_id}: {settings}", flush=True)
        started = time.time()
        if args.resume:
            manifest = Path(args.resume)
            saved = manifests.read(manifest)["training"]
            for name, before in (("drawn_copies", 4), ("stroke_distortion", False)):  # older manifests' values
                if saved.get(name, before) != settings[name]:
                    raise ValueError(
                        f"{manifest} was trained with {name}={saved.get(name, before)}; resume with the same data "
                        f"(--copies / --no-distort-strokes), not {name}={settings[name]}."
                    )
            history = [row for row in saved.get("history", []) if row["epoch"] <= saved.get("epochs", 0)]
            settings.update(epochs=saved.get("epochs", 0), seconds=saved.get("seconds", 0), resumed_from=str(manifest))
            settings.update({name: saved[name] for name in ("init", "init_training") if name in saved})  # the chain
        else:
            model, history = train(model_id, x_train, y_train, x_test, y_test, settings, augment)
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
    if Path(args.out).resolve() == (ROOT / "weights").resolve():
        print("next: python -m bench.accuracy --record  (measures these weights on held-out drawings)", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
