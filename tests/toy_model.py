"""A fourth model for the registry test: one linear layer in numpy, small enough to train in a second.

It implements the whole ``digitrec.base.Model`` interface and nothing else, so the test
shows what a new model costs: this module plus one line in ``digitrec.registry.REGISTRY``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitrec.base import FINAL_FRACTION, Model, check_batch
from digitrec.numpy_net import softmax


class ToyModel(Model):
    model_id = "toy"
    display_name = "Toy linear model"
    weights_suffix = ".npz"
    training_defaults = dict(epochs=1, batch_size=64, learning_rate=0.5, clean_epochs=0)

    def __init__(self, seed=0):
        super().__init__(seed=int(seed))
        rng = np.random.default_rng(seed)
        self.w = (rng.standard_normal((784, 10)) * 0.01).astype(np.float32)
        self.b = np.zeros(10, np.float32)

    @classmethod
    def fresh(cls, seed=0, **config):
        return cls(seed=seed)

    def predict_proba(self, x):
        x = check_batch(x).reshape(-1, 784)
        return softmax(x @ self.w + self.b).astype(np.float32)

    def fit(self, x, y, *, epochs, batch_size=128, learning_rate=1e-3, final_learning_rate=None, augment=None,
            seed=0, validation=None, on_epoch=None):
        """Train by plain mini-batch gradient descent on the cross-entropy."""
        x, y = check_batch(x), np.asarray(y, np.int64)
        final_learning_rate = learning_rate * FINAL_FRACTION if final_learning_rate is None else final_learning_rate
        rng = np.random.default_rng(seed)
        history = []
        for epoch in range(epochs):
            eta = learning_rate + (final_learning_rate - learning_rate) * epoch / max(1, epochs - 1)
            losses = []
            for start in range(0, len(x), batch_size):
                index = rng.permutation(len(x))[:batch_size]
                batch = x[index] if augment is None else augment(x[index], rng)
                a = batch.reshape(len(index), -1)
                p = softmax(a @ self.w + self.b)
                losses.append(float(-np.mean(np.log(p[np.arange(len(index)), y[index]] + 1e-12))))
                delta = p
                delta[np.arange(len(index)), y[index]] -= 1.0
                self.w -= (eta * a.T @ delta / len(index)).astype(np.float32)
                self.b -= (eta * delta.mean(axis=0)).astype(np.float32)
            row = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            if validation is not None:
                row["val_accuracy"] = float((self.predict_labels(validation[0]) == validation[1]).mean())
            history.append(row)
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
        return history

    def input_gradient(self, x, classes):
        x = check_batch(x)
        p = self.predict_proba(x)
        delta = -p
        delta[np.arange(len(x)), np.asarray(classes)] += 1.0
        return (delta @ self.w.T).reshape(x.shape).astype(np.float32)

    def parameter_count(self):
        return int(self.w.size + self.b.size)

    def describe(self):
        return "784 → 10, one linear layer, softmax"

    def _save_weights(self, path: Path):
        with open(path, "wb") as file:
            np.savez(file, w=self.w, b=self.b)

    def _load_weights(self, path: Path):
        with np.load(path) as data:
            self.w, self.b = data["w"].astype(np.float32), data["b"].astype(np.float32)
