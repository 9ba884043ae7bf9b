"""What the two Keras models share: a compiled forward pass, and weights in ``.weights.h5``.

Keras' ``model.predict`` costs ~50 ms for one image because it builds a data pipeline on
every call; calling the layers inside a ``tf.function`` with a fixed input signature is
traced once and then costs about a millisecond, which is what an interactive demo needs.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .base import Model, check_batch  # noqa: E402


class KerasModel(Model):
    """A Keras network built by ``build(**config)``; subclasses provide ``build`` and ``describe``."""

    weights_suffix = ".weights.h5"

    def __init__(self, **config):
        super().__init__(**config)
        self.network = self.build(**config)
        self._forward = tf.function(
            lambda x: self.network(x, training=False),
            input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32)],
            reduce_retracing=True,
        )

        self._gradient = tf.function(
            self._log_probability_gradient,
            input_signature=[
                tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32),
                tf.TensorSpec(shape=(None,), dtype=tf.int32),
            ],
            reduce_retracing=True,
        )

    def _log_probability_gradient(self, x, classes):
        with tf.GradientTape() as tape:
            tape.watch(x)
            probabilities = self.network(x, training=False)
            chosen = tf.gather(probabilities, classes, axis=1, batch_dims=1)
            log_probability = tf.math.log(chosen + 1e-12)
        return tape.gradient(log_probability, x)

    def input_gradient(self, x, classes):
        x = check_batch(x)
        classes = tf.convert_to_tensor(np.asarray(classes, dtype=np.int32))
        return np.asarray(self._gradient(tf.convert_to_tensor(x), classes), dtype=np.float32)

    @staticmethod
    def build(**config) -> keras.Model:
        raise NotImplementedError

    def training_network(self) -> keras.Model:
        """Return the network ``fit`` trains; it shares its layers with ``self.network``."""
        return self.network

    def training_loss(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    def training_accuracy(self, y_true, y_pred):
        return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)

    def predict_proba(self, x):
        x = check_batch(x)
        return np.asarray(self._forward(tf.convert_to_tensor(x)), dtype=np.float32)

    def parameter_count(self):
        return int(self.network.count_params())

    def _save_weights(self, path: Path):
        """Save the layers' weights only: a compiled network would also save the optimizer's state (3× the size)."""
        bare = self.build(**self.config)
        bare.set_weights(self.network.get_weights())
        bare.save_weights(str(path))

    def _load_weights(self, path: Path):
        self.network.load_weights(str(path))
