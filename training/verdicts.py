"""Fit each model's verdicts — non-digit detector, temperature, thresholds — for the weights in weights/.

    python -m training.verdicts                 # all models: writes weights/<id>.verdict.json
    python -m training.verdicts --model numpy   # one

For every model, on its own penultimate features (``Model.features_and_proba``):

- the detector is the network's own "not a digit" output (a model trained with an 11th class,
  ``training/train.py --non-digits``) or a small network written here in numpy — one ReLU
  layer of ``HIDDEN``, a sigmoid output — trained by mini-batch Adam on the class-balanced
  cross-entropy + L2 (outlier exposure: drawn digits against letters, shapes and scribbles of
  the training split, ``training/verdict_sets.py``), whichever rejects more validation
  non-digits at ``MAX_FALSE_REJECTION``;
- the temperature minimises the negative log-likelihood of the validation digits;
- the rejection threshold lets through all but ``MAX_FALSE_REJECTION`` of the validation digits
  and all but ``MAX_LOST_RIGHT`` of those the model reads right (so accuracy hardly moves);
  a reading is "unsure" when its calibrated top probability is below ``UNSURE_BELOW``: the
  model gives its answer less than 3-to-1 odds. The validation figures for other thresholds
  are written beside it (``unsure_tradeoff``).

Three alternatives are measured on the same validation sets and printed beside it, so the choice
rests on figures: a logistic regression on the same features (the network without its hidden
layer), the maximum softmax probability, and a Mahalanobis distance on the features (shared
covariance, nearest class mean). Everything is written with the weights' SHA-256.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import time

import numpy as np

import digitrec
from digitrec.read import Verdicts, calibrate, digits_side_by_side, sigmoid, verdict_path
from digitrec.weights import bundled_dir

from .verdict_sets import digit_sets, non_digit_sets

MAX_FALSE_REJECTION = 0.005  # of validation digits answered "not a digit"
MAX_LOST_RIGHT = 0.001  # of validation digits read right, answered "not a digit"
# A "not sure" on a wrong answer helps a visitor about three times as much as one on a right answer
# costs them; with calibrated probabilities that puts the line at 3-to-1 odds. (A share of the
# validation digits, the rule before, sat wherever those writers happened to be sure: 0.96 once
# they were easy, which made 3 % of harder writers' right answers "unsure".)
UNSURE_BELOW = 0.75
UNSURE_TRADEOFF = (0.5, 0.6, 0.75, 0.9, 0.96)  # thresholds whose validation figures are written beside it
L2 = 1e-3
STEPS = 300  # full-batch steps of the logistic regression
HIDDEN, EPOCHS = 64, 10  # the detector network; 128 units for 20 epochs measured no better on validation


def features_of(model, x, batch=500):
    """Return (features, probabilities) of ``x`` read in batches."""
    parts = [model.features_and_proba(x[i: i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate([p[0] for p in parts]).astype(np.float64), np.concatenate([p[1] for p in parts]).astype(np.float64)


# ---------------------------------------------------------------- the detector: logistic regression by hand


def cost_and_gradient(w, b, inputs, targets, weights, l2=L2):
    """Return (cost, nabla_w, nabla_b) of the weighted cross-entropy of σ(inputs·w + b) against targets, plus L2.

    With a = σ(z), dC/dz = a − t for the cross-entropy, so the gradient needs no σ′.
    """
    zs = inputs @ w + b
    activations = sigmoid(zs)
    eps = 1e-12
    cost = -np.sum(weights * (targets * np.log(activations + eps) + (1 - targets) * np.log(1 - activations + eps)))
    cost = cost / weights.sum() + 0.5 * l2 * float(w @ w)
    delta = weights * (activations - targets) / weights.sum()
    return float(cost), inputs.T @ delta + l2 * w, float(delta.sum())


def fit_detector(digit_features, other_features, steps=STEPS, learning_rate=0.05):
    """Return (mean, scale, [(w, b)]): the standardisation and the logistic regression, digits 0 against others 1.

    Each class carries half the weight, so thousands of letters do not outvote the digits.
    """
    inputs = np.concatenate([digit_features, other_features])
    targets = np.concatenate([np.zeros(len(digit_features)), np.ones(len(other_features))])
    weights = np.where(targets == 1, 0.5 / len(other_features), 0.5 / len(digit_features))
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-3
    inputs = (inputs - mean) / scale
    w, b = np.zeros(inputs.shape[1]), 0.0
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):  # Adam, full batch: a convex problem, a few hundred steps
        _, nabla_w, nabla_b = cost_and_gradient(w, b, inputs, targets, weights)
        m_w = beta1 * m_w + (1 - beta1) * nabla_w
        v_w = beta2 * v_w + (1 - beta2) * nabla_w**2
        m_b = beta1 * m_b + (1 - beta1) * nabla_b
        v_b = beta2 * v_b + (1 - beta2) * nabla_b**2
        eta = learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        w -= eta * m_w / (np.sqrt(v_w) + 1e-8)
        b -= eta * m_b / (np.sqrt(v_b) + 1e-8)
    return mean, scale, [(w[None, :], np.array([b]))]


def network_cost_and_gradients(layers, inputs, targets, weights, l2=L2):
    """Return (cost, nabla_w, nabla_b) of a ReLU network with one sigmoid output, as ``cost_and_gradient`` (Nielsen's backprop).

    ``layers`` is [(w, b), …], ``w`` of shape (n_out, n_in); the last layer has one output.
    """
    activations, zs = [inputs], []
    for w, b in layers:
        zs.append(activations[-1] @ w.T + b)
        activations.append(np.maximum(zs[-1], 0) if len(zs) < len(layers) else sigmoid(zs[-1]))
    out = activations[-1][:, 0]
    eps = 1e-12
    cost = -np.sum(weights * (targets * np.log(out + eps) + (1 - targets) * np.log(1 - out + eps))) / weights.sum()
    cost += 0.5 * l2 * sum(float((w * w).sum()) for w, _ in layers)
    delta = (weights * (out - targets) / weights.sum())[:, None]
    nabla_w, nabla_b = [None] * len(layers), [None] * len(layers)
    for layer in range(len(layers) - 1, -1, -1):
        nabla_w[layer] = delta.T @ activations[layer] + l2 * layers[layer][0]
        nabla_b[layer] = delta.sum(axis=0)
        if layer:
            delta = (delta @ layers[layer][0]) * (zs[layer - 1] > 0)
    return float(cost), nabla_w, nabla_b


def fit_network(inputs, targets, weights, hidden=64, epochs=15, batch_size=256, learning_rate=1e-3, seed=0):
    """Return [(w1, b1), (w2, b2)]: a ReLU hidden layer and a sigmoid output, trained by mini-batch Adam."""
    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((hidden, inputs.shape[1])) * np.sqrt(2.0 / inputs.shape[1]), np.zeros(hidden)),
              (rng.standard_normal((1, hidden)) * np.sqrt(1.0 / hidden), np.zeros(1))]
    moments = [[np.zeros_like(w), np.zeros_like(b), np.zeros_like(w), np.zeros_like(b)] for w, b in layers]
    beta1, beta2, step = 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(inputs))
        for start in range(0, len(inputs), batch_size):
            chosen = order[start: start + batch_size]
            scaled = weights[chosen] * len(inputs) / len(chosen)  # each batch's weights sum like the whole set's share
            _, nabla_w, nabla_b = network_cost_and_gradients(layers, inputs[chosen], targets[chosen], scaled)
            step += 1
            eta = learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            for i, (w, b) in enumerate(layers):
                m_w, m_b, v_w, v_b = moments[i]
                m_w += (1 - beta1) * (nabla_w[i] - m_w)
                m_b += (1 - beta1) * (nabla_b[i] - m_b)
                v_w += (1 - beta2) * (nabla_w[i] ** 2 - v_w)
                v_b += (1 - beta2) * (nabla_b[i] ** 2 - v_b)
                w -= eta * m_w / (np.sqrt(v_w) + 1e-8)
                b -= eta * m_b / (np.sqrt(v_b) + 1e-8)
    return layers


def network_probability(layers, inputs):
    a = inputs
    for i, (w, b) in enumerate(layers):
        z = a @ w.T + b
        a = np.maximum(z, 0) if i < len(layers) - 1 else sigmoid(z)
    return a[:, 0]


# ---------------------------------------------------------------- the alternatives measured beside it


def mahalanobis_scorer(features, labels):
    """Return score(features) = distance to the nearest class mean under the shared covariance (shrunk)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(10)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(features)
    covariance += 1e-2 * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)

    def score(f):
        return np.min(np.stack([(((f - m) @ precision) * (f - m)).sum(axis=1) for m in means]), axis=0)

    return score


