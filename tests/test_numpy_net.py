"""The from-scratch numpy network: backprop against finite differences, learning, and its guards."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digitrec.base import check_batch
from digitrec.numpy_net import NumpyNet, softmax

ROOT = Path(__file__).resolve().parent.parent


def random_batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)), rng.integers(0, 10, n)


def toy_set(n=200, seed=0):
    """MNIST-shaped images in which class k lights its own 7×7 block (plus noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.random((n, 28, 28)).astype(np.float32) * 0.3
    for i, label in enumerate(y):
        row, col = divmod(int(label), 4)
        x[i, 7 * row : 7 * row + 7, 7 * col : 7 * col + 7] += 0.7
    return np.clip(x, 0, 1), y


@pytest.fixture
def net():
    model = NumpyNet(sizes=(784, 7, 5, 10), dtype="float64", dropout=0, seed=1)
    rng = np.random.default_rng(2)
    model.biases = [rng.normal(0, 0.1, b.shape) for b in model.biases]  # not all zero: exercise nabla_b fully
    return model


def numerical_gradient(model, params, index, x, y, eps=1e-5):
    """Central difference of the cost with respect to ``params[index]``."""
    saved = params[index]
    params[index] = saved + eps
    plus = model.cost(x, y)
    params[index] = saved - eps
    minus = model.cost(x, y)
    params[index] = saved
    return (plus - minus) / (2 * eps)


@pytest.mark.parametrize("kind", ["weights", "biases"])
def test_backprop_matches_finite_differences(net, kind):
    x, y = random_batch()
    cost, nabla_b, nabla_w = net.backprop(x, y)
    assert cost == pytest.approx(net.cost(x, y), rel=1e-12)
    analytic_all = nabla_w if kind == "weights" else nabla_b
    parameters = net.weights if kind == "weights" else net.biases
    assert len(analytic_all) == len(parameters) == 3
    rng = np.random.default_rng(3)
    for layer, (params, analytic) in enumerate(zip(parameters, analytic_all)):
        assert analytic.shape == params.shape
        indices = [tuple(int(rng.integers(s)) for s in params.shape) for _ in range(20)]
        a = np.array([analytic[i] for i in indices])
        n = np.array([numerical_gradient(net, params, i, x, y) for i in indices])
        error = np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-12)
        assert error < 1e-6, f"{kind} of layer {layer}: relative error {error:.2e}"
        assert np.linalg.norm(a) > 0, f"{kind} of layer {layer}: all sampled gradients are zero"


def test_backprop_leaves_the_network_unchanged(net):
    x, y = random_batch()
    before = [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    first = net.backprop(x, y)
    second = net.backprop(x, y)
    for old, new in zip(before, net.weights + net.biases):
        assert np.array_equal(old, new)
    for g1, g2 in zip(first[2], second[2]):
        assert np.array_equal(g1, g2)


def test_tiny_net_learns_a_separable_toy_set():
    x, y = toy_set()
    model = NumpyNet(sizes=(784, 32, 10), seed=0)
    history = model.fit(x, y, epochs=15, batch_size=20, learning_rate=1e-2, seed=0)
    assert len(history) == 15
    assert history[-1]["loss"] < history[0]["loss"]
    accuracy = (model.predict_proba(x).argmax(axis=1) == y).mean()
    assert accuracy >= 0.95


def test_fit_reports_each_epoch():
    x, y = toy_set(50)
    seen = []
    NumpyNet(sizes=(784, 8, 10)).fit(x, y, epochs=3, batch_size=16, on_epoch=lambda e, row: seen.append(e))
    assert seen == [1, 2, 3]


def test_fit_with_dropout_and_augment_runs_and_inference_is_deterministic():
    x, y = toy_set(60)
    model = NumpyNet(sizes=(784, 16, 10), dropout=0.5)
    calls = []

    def augment(batch, rng):
        calls.append(batch.shape)
        return batch

    model.fit(x, y, epochs=2, batch_size=32, augment=augment)
    assert calls and all(shape[1:] == (28, 28) for shape in calls)
    assert np.array_equal(model.predict_proba(x), model.predict_proba(x))  # no dropout at inference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_proba_rows_are_probabilities(dtype):
    model = NumpyNet(sizes=(784, 16, 10), dtype=dtype)
    x = np.random.default_rng(0).random((7, 28, 28))
    p = model.predict_proba(x)
    assert p.shape == (7, 10)
    assert p.dtype == np.float32
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_softmax_does_not_overflow():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 0.0]]))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-12)


def test_numpy_net_imports_no_tensorflow():
    code = (
        "import sys, digitrec.numpy_net; assert 'tensorflow' not in sys.modules, 'numpy_net imported tensorflow'\n"
        "import digitrec; from digitrec.numpy_net import NumpyNet; NumpyNet(sizes=(784, 4, 10))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'digitrec imported tensorflow'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((28, 28)),
        np.zeros((2, 784)),
        np.zeros((2, 28, 27)),
        np.zeros((2, 28, 28, 1)),
        np.full((1, 28, 28), np.nan),
        np.full((1, 28, 28), np.inf),
    ],
    ids=["single image", "flat rows", "27 wide", "channel axis", "nan", "inf"],
)
def test_check_batch_rejects_wrong_shapes_and_non_finite(bad):
    with pytest.raises(ValueError):
        check_batch(bad)
    with pytest.raises(ValueError):
        NumpyNet(sizes=(784, 4, 10)).predict_proba(bad)


def test_check_batch_returns_float32_batch():
    x = check_batch(np.zeros((3, 28, 28), np.uint8))
    assert x.dtype == np.float32 and x.shape == (3, 28, 28)
    assert check_batch(np.zeros((0, 28, 28))).shape == (0, 28, 28)


@pytest.mark.parametrize("sizes", [(784,), (100, 10), (784, 16, 9), ()])
def test_bad_layer_sizes_are_refused(sizes):
    with pytest.raises(ValueError):
        NumpyNet(sizes=sizes)


def test_fit_refuses_mismatched_labels():
    x, y = toy_set(20)
    with pytest.raises(ValueError):
        NumpyNet(sizes=(784, 4, 10)).fit(x, y[:-1], epochs=1)


def test_same_seed_same_network():
    a, b = NumpyNet(sizes=(784, 8, 10), seed=5), NumpyNet(sizes=(784, 8, 10), seed=5)
    x = np.random.default_rng(0).random((3, 28, 28))
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    assert not np.array_equal(a.predict_proba(x), NumpyNet(sizes=(784, 8, 10), seed=6).predict_proba(x))


def test_input_gradient_matches_finite_differences():
    """The heat map's d log p(class) / d pixel, backpropagated by hand, against central differences."""
    net = NumpyNet(sizes=(784, 16, 12, 10), dtype="float64", seed=1)
    x = np.random.default_rng(0).random((2, 28, 28))
    classes = [3, 5]
    gradient = net.input_gradient(x, classes)

    def log_p(image, c):
        z = net.feedforward(image.reshape(1, -1))
        return float(z[0, c] - np.log(np.exp(z[0] - z[0].max()).sum()) - z[0].max())

    eps = 1e-6
    for n, (i, j) in enumerate([(10, 12), (3, 4), (20, 20), (14, 7)]):
        sample, c = n % 2, classes[n % 2]
        plus, minus = x[sample].copy(), x[sample].copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        numeric = (log_p(plus, c) - log_p(minus, c)) / (2 * eps)
        assert abs(gradient[sample, i, j] - numeric) <= 1e-5 * max(1.0, abs(numeric))
