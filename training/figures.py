"""Draw each model's training curves and MNIST-test confusion matrix for the app's details panel.

    python -m training.figures            # from the shipped weights and their manifests

Writes ``weights/<id>_curves.png`` (loss and accuracy per epoch, from the manifest's
history) and ``weights/<id>_confusion.png`` (the 10,000 MNIST test digits). Training
calls it after saving, so the pictures always describe the shipped weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec import manifest as manifests  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history, title, path, clean_from=None):
    """Plot training loss and, where recorded, training and MNIST-test accuracy per epoch.

    ``clean_from`` is the first epoch without augmentation, marked on both panels because
    the training curves jump there (undistorted images are easier), not because it learned.
    """
    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 2.6), dpi=80)
    left.plot(epochs, [row["loss"] for row in history], marker="o", markersize=3)
    left.set(title="training loss", xlabel="epoch")
    if any("accuracy" in row for row in history):
        right.plot(epochs, [row.get("accuracy") for row in history], marker="o", markersize=3, label="training")
    right.plot(epochs, [row.get("val_accuracy") for row in history], marker="o", markersize=3, label="MNIST test")
    right.set(title="accuracy", xlabel="epoch", ylim=(0.95, 1.0))
    if clean_from is not None:
        for axes in (left, right):
            axes.axvline(clean_from - 0.5, color="grey", linestyle="--", linewidth=1, label="no augmentation from")
    right.legend(loc="lower right", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_confusion(confusion, title, path):
    """Plot a 10×10 confusion matrix, counts written in the off-diagonal cells that are not zero."""
    figure, axes = plt.subplots(figsize=(3.6, 3.4), dpi=80)
    errors = confusion.copy()
    np.fill_diagonal(errors, 0)
    axes.imshow(errors, cmap="Reds")
    for row in range(10):
        for column in range(10):
            if row != column and confusion[row, column]:
                axes.text(column, row, confusion[row, column], ha="center", va="center", fontsize=7)
    axes.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true digit")
    axes.set_title(f"{title}: {int(np.trace(confusion))}/{int(confusion.sum())} right", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def draw(model_id, model, weights_dir, x_test, y_test):
    """Write both figures for one model."""
    weights_dir = Path(weights_dir)
    manifest = manifests.read(manifests.path_for(weights_dir, model_id))
    training = manifest.get("training", {})
    history = training.get("history", [])
    clean_from = training["epochs"] + 1 if training.get("clean_epochs") else None
    if history:
        plot_curves(history, manifest["display_name"], weights_dir / f"{model_id}_curves.png", clean_from)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y_test, model.predict_labels(x_test)), 1)
    plot_confusion(confusion, manifest["display_name"], weights_dir / f"{model_id}_confusion.png")


def main(argv=None):
    import digitrec
    from training.data import load_mnist

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(digitrec.MODEL_IDS), choices=digitrec.MODEL_IDS)
    parser.add_argument("--mnist", help="path of mnist.npz")
    args = parser.parse_args(argv)
    _, _, x_test, y_test = load_mnist(args.mnist)
    from digitrec.weights import bundled_dir

    for model_id in args.models:
        draw(model_id, digitrec.get_model(model_id), bundled_dir(), x_test, y_test)
        print(f"{model_id}: figures written")


if __name__ == "__main__":
    main()