def rejection_at(digit_scores, other_scores, false_rejection=MAX_FALSE_REJECTION):
    """Return (threshold, share of others at or above it) when ``false_rejection`` of digits may be at or above."""
    threshold = float(np.quantile(digit_scores, 1 - false_rejection))
    return threshold, float(np.mean(other_scores > threshold))


def operating_threshold(digit_scores, right):
    """Return the verdict files' rejection threshold: "not a digit" for at most MAX_FALSE_REJECTION of the
    digits and MAX_LOST_RIGHT of those read right (``right``), whichever is stricter."""
    return max(float(np.quantile(digit_scores, 1 - MAX_FALSE_REJECTION)),
               float(np.quantile(digit_scores[right], 1 - MAX_LOST_RIGHT)))


def unsure_tradeoff(top, right, thresholds=UNSURE_TRADEOFF):
    """Return {threshold: (share of readings unsure, share of wrong ones among them, share of errors caught)}."""
    table = {}
    for threshold in thresholds:
        unsure = top < threshold
        table[threshold] = (float(unsure.mean()), float((~right[unsure]).mean()) if unsure.any() else 0.0,
                            float(unsure[~right].mean()) if (~right).any() else 0.0)
    return table


def auroc(digit_scores, other_scores):
    """Return the probability that a non-digit scores above a digit (ties count half)."""
    scores = np.concatenate([digit_scores, other_scores])
    ranks = np.argsort(np.argsort(scores)) + 1.0
    n_digits, n_others = len(digit_scores), len(other_scores)
    return float((ranks[n_digits:].sum() - n_others * (n_others + 1) / 2) / (n_digits * n_others))


