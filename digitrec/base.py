"""The interface every model shares: ``predict_proba``, ``save`` and ``load``.

A model's weights never travel alone. ``save`` writes the weights file and, beside it,
a manifest ``<model_id>.json`` holding the format version, the architecture config that
rebuilds the network, the parameter count, the training settings, the measured metrics
and the weights file's SHA-256 (as nanoGPT keeps ``model_args`` beside its weights).
``load`` refuses a manifest of another format version or a file whose checksum differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
CLASSES = 10


class ChecksumError(ValueError):
    """Raised when a weights file does not match the checksum in its manifest."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    """Base class: subclasses set ``model_id``, ``display_name`` and ``weights_suffix``."""

    model_id = ""
    display_name = ""
    weights_suffix = ""

    def __init__(self, **config):
        self.config = config

    # -- what subclasses implement
    def predict_proba(self, x) -> np.ndarray:
        """Return (N, 10) class probabilities for images ``x`` of shape (N, 28, 28), ink = 1."""
        raise NotImplementedError

    def predict_labels(self, x, batch_size: int = 2000) -> np.ndarray:
        """Return the most probable digit for each image, in batches so a whole test set fits in memory."""
        return np.concatenate(
            [self.predict_proba(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
        )

    def input_gradient(self, x, classes) -> np.ndarray:
        """Return d log p(class) / d x for each image of ``x`` (N, 28, 28): what moved the answer."""
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
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "display_name": self.display_name,
            "weights_file": weights_path.name,
            "sha256": sha256_of(weights_path),
            "config": self.config,
            "architecture": self.describe(),
            "params": self.parameter_count(),
            "training": training or {},
            "metrics": metrics or {},
        }
        manifest_path = directory / f"{self.model_id}.json"
        with open(manifest_path, "w") as file:
            json.dump(manifest, file, indent=2)
            file.write("\n")
        return manifest_path

    @classmethod
    def load(cls, manifest_path, weights_path=None) -> "Model":
        """Rebuild the model from its manifest and load the weights, verifying their checksum."""
        manifest = read_manifest(manifest_path)
        if manifest["model_id"] != cls.model_id:
            raise ValueError(f"{manifest_path} describes model {manifest['model_id']!r}, not {cls.model_id!r}.")
        weights_path = Path(weights_path) if weights_path else Path(manifest_path).parent / manifest["weights_file"]
        actual = sha256_of(weights_path)
        if actual != manifest["sha256"]:
            raise ChecksumError(
                f"{weights_path.name}: checksum {actual[:12]}… does not match the manifest's {manifest['sha256'][:12]}…"
            )
        model = cls(**manifest["config"])
        model._load_weights(weights_path)
        model.manifest = manifest
        return model


def read_manifest(path) -> dict:
    """Read a manifest and check its format version."""
    with open(path) as file:
        manifest = json.load(file)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version!r}; this code reads version {FORMAT_VERSION}.")
    return manifest
