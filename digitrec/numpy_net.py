"""A fully connected network written from scratch in numpy, after Nielsen's ``network.py``.

Forward pass, backpropagation, the softmax cross-entropy loss and the Adam optimiser are
all here, by hand; nothing imports tensorflow. Unlike Nielsen's original it works on whole
mini-batches as arrays: activations are rows, so a layer computes ``z = a @ w.T + b`` with
Nielsen's weight shapes (``w[j, k]`` joins neuron k of the previous layer to neuron j).
Hidden layers use ReLU (with inverted dropout while training), the output layer softmax.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .backup import STATE_FILE, Backup, run_description
from .base import CLASSES, FINAL_FRACTION, Model, check_batch, check_labels, digits_only, head, with_own_verdict
from .views import averaged

BACKED_UP_ARRAYS = ("w", "b", "m_w", "v_w", "m_b", "v_b")  # the names fit's backup keeps each layer's arrays under


def relu(z):
    return np.maximum(z, 0)


def relu_prime(z):
    return (z > 0).astype(z.dtype)


def softmax(z):
    """Return row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class NumpyNet(Model):
    model_id = "numpy"
    display_name = "Numpy network (from scratch)"
    weights_suffix = ".npz"

    training_defaults = dict(epochs=30, batch_size=128, learning_rate=1e-3, clean_epochs=0)

    def __init__(self, sizes=(784, 800, 800, 10), dropout=0.2, seed=0, dtype="float32"):
        """Create a network with layer ``sizes``, He-initialised so ReLU layers keep their scale.

        The last size is 10 (digits) or 11 (digits and "not a digit", label ``NOT_A_DIGIT``).
        """
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] not in (CLASSES, CLASSES + 1):
            raise ValueError(f"sizes must start with 784 and end with {CLASSES} or {CLASSES + 1}; got {sizes}.")
        super().__init__(sizes=sizes, dropout=float(dropout), seed=int(seed), dtype=str(dtype))
        self.sizes = sizes
        self.dropout = float(dropout)
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.weights = [
            (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(self.dtype)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        self.biases = [np.zeros(n_out, dtype=self.dtype) for n_out in sizes[1:]]

    @property
    def outputs(self):
        return self.sizes[-1]

    @classmethod
    def fresh(cls, seed=0, **config):
        """Return a new network whose He-initialised weights are drawn from ``seed``."""
        return cls(**{**config, "seed": seed})

    # ------------------------------------------------------------ inference
    def feedforward(self, a):
        """Return the output layer's pre-softmax values for input rows ``a`` (N, 784)."""
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            a = relu(a @ w.T + b)
        return a @ self.weights[-1].T + self.biases[-1]

    def predict_proba(self, x):
        return digits_only(self.predict_outputs(x))

    def predict_outputs(self, x):
        x = check_batch(x)
        return averaged(lambda views: softmax(self.feedforward(self.rows(views))).astype(np.float32), x,
                        self.views, self.views_below)

    def features_and_proba(self, x):
        """Return the last hidden layer's activations (and "not a digit") and the softmax, from one ``forward`` pass."""
        x = check_batch(x)
        features = averaged(lambda views: self.forward(self.rows(views))[1][-2:], x, self.views, self.views_below)
        return with_own_verdict(*features)

    def rows(self, x):
        """Return images (N, 28, 28) as the input rows (N, 784) the first layer reads, in the network's dtype."""
        return x.reshape(-1, self.sizes[0]).astype(self.dtype, copy=False)

    def input_gradient(self, x, classes):
        """Backpropagate d log p(class) / dz = onehot − p down to the input pixels, by hand."""
        x = check_batch(x)
        zs, activations, _ = self.forward(x.reshape(len(x), -1).astype(self.dtype, copy=False))
        delta = -activations[-1]
        delta[np.arange(len(x)), np.asarray(classes)] += 1.0
        delta = delta @ self.weights[-1]
        for w, z in zip(reversed(self.weights[:-1]), reversed(zs[:-1])):
            delta = (delta * relu_prime(z)) @ w
        return delta.reshape(x.shape).astype(np.float32)

    # ------------------------------------------------------------ learning
    def cost(self, x, y):
        """Return the mean cross-entropy of the softmax outputs against labels ``y``."""
        probabilities = softmax(self.feedforward(x))
        return float(-np.mean(np.log(probabilities[np.arange(len(y)), y] + 1e-12)))

    def forward(self, x, rng=None):
        """Return ``(zs, activations, masks)``: every layer's weighted input, output and dropout mask.

        Backpropagation needs each layer's z and a, not only the output, so all are kept;
        ``activations`` starts with ``x`` and ends with the softmax probabilities. With
        ``rng`` given, hidden activations are dropped with probability ``self.dropout``
        (inverted dropout, so inference needs no rescaling); otherwise masks are None.
        """
        activations = [x]  # layer by layer, the batch's activations
        zs = []  # layer by layer, the weighted inputs z = a·wᵀ + b
        masks = []
        a = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            z = a @ w.T + b
            zs.append(z)
            a = relu(z)
            if rng is not None and self.dropout > 0:
                keep = 1.0 - self.dropout
                mask = (rng.random(a.shape) < keep).astype(a.dtype) / keep
                a = a * mask
            else:
                mask = None
            masks.append(mask)
            activations.append(a)
        z = a @ self.weights[-1].T + self.biases[-1]
        zs.append(z)
        activations.append(softmax(z))
        return zs, activations, masks

    def backprop(self, x, y, rng=None):
        """Return ``(cost, nabla_b, nabla_w)``: the mean loss over the batch and its gradients.

        ``rng`` turns dropout on, as in ``forward``.
        """
        zs, activations, masks = self.forward(x, rng)
        probabilities = activations[-1]
        n = len(y)
        cost = float(-np.mean(np.log(probabilities[np.arange(n), y] + 1e-12)))

        # Output error for softmax with cross-entropy: δᴸ = (p − onehot(y)) / n.
        delta = probabilities.copy()
        delta[np.arange(n), y] -= 1.0
        delta /= n
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        nabla_b[-1] = delta.sum(axis=0)
        nabla_w[-1] = delta.T @ activations[-2]
        # Backpropagate: δˡ = (δˡ⁺¹ · wˡ⁺¹) ⊙ mask ⊙ relu'(zˡ).
        for layer in range(2, len(self.sizes)):
            delta = delta @ self.weights[-layer + 1]
            if masks[-layer + 1] is not None:
                delta = delta * masks[-layer + 1]
            delta = delta * relu_prime(zs[-layer])
            nabla_b[-layer] = delta.sum(axis=0)
            nabla_w[-layer] = delta.T @ activations[-layer - 1]
        return cost, nabla_b, nabla_w

    def fit(self, x, y, *, epochs, batch_size=128, learning_rate=1e-3, final_learning_rate=None, augment=None,
            seed=0, validation=None, on_epoch=None, backup=None):
        """Train with mini-batch Adam written out by hand (``Model.fit`` documents the arguments).

        Each step backpropagates one mini-batch (``backprop``) and moves every weight by
        Adam's bias-corrected ratio of the gradient's running mean to its running RMS. With
        ``backup`` the weights, the moments, the step and the random generator are saved after
        every epoch, and a run given the same folder again continues from there.
        """
        x = check_batch(x)
        y = check_labels(y, len(x), self.outputs)
        final_learning_rate = learning_rate * FINAL_FRACTION if final_learning_rate is None else final_learning_rate
        rng = np.random.default_rng(seed)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        m_w = [np.zeros_like(w) for w in self.weights]
        v_w = [np.zeros_like(w) for w in self.weights]
        m_b = [np.zeros_like(b) for b in self.biases]
        v_b = [np.zeros_like(b) for b in self.biases]
        steps_per_epoch = int(np.ceil(len(x) / batch_size))
        total_steps = epochs * steps_per_epoch
        step = 0
        history, kept, first_epoch = [], None, 0
        if backup is not None:
            kept = Backup(backup, run_description(
                self, self.weights + self.biases, x, y, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, final_learning_rate=final_learning_rate, augment=augment, seed=seed,
            ))
            state = kept.state()
            if state is not None:
                layers = len(self.weights)
                self.weights, self.biases, m_w, v_w, m_b, v_b = [[state[f"{name}{i}"] for i in range(layers)]
                                                                 for name in BACKED_UP_ARRAYS]
                first_epoch, step = int(state["epoch"]), int(state["step"])
                rng.bit_generator.state = json.loads(str(state["rng"]))
            history = kept.history(first_epoch)
        for epoch in range(first_epoch, epochs):
            order = rng.permutation(len(x))
            losses = []
            for start in range(0, len(x), batch_size):
                index = order[start : start + batch_size]
                batch = x[index]
                if augment is not None:
                    batch = augment(batch, rng)
                inputs = batch.reshape(len(index), -1).astype(self.dtype, copy=False)
                cost, nabla_b, nabla_w = self.backprop(inputs, y[index], rng=rng)
                losses.append(cost)
                step += 1
                eta = final_learning_rate + 0.5 * (learning_rate - final_learning_rate) * (
                    1 + np.cos(np.pi * step / total_steps)
                )
                correction1 = 1 - beta1**step
                correction2 = 1 - beta2**step
                for i in range(len(self.weights)):
                    for param, grad, m, v in (
                        (self.weights[i], nabla_w[i], m_w[i], v_w[i]),
                        (self.biases[i], nabla_b[i], m_b[i], v_b[i]),
                    ):
                        m *= beta1
                        m += (1 - beta1) * grad
                        v *= beta2
                        v += (1 - beta2) * grad * grad
                        param -= (eta * (m / correction1) / (np.sqrt(v / correction2) + eps)).astype(self.dtype)
            row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "learning_rate": float(eta)}
            if validation is not None:
                x_valid, y_valid = validation
                row["val_accuracy"] = float((self.predict_labels(x_valid) == np.asarray(y_valid)).mean())
            history.append(row)
            if kept is not None:
                kept.save_history(history)  # before the state it describes: a row without its state is dropped
                arrays = {f"{name}{i}": array
                          for name, arrays in zip(BACKED_UP_ARRAYS, (self.weights, self.biases, m_w, v_w, m_b, v_b))
                          for i, array in enumerate(arrays)}
                kept.save_state(**arrays, epoch=epoch + 1, step=step, rng=json.dumps(rng.bit_generator.state))
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
        return history

    @staticmethod
    def backed_up_epochs(backup) -> int:
        """Return how many epochs a run saved in ``backup`` (0 if none)."""
        path = Path(backup) / STATE_FILE
        if not path.exists():
            return 0
        with np.load(path) as state:
            return int(state["epoch"])

    def widened(self, outputs):
        extra = outputs - self.sizes[-1]
        if extra < 0:
            raise ValueError(f"Cannot narrow a network of {self.sizes[-1]} outputs to {outputs}.")
        wider = type(self)(**{**self.config, "sizes": [*self.sizes[:-1], outputs]})
        wider.weights = [w.copy() for w in self.weights[:-1]] + [np.pad(self.weights[-1], [(0, extra), (0, 0)])]
        wider.biases = [b.copy() for b in self.biases[:-1]] + [np.pad(self.biases[-1], [(0, extra)])]
        wider.views, wider.views_below = self.views, self.views_below  # how it reads a drawing stays
        return wider

    # ------------------------------------------------------------ description and storage
    def parameter_count(self):
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases)))

    def describe(self):
        hidden = " → ".join(str(s) for s in self.sizes[1:-1])
        return (
            f"784 → {hidden} → {head(self.sizes[-1])}, fully connected, ReLU, softmax; "
            f"dropout {self.dropout:g}; numpy only (backprop and Adam by hand)"
        )

    def _save_weights(self, path: Path):
        arrays = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            arrays[f"w{i}"] = w
            arrays[f"b{i}"] = b
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    def _load_weights(self, path: Path):
        with np.load(path) as data:
            weights = [data[f"w{i}"].astype(self.dtype) for i in range(len(self.weights))]
            biases = [data[f"b{i}"].astype(self.dtype) for i in range(len(self.biases))]
        for mine, theirs in zip(self.weights + self.biases, weights + biases):
            if mine.shape != theirs.shape:
                raise ValueError(f"Weights of shape {theirs.shape} do not fit a layer of shape {mine.shape}.")
        self.weights, self.biases = weights, biases