# ---------------------------------------------------------------- calibration


def fit_temperature(probs, labels):
    """Return the temperature minimising the mean negative log-likelihood of ``labels`` (a fine grid in log T)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(10.0), 400))
    costs = [-np.mean(np.log(calibrate(probs, t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(costs))])


def expected_calibration_error(probs, labels, bins=15):
    """Return the ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - right[inside].mean())
    return float(total)


# ---------------------------------------------------------------- one model


def fit_model(model_id, train_digits, train_others, val_digits, val_others, log=print):
    """Fit and write ``model_id``'s verdict file; return it with the validation figures in its description."""
    model = digitrec.get_model(model_id)
    started = time.time()
    f_digits = np.concatenate([features_of(model, x)[0] for x, *_ in train_digits.values()])
    f_others = np.concatenate([features_of(model, x)[0] for x, _ in train_others.values()])
    inputs = np.concatenate([f_digits, f_others])
    targets = np.concatenate([np.zeros(len(f_digits)), np.ones(len(f_others))])
    weights = np.where(targets == 1, 0.5 / len(f_others), 0.5 / len(f_digits))  # each class half the weight
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-3
    layers = fit_network((inputs - mean) / scale, targets, weights, hidden=HIDDEN, epochs=EPOCHS)
    regression = Verdicts(model_id, "", 1.0, 1.0, 0.0, *fit_detector(f_digits, f_others))

    val = {name: features_of(model, x) + (labels, views) for name, (x, views, labels, _) in val_digits.items()}
    val_f = np.concatenate([v[0] for v in val.values()])
    val_p = np.concatenate([v[1] for v in val.values()])
    val_y = np.concatenate([v[2] for v in val.values()])
    others = {name: features_of(model, x) for name, (x, _) in val_others.items()}
    other_f = np.concatenate([o[0] for o in others.values()])
    other_p = np.concatenate([o[1] for o in others.values()])

    temperature = fit_temperature(val_p, val_y)
    detector = Verdicts(model_id, model.manifest["sha256"], temperature, 1.0, 0.0, mean, scale, layers,
                        views=model.views, views_below=model.views_below)
    candidates = {"features": (detector.non_digit_probability(val_f), detector.non_digit_probability(other_f))}
    if model.outputs > 10:  # the network's own "not a digit" output (training/train.py --non-digits)
        own = dataclasses.replace(detector, detector="output")
        candidates["output"] = (own.non_digit_probability(val_f), own.non_digit_probability(other_f))
    detector.detector = max(candidates, key=lambda kind: rejection_at(*candidates[kind])[1])  # chosen on validation
    digit_scores = candidates[detector.detector][0]
    right = val_p.argmax(axis=1) == val_y
    reject = operating_threshold(digit_scores, right)
    kept = digit_scores < reject
    calibrated = calibrate(val_p, temperature)
    unsure = UNSURE_BELOW
    tradeoff = unsure_tradeoff(calibrated[kept].max(axis=1), right[kept])
    detector.reject_threshold, detector.unsure_threshold = reject, unsure

    # the alternatives, at the same 0.5 % false rejection of validation digits
    mahalanobis = mahalanobis_scorer(f_digits, np.concatenate([y for _, _, y, _ in train_digits.values()]))
    chosen = {kind: " (chosen)" if kind == detector.detector else "" for kind in ("features", "output")}
    methods = {
        f"network on features, {HIDDEN} ReLU units{chosen['features']}": candidates["features"],
        "logistic regression on features": (regression.non_digit_probability(val_f), regression.non_digit_probability(other_f)),
        "max softmax probability": (1 - val_p.max(axis=1), 1 - other_p.max(axis=1)),
        "Mahalanobis on features": (mahalanobis(val_f), mahalanobis(other_f)),
    }
    if "output" in candidates:
        methods[f"the network's own 'not a digit' output{chosen['output']}"] = candidates["output"]
    comparison = {}
    for name, (d, o) in methods.items():
        _, caught = rejection_at(d, o)
        comparison[name] = {"auroc": round(auroc(d, o), 4), "rejected_at_0.5pct": round(caught, 4)}
        log(f"  {model_id}: {name}: AUROC {auroc(d, o):.4f}, non-digits rejected at 0.5 % false rejection {caught:.1%}")
    per_source = {name: float(np.mean(detector.non_digit_probability(f) >= reject)) for name, (f, _) in others.items()}
    unsure_mask = kept & (calibrated.max(axis=1) < unsure)
    wrong = ~right
    metrics = {
        "false_rejection": float(np.mean(~kept)),
        "right_rejected": float(np.mean(~kept[right])),
        "unsure_rate": float(np.mean(unsure_mask)),
        "errors_caught": float(np.mean((~kept | unsure_mask)[wrong])) if wrong.any() else None,
        "rejected": per_source,
        "ece_before": expected_calibration_error(val_p, val_y),
        "ece_after": expected_calibration_error(calibrated, val_y),
        "several_on_digits": float(np.mean([digits_side_by_side(v / 255.0, model_id) >= 2
                                             for *_, views in val.values() for v in views])),
    }
    detector.description = {
        "fitted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python -m training.verdicts --model {model_id}",
        "weights_file": model.manifest["weights_file"],
        "detector": "the network's own 'not a digit' output" if detector.detector == "output" else
                    f"{f_digits.shape[1]} features the output layer reads, standardised → {HIDDEN} ReLU → sigmoid; "
                    f"mini-batch Adam, {EPOCHS} epochs, L2 {L2:g}, classes weighted equally",
        "fitted_on": {"digits": {k: len(v[0]) for k, v in train_digits.items()},
                      "non_digits": {k: len(v[0]) for k, v in train_others.items()}},
        "chosen_on": {"digits": {k: len(v[0]) for k, v in val_digits.items()},
                      "non_digits": {k: len(v[0]) for k, v in val_others.items()}},
        "rules": {"max_false_rejection": MAX_FALSE_REJECTION, "max_right_rejected": MAX_LOST_RIGHT,
                  "unsure_below": UNSURE_BELOW},
        "validation": metrics,
        "unsure_tradeoff_on_validation": {f"{t:g}": {"unsure": round(u, 4), "wrong_among_unsure": round(w, 4),
                                                      "errors_caught": round(c, 4)} for t, (u, w, c) in tradeoff.items()},
        "alternatives_on_validation": comparison,
    }
    path = detector.save(verdict_path(bundled_dir(), model_id))
    log(f"  {model_id}: validation, unsure below (share unsure, wrong among them, errors caught): " + ", ".join(
        f"{t:g}: ({u:.2%}, {w:.0%}, {c:.0%})" for t, (u, w, c) in tradeoff.items()))
    log(f"  {model_id}: T={temperature:.3f}, reject ≥ {reject:.4f}, unsure < {unsure:.4f}; validation "
        f"false rejection {metrics['false_rejection']:.2%}, unsure {metrics['unsure_rate']:.2%}, errors caught "
        f"{metrics['errors_caught']}, rejected {({k: round(v, 3) for k, v in per_source.items()})}, ECE "
        f"{metrics['ece_before']:.3%} → {metrics['ece_after']:.3%} ({time.time() - started:.0f} s) → {path}")
    return detector


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=list(digitrec.MODEL_IDS),
                        help="a model id (repeatable); default all")
    args = parser.parse_args(argv)
    train_digits, train_others = digit_sets("train"), non_digit_sets("train")
    val_digits, val_others = digit_sets("validation"), non_digit_sets("validation")
    for model_id in args.model or list(digitrec.MODEL_IDS):
        fit_model(model_id, train_digits, train_others, val_digits, val_others)


if __name__ == "__main__":
    main()
