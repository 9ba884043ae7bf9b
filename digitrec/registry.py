"""The three models by id, loaded once, and ``predict``: the one function app and API call."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from . import manifest as manifests
from .messages import shown
from .preprocess import preprocess, to_uint8
from .weights import bundled_dir

# Model id → "module:Class". A new model is one module plus one line here: everything else
# (MODELS, the app's choices and comparison, training, fine-tuning, benchmarks) reads this
# dict. Modules are imported on first use, so using the numpy model never loads tensorflow.
REGISTRY = {
    "cnn": "digitrec.keras_cnn:KerasCNN",
    "dense": "digitrec.keras_dense:KerasDense",
    "numpy": "digitrec.numpy_net:NumpyNet",
}
_loaded = {}
_lock = threading.Lock()


class UnknownModelError(ValueError):
    """Raised for a model id that is not one of MODEL_IDS."""


class _ModelIds(Sequence):
    """The registered model ids in order; a live view of REGISTRY, so a model added later is seen everywhere."""

    def __getitem__(self, index):
        return tuple(REGISTRY)[index]

    def __len__(self):
        return len(REGISTRY)

    def __repr__(self):
        return repr(tuple(REGISTRY))


MODEL_IDS = _ModelIds()


def model_class(model_id):
    """Return the class of the model with this id."""
    module, name = REGISTRY[check_model_id(model_id)].split(":")
    return getattr(importlib.import_module(module), name)


def check_model_id(model_id) -> str:
    """Return ``model_id`` if it names a model, else raise UnknownModelError listing the valid ids."""
    if not isinstance(model_id, str) or model_id not in REGISTRY:
        raise UnknownModelError(f"Unknown model {shown(model_id)}; valid models: {', '.join(REGISTRY)}.")
    return model_id


def get_model(model_id):
    """Return the model with this id, loading its weights on first use (hub or bundled)."""
    check_model_id(model_id)
    model = _loaded.get(model_id)
    if model is None:
        with _lock:
            model = _loaded.get(model_id)
            if model is None:
                from .weights import load_weights

                model = load_weights(model_class(model_id))
                _loaded[model_id] = model
    return model


def describe(model_id) -> dict:
    """Return a model's description (name, architecture, parameters, training, metrics, source).

    It comes from the manifest of the weights that serve once the model is loaded (hub or
    bundled), and from the bundled manifest before, so nothing is loaded just to be named.
    """
    check_model_id(model_id)
    model = _loaded.get(model_id)
    if model is not None:
        return {**manifests.describe(model.manifest, model_id), "source": getattr(model, "source", "")}
    try:
        manifest = manifests.read(manifests.path_for(bundled_dir(), model_id))
    except (OSError, ValueError):  # no weights yet: the class still knows its name
        return {**manifests.describe({}, model_id, model_class(model_id).display_name), "source": ""}
    return {**manifests.describe(manifest, model_id), "source": ""}


class _Models(Mapping):
    """Model id → ``describe(model_id)``, read on access so it always tells about the serving weights."""

    def __getitem__(self, model_id):
        if model_id not in REGISTRY:
            raise KeyError(model_id)
        return describe(model_id)

    def __iter__(self):
        return iter(tuple(REGISTRY))

    def __len__(self):
        return len(REGISTRY)


MODELS = _Models()


def predict(image, model_id="cnn", method="mnist"):
    """Return ``(probs, processed)`` for one drawing.

    ``probs`` is ``{"0": p0, …, "9": p9}`` summing to 1; ``processed`` the (28, 28) uint8
    image the model read (white ink on black). Raises EmptyDrawingError for an empty
    drawing, InvalidImageError for unreadable input, UnknownModelError for a bad id.
    ``method`` selects the preprocessing ("mnist", the default; "legacy" for comparison).
    The drawing is read before the model is loaded, so bad input never costs a model load.
    """
    check_model_id(model_id)
    x = preprocess(image, method)
    return classify(x, model_id), to_uint8(x)


def classify(x: np.ndarray, model_id="cnn") -> dict:
    """Return ``{"0": p0, …, "9": p9}`` for one already preprocessed (28, 28) image in [0, 1].

    The app reads a drawing once when the pen lifts and keeps the 28×28 image, so a click
    (or another model) costs only this.
    """
    p = np.asarray(get_model(model_id).predict_proba(np.asarray(x, np.float32)[None]), dtype=np.float64)[0]
    p = p / p.sum()
    return {str(digit): float(p[digit]) for digit in range(10)}
