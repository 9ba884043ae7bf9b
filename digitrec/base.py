"""The interface every model shares: ``predict_proba``, ``fit``, ``save`` and ``load``.

A model's weights never travel alone: ``save`` writes the weights file and its manifest
(``digitrec/manifest.py``), and ``load`` refuses a manifest of another format version or
a weights file whose checksum differs. ``fit`` has one signature for every model, so
training and fine-tuning use the same loop; each class carries its own training defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import manifest as manifests
from .manifest import sha256_of
from . import views as test_time_views
from .views import IDENTITY

CLASSES = 10
NOT_A_DIGIT = 10  # the label of the optional 11th output: letters, shapes, scribbles (training/nondigits.py)
FINAL_FRACTION = 0.01  # by default the learning rate decays to 1 % of its peak


class ChecksumError(ValueError):
    """Raised when a weights file does not match the checksum in its manifest."""


def digits_only(probabilities) -> np.ndarray:
    """Return the ten digits' probabilities, renormalised: a model with a "not a digit" output still answers over digits.

    ``predict_proba`` keeps its contract — ten probabilities summing to one — whatever the
    network's last layer holds; ``read``'s detector sees the 11th output's evidence in the penultimate features.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape[1] == CLASSES:
        return probabilities
    digits = probabilities[:, :CLASSES]
    return digits / np.maximum(digits.sum(axis=1, keepdims=True), 1e-12)


def with_own_verdict(features, outputs):
    """Return (features, ten digits' probabilities): the 11th output's probability, if any, appended to the features."""
    features, outputs = np.asarray(features, dtype=np.float32), np.asarray(outputs, dtype=np.float32)
    if outputs.shape[1] > CLASSES:
        features = np.concatenate([features, outputs[:, CLASSES:]], axis=1)
    return features, digits_only(outputs)


def check_outputs(outputs) -> int:
    """Return ``outputs`` as an int if it is 10 (digits) or 11 (digits and "not a digit"), else raise ValueError."""
    if int(outputs) not in (CLASSES, CLASSES + 1):
        raise ValueError(f"outputs must be {CLASSES} (digits) or {CLASSES + 1} (digits and 'not a digit'); got {outputs}.")
    return int(outputs)


def head(outputs) -> str:
    """Return the output layer's size for a description: "10", or "10 digits + not a digit"."""
    return str(outputs) if outputs == CLASSES else f"{CLASSES} digits + not a digit"


