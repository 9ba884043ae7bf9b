"""A fully connected network in Keras: hidden ReLU layers with dropout, softmax output."""

from __future__ import annotations

import keras

from .base import check_outputs, head
from .keras_model import KerasModel


class KerasDense(KerasModel):
    model_id = "dense"
    display_name = "Keras dense network"
    training_defaults = dict(epochs=30, batch_size=128, learning_rate=1e-3, clean_epochs=0)

    def __init__(self, hidden=(1024, 1024), dropout=0.3, outputs=10):
        super().__init__(hidden=[int(h) for h in hidden], dropout=float(dropout), outputs=check_outputs(outputs))

    @staticmethod
    def build(hidden, dropout, outputs=10):
        """Return flatten → (dense + ReLU → dropout) per hidden layer → softmax."""
        inputs = keras.Input(shape=(28, 28), name="image")
        x = keras.layers.Flatten()(inputs)
        for units in hidden:
            x = keras.layers.Dense(units, activation="relu")(x)
            x = keras.layers.Dropout(dropout)(x)
        probabilities = keras.layers.Dense(outputs, activation="softmax", name="probabilities")(x)
        return keras.Model(inputs, probabilities, name="dense")

    def describe(self):
        hidden = " → ".join(str(h) for h in self.config["hidden"])
        return f"784 → {hidden} → {head(self.config['outputs'])}, fully connected, ReLU, dropout {self.config['dropout']:g}, softmax"
