"""A convolutional network in Keras: two blocks of two 3×3 convolutions, then a dense head.

With ``members`` > 1 the model is that many such networks side by side, started from
different random weights and each trained on its own loss, whose probabilities are
averaged. Averaging removes the errors one network makes by chance on a borderline
drawing; it is the usual last step of the best single-architecture MNIST results.
"""

from __future__ import annotations

import keras

from .base import check_outputs, head
from .keras_model import KerasModel


class KerasCNN(KerasModel):
    model_id = "cnn"
    display_name = "Keras CNN"
    # the last 3 epochs without augmentation settle the members on real drawings (training/train.py)
    training_defaults = dict(epochs=30, batch_size=128, learning_rate=2e-3, clean_epochs=3)

    def __init__(self, filters=(32, 64), dense_units=256, dropout=0.4, members=2, outputs=10):
        if int(members) < 1:
            raise ValueError(f"members must be at least 1; got {members}.")
        super().__init__(
            filters=list(filters), dense_units=int(dense_units), dropout=float(dropout), members=int(members),
            outputs=check_outputs(outputs),
        )

    @staticmethod
    def tower(x, filters, dense_units, dropout, name, outputs=10):
        """Return conv-BN-ReLU ×2 → max-pool per block, then dense-BN-ReLU → dropout → softmax."""
        for width in filters:
            for _ in range(2):
                x = keras.layers.Conv2D(width, 3, use_bias=False)(x)
                x = keras.layers.BatchNormalization()(x)
                x = keras.layers.ReLU()(x)
            x = keras.layers.MaxPooling2D()(x)
            x = keras.layers.Dropout(dropout / 2)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(dense_units, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Dropout(dropout)(x)
        return keras.layers.Dense(outputs, activation="softmax", name=name)(x)

    @classmethod
    def build(cls, filters, dense_units, dropout, members=1, outputs=10):
        """Return the network: one tower, or the average of ``members`` towers' probabilities."""
        inputs = keras.Input(shape=(28, 28), name="image")
        x = keras.layers.Reshape((28, 28, 1))(inputs)
        if members == 1:
            return keras.Model(inputs, cls.tower(x, filters, dense_units, dropout, "probabilities", outputs), name="cnn")
        towers = [cls.tower(x, filters, dense_units, dropout, f"member{k}", outputs) for k in range(members)]
        outputs = keras.layers.Average(name="probabilities")(towers)
        return keras.Model(inputs, outputs, name="cnn")

    def training_network(self):
        """Return a network sharing the layers whose output stacks every member's probabilities (N, members, outputs)."""
        members = self.config["members"]
        names = ["probabilities"] if members == 1 else [f"member{k}" for k in range(members)]
        outputs = self.config["outputs"]
        towers = [keras.layers.Reshape((1, outputs))(self.network.get_layer(name).output) for name in names]
        stacked = towers[0] if members == 1 else keras.layers.Concatenate(axis=1)(towers)
        return keras.Model(self.network.input, stacked, name="cnn_members")

    def training_loss(self, y_true, y_pred):
        """Return each member's own cross-entropy, averaged: members learn independently, not as one wide net."""
        losses = [keras.losses.sparse_categorical_crossentropy(y_true, y_pred[:, k]) for k in range(y_pred.shape[1])]
        return keras.ops.mean(keras.ops.stack(losses, axis=-1), axis=-1)

    def training_accuracy(self, y_true, y_pred):
        return keras.metrics.sparse_categorical_accuracy(y_true, keras.ops.mean(y_pred, axis=1))

    def describe(self):
        blocks = " → ".join(f"2×conv3×3({w})+BN+ReLU → maxpool" for w in self.config["filters"])
        tower = f"{blocks} → dense({self.config['dense_units']})+BN+ReLU → dropout {self.config['dropout']:g} → softmax({head(self.config['outputs'])})"
        members = self.config["members"]
        return tower if members == 1 else f"average of {members} networks, each {tower}"
