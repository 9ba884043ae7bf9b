"""The three models by id, loaded once, and ``predict``: the one function app and API call."""

from __future__ import annotations

import importlib
import json
import threading

import numpy as np

from .preprocess import preprocess, to_uint8
from .weights import bundled_dir

# Model id → (module, class). Modules are imported on first use, so using the numpy
# model never loads tensorflow.
REGISTRY = {
    "cnn": ("digitrec.keras_cnn", "KerasCNN"),
    "dense": ("digitrec.keras_dense", "KerasDense"),
    "numpy": ("digitrec.numpy_net", "NumpyNet"),
}
MODEL_IDS = tuple(REGISTRY)
_DISPLAY_NAMES = {"cnn": "Keras CNN", "dense": "Keras dense network", "numpy": "Numpy network (from scratch)"}
_loaded = {}
_lock = threading.Lock()


class UnknownModelError(ValueError):
    """Raised for a model id that is not one of MODEL_IDS."""


def model_class(model_id):
    """Return the class of the model with this id."""
    module, name = REGISTRY[check_model_id(model_id)]
    return getattr(importlib.import_module(module), name)


def check_model_id(model_id) -> str:
    """Return ``model_id`` if it names a model, else raise UnknownModelError listing the valid ids."""
    if not isinstance(model_id, str) or model_id not in MODEL_IDS:
        shown = repr(model_id) if len(repr(model_id)) <= 40 else repr(model_id)[:37] + "..."
        raise UnknownModelError(f"Unknown model {shown}; valid models: {', '.join(MODEL_IDS)}.")
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


def describe_models() -> dict:
    """Return model id → description (name, architecture, parameters, training, metrics) from the manifests."""
    described = {}
    for model_id in MODEL_IDS:
        path = bundled_dir() / f"{model_id}.json"
        try:
            with open(path) as file:
                manifest = json.load(file)
        except (OSError, ValueError):
            manifest = {}
        described[model_id] = {
            "name": manifest.get("display_name", _DISPLAY_NAMES[model_id]),
            "architecture": manifest.get("architecture", "(no weights yet)"),
            "params": manifest.get("params"),
            "training": manifest.get("training", {}),
            "metrics": manifest.get("metrics", {}),
        }
    return described


MODELS = describe_models()


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
