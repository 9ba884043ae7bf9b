"""A convolutional network in Keras: two blocks of two 3×3 convolutions, then a dense head."""

from __future__ import annotations

import keras

from .keras_model import KerasModel


class KerasCNN(KerasModel):
    model_id = "cnn"
    display_name = "Keras CNN"

    def __init__(self, filters=(32, 64), dense_units=256, dropout=0.4):
        super().__init__(filters=list(filters), dense_units=int(dense_units), dropout=float(dropout))

    @staticmethod
    def build(filters, dense_units, dropout):
        """Return conv-BN-ReLU ×2 → max-pool per block, then dense-BN-ReLU → dropout → softmax."""
        inputs = keras.Input(shape=(28, 28), name="image")
        x = keras.layers.Reshape((28, 28, 1))(inputs)
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
        outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
        return keras.Model(inputs, outputs, name="cnn")

    def describe(self):
        blocks = " → ".join(f"2×conv3×3({w})+BN+ReLU → maxpool" for w in self.config["filters"])
        return f"{blocks} → dense({self.config['dense_units']})+BN+ReLU → dropout {self.config['dropout']:g} → softmax(10)"
