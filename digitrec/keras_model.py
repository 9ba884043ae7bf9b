"""What the two Keras models share: a compiled forward pass, and weights in ``.weights.h5``.

Keras' ``model.predict`` costs ~50 ms for one image because it builds a data pipeline on
every call; calling the layers inside a ``tf.function`` with a fixed input signature is
traced once and then costs about a millisecond, which is what an interactive demo needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .backup import Backup, run_description  # noqa: E402
from .base import FINAL_FRACTION, Model, check_batch, check_labels, digits_only, with_own_verdict  # noqa: E402
from .views import averaged  # noqa: E402


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

        features = self.feature_network()
        self._features = tf.function(
            lambda x: features(x, training=False),
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

    def feature_network(self) -> keras.Model:
        """Return a network sharing the layers whose outputs are (features, probabilities).

        The features are the inputs of every softmax output layer (one per CNN member), side
        by side: what the network knows about the drawing just before it picks a digit.
        """
        heads = [layer for layer in self.network.layers
                 if isinstance(layer, keras.layers.Dense) and layer.get_config().get("activation") == "softmax"]
        features = [head.input for head in heads]
        joined = features[0] if len(features) == 1 else keras.layers.Concatenate()(features)
        return keras.Model(self.network.input, [joined, self.network.output])

    def features_and_proba(self, x):
        x = check_batch(x)
        features = averaged(lambda views: self._features(tf.convert_to_tensor(views)), x, self.views, self.views_below)
        return with_own_verdict(*features)

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

    @classmethod
    def fresh(cls, seed=0, **config):
        """Return a new model built after seeding Keras, so its first weights repeat from run to run."""
        keras.utils.set_random_seed(seed)
        return cls(**config)

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

    def fit(self, x, y, *, epochs, batch_size=128, learning_rate=1e-3, final_learning_rate=None, augment=None,
            seed=0, validation=None, on_epoch=None, backup=None):
        """Train ``training_network`` with Adam on shuffled mini-batches, reproducible from ``seed``.

        Batches are drawn from (seed, epoch, batch), so a resumed run sees the same batches;
        the loss is the class's ``training_loss`` (for the CNN, each member's own). With
        ``backup`` Keras' ``BackupAndRestore`` keeps the weights, the optimizer and the epoch.
        """
        x = check_batch(x)
        y = check_labels(y, len(x), self.outputs)
        final_learning_rate = learning_rate * FINAL_FRACTION if final_learning_rate is None else final_learning_rate
        keras.utils.set_random_seed(seed)
        steps = int(np.ceil(len(x) / batch_size))
        schedule = learning_rate
        if final_learning_rate != learning_rate:
            schedule = keras.optimizers.schedules.CosineDecay(
                learning_rate, epochs * steps, alpha=final_learning_rate / learning_rate
            )
        network = self.training_network()
        network.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=self.training_loss,
            metrics=[keras.metrics.MeanMetricWrapper(self.training_accuracy, name="accuracy")],
        )
        batches = _Batches(x, y, batch_size, seed, augment)
        history, kept = [], None
        if backup is not None:
            kept = Backup(backup, run_description(
                self, network.get_weights(), x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                final_learning_rate=final_learning_rate, augment=augment, seed=seed,
            ))
            history = kept.history(self.backed_up_epochs(backup))

        def end_of_epoch(epoch, logs):
            row = {"epoch": epoch + 1, **_floats(logs)}
            history.append(row)
            if kept is not None:
                kept.save_history(history)  # before BackupAndRestore saves the state it describes
            if on_epoch is not None:
                on_epoch(epoch + 1, row)

        # Dropout's random state is not among the weights BackupAndRestore saves: each epoch
        # starts it where one uninterrupted run would be, so a resumed run drops the same units.
        dropout_states = [variable for variable in network.variables if "seed_generator_state" in variable.path]

        def start_of_epoch(epoch, logs):
            batches.start(epoch)
            for state in dropout_states:
                state.assign(np.array([state.numpy()[0], epoch * steps], dtype=state.dtype))

        callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=start_of_epoch, on_epoch_end=end_of_epoch)]
        if kept is not None:
            # double_checkpoint: a process killed while writing the weights file leaves it unreadable,
            # and Keras then goes back to the copy of the epoch before
            callbacks.append(
                keras.callbacks.BackupAndRestore(kept.path, double_checkpoint=True, delete_checkpoint=False)
            )
        network.fit(batches, epochs=epochs, validation_data=validation, callbacks=callbacks, shuffle=False,
                    verbose=2 if on_epoch is None else 0)  # no shuffle: _Batches shuffles, from (seed, epoch)
        network._initial_epoch = None  # BackupAndRestore's resumed epoch, which would outlive this fit
        return history

    @staticmethod
    def backed_up_epochs(backup) -> int:
        """Return how many epochs ``BackupAndRestore`` saved in ``backup`` (0 if none)."""
        path = Path(backup) / "training_metadata.json"
        if not path.exists():
            return 0
        with open(path) as file:
            return int(json.load(file)["epoch"])

    def predict_proba(self, x):
        return digits_only(self.predict_outputs(x))

    def predict_outputs(self, x):
        x = check_batch(x)
        outputs = averaged(lambda views: self._forward(tf.convert_to_tensor(views)), x, self.views, self.views_below)
        return np.asarray(outputs, dtype=np.float32)

    def parameter_count(self):
        return int(self.network.count_params())

    def widened(self, outputs):
        wider = type(self)(**{**self.config, "outputs": outputs})
        for mine, theirs in zip(self.network.layers, wider.network.layers):
            weights = [_widen(old, new.shape) for old, new in zip(mine.get_weights(), theirs.get_weights())]
            theirs.set_weights(weights)
        wider.views, wider.views_below = self.views, self.views_below  # how it reads a drawing stays
        return wider

    def _save_weights(self, path: Path):
        """Save the layers' weights only: a compiled network would also save the optimizer's state (3× the size)."""
        bare = self.build(**self.config)
        bare.set_weights(self.network.get_weights())
        bare.save_weights(str(path))

    def _load_weights(self, path: Path):
        self.network.load_weights(str(path))


def _widen(array, shape):
    """Return ``array`` zero-padded along its last axis to ``shape`` (an output layer's kernel or bias)."""
    if array.shape == tuple(shape):
        return array
    if array.shape[:-1] != tuple(shape[:-1]) or array.shape[-1] > shape[-1]:
        raise ValueError(f"Cannot widen weights of shape {array.shape} to {tuple(shape)}.")
    padding = [(0, 0)] * (array.ndim - 1) + [(0, shape[-1] - array.shape[-1])]
    return np.pad(array, padding)


def _floats(logs):
    return {name: float(value) for name, value in (logs or {}).items()}


class _Batches(keras.utils.PyDataset):
    """Shuffled mini-batches, each distorted by ``augment`` if given, reproducible from (seed, epoch, batch)."""

    def __init__(self, x, y, batch_size, seed, augment):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed, self.augment = x, y, batch_size, seed, augment
        self.start(0)

    def start(self, epoch):
        """Shuffle for ``epoch``: called as each epoch begins, so a run resumed at any epoch draws that epoch's batches."""
        self.epoch = epoch
        self.order = np.random.default_rng((self.seed, epoch)).permutation(len(self.x))

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = self.x[chosen]
        if self.augment is not None:
            batch = self.augment(batch, np.random.default_rng((self.seed, self.epoch, index)))
        return batch, self.y[chosen]