def check_labels(y, count, outputs) -> np.ndarray:
    """Return labels ``y`` as int64, or raise ValueError if there are not ``count`` of them or one has no output."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) != count:
        raise ValueError(f"{count} images but {len(y)} labels.")
    if len(y) and (y.min() < 0 or y.max() >= outputs):
        raise ValueError(f"Labels must be 0–{outputs - 1} for a network with {outputs} outputs; got {y.min()}–{y.max()}.")
    return y


def check_batch(x) -> np.ndarray:
    """Return ``x`` as a float32 (N, 28, 28) array in [0, 1], or raise ValueError saying what is wrong."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"Expected images of shape (N, 28, 28); got {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("Images contain NaN or infinite values.")
    if x.size and (float(x.min()) < -1e-3 or float(x.max()) > 1.0 + 1e-3):
        raise ValueError("Images must be scaled to [0, 1] (ink = 1), not 0..255.")
    return x


class Model:
    """Base class: subclasses set ``model_id``, ``display_name``, ``weights_suffix`` and ``training_defaults``."""

    model_id = ""
    display_name = ""
    weights_suffix = ""
    # fit's settings when training from scratch; clean_epochs are the last epochs, without augmentation
    training_defaults = dict(epochs=30, batch_size=128, learning_rate=1e-3, clean_epochs=0)
    # (degrees, scale, right, down) views each image is read at, answers averaged (digitrec/views.py)
    views = (IDENTITY,)
    # read the other views only when the first reading's top digit is below this; None: always (test_time_views_below)
    views_below = None

    def __init__(self, **config):
        self.config = config

    @classmethod
    def fresh(cls, seed: int = 0, **config) -> "Model":
        """Return a new untrained model (``config`` over the class's defaults) whose first weights come from ``seed``."""
        return cls(**config)

    @property
    def outputs(self) -> int:
        """Return how many outputs the network has: 10 digits, or 11 with "not a digit"."""
        return int(self.config.get("outputs", CLASSES))

    # -- what subclasses implement
    def predict_proba(self, x) -> np.ndarray:
        """Return (N, 10) class probabilities for images ``x`` of shape (N, 28, 28), ink = 1."""
        raise NotImplementedError

    def predict_outputs(self, x) -> np.ndarray:
        """Return (N, outputs) probabilities of every output, "not a digit" included when the network has it."""
        return self.predict_proba(x)

    def features_and_proba(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Return (features, probabilities) for images ``x`` (N, 28, 28) from one forward pass.

        ``features`` (N, F) are what the output layer reads (the last hidden layer's activations),
        so a reader can judge from the same pass whether the drawing looks like a digit at all;
        a network with a "not a digit" output adds that output's probability as the last column.
        A model that does not say returns no features (N, 0): it still reads digits (and
        "several"), without "not a digit" or "not sure", since no verdict file can fit it.
        """
        probabilities = self.predict_proba(x)
        return np.zeros((len(probabilities), 0), np.float32), probabilities

    def predict_labels(self, x, batch_size: int = 2000) -> np.ndarray:
        """Return the most probable digit for each image, in batches so a whole test set fits in memory."""
        return np.concatenate(
            [self.predict_proba(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
        )

    def fit(self, x, y, *, epochs, batch_size=128, learning_rate=1e-3, final_learning_rate=None, augment=None,
            seed=0, validation=None, on_epoch=None, backup=None) -> list[dict]:
        """Train on images ``x`` (N, 28, 28) and labels ``y`` (0–9, or ``NOT_A_DIGIT`` with 11 outputs); return one history row per epoch.

        The learning rate falls along a cosine from ``learning_rate`` to ``final_learning_rate``
        (default: a hundredth of it; equal values keep it constant); ``augment(batch, rng)`` distorts each mini-batch;
        ``validation`` (x, y) adds ``val_accuracy`` to each row; ``on_epoch(epoch, row)``
        reports progress. Training and fine-tuning both call this, so a model learns one way.
        ``backup`` is a folder where the run's state is kept after every epoch: given it again,
        a killed run continues from its last epoch (``digitrec/backup.py``) and returns every
        epoch's row, ``on_epoch`` reporting the new ones.
        """
        raise NotImplementedError

    @staticmethod
    def backed_up_epochs(backup) -> int:
        """Return how many epochs of a run ``fit`` kept in the folder ``backup`` (0 if none)."""
        raise NotImplementedError

    def input_gradient(self, x, classes) -> np.ndarray:
        """Return d log p(class) / d x for each image of ``x`` (N, 28, 28): what moved the answer."""
        raise NotImplementedError

    def widened(self, outputs: int) -> "Model":
        """Return a copy of this model with ``outputs`` outputs: its weights, and a new output unit at zero.

        A new "not a digit" unit starts knowing nothing while every digit keeps what it
        learnt, so fine-tuning teaches the new class without training the digits afresh.
        """
        raise NotImplementedError

    def parameter_count(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        """Return a one-line description of the architecture for people."""
        raise NotImplementedError

    def _save_weights(self, path: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, path: Path) -> None:
        raise NotImplementedError

    # -- shared
    def save(self, directory, training: dict | None = None, metrics: dict | None = None) -> Path:
        """Write the weights and their manifest into ``directory``; return the manifest's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights_path = directory / f"{self.model_id}{self.weights_suffix}"
        self._save_weights(weights_path)
        self.manifest = {
            "model_id": self.model_id,
            "display_name": self.display_name,
            "weights_file": weights_path.name,
            "sha256": sha256_of(weights_path),
            "config": self.config,
            "architecture": self.describe(),
            "params": self.parameter_count(),
            "training": training or {},
            "metrics": metrics or {},
            **test_time_views.to_json(self.views, self.views_below),
        }
        return manifests.write(manifests.path_for(directory, self.model_id), self.manifest)

    @classmethod
    def load(cls, manifest_path, weights_path=None, seed=None) -> "Model":
        """Rebuild the model from its manifest and load the weights, verifying their checksum.

        With ``seed`` the model is built by ``fresh(seed)``, so whatever randomness it holds
        (Keras' dropout seeds) repeats: a resumed training run then retraces the same steps.
        """
        manifest = manifests.read(manifest_path)
        if manifest["model_id"] != cls.model_id:
            raise ValueError(f"{manifest_path} describes model {manifest['model_id']!r}, not {cls.model_id!r}.")
        weights_path = Path(weights_path) if weights_path else Path(manifest_path).parent / manifest["weights_file"]
        actual = sha256_of(weights_path)
        if actual != manifest["sha256"]:
            raise ChecksumError(
                f"{weights_path.name}: checksum {actual[:12]}… does not match the manifest's {manifest['sha256'][:12]}…"
            )
        config = dict(manifest["config"])
        if seed is None:
            model = cls(**config)
        else:  # the seed given wins over one in the config (the numpy network keeps its own)
            config.pop("seed", None)
            model = cls.fresh(seed, **config)
        model._load_weights(weights_path)
        model.views, model.views_below = test_time_views.from_json(manifest)
        model.manifest = manifest
        return model
