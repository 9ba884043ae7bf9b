"""``digitrec.read``: every verdict for every model, the verdict file, the detector's maths, and the API.

Drawings are held-out pen trajectories (pendigits writers 25–30), shapes of kinds the
detectors were never fitted on, and two held-out digits side by side — rendered on the
800×800 canvas as the app receives them.
"""

from __future__ import annotations

import importlib
import logging

import dataclasses
import json
import numpy as np
import pytest
from PIL import Image

import digitrec
from digitrec.read import Verdicts, count_parts, verdict_path
from training.nondigits import TEST_SHAPES, shape
from training.strokes import HELD_OUT_WRITERS, Condition, load_pendigits, render
from training.verdict_sets import spaced_pair
read_module = importlib.import_module("digitrec.read")  # the module: ``digitrec.read`` is the function
from training.verdicts import (  # noqa: E402
    MAX_FALSE_REJECTION,
    MAX_LOST_RIGHT,
    cost_and_gradient,
    fit_detector,
    fit_network,
    network_cost_and_gradients,
    network_probability,
    operating_threshold,
    unsure_tradeoff,
)


@pytest.fixture(scope="module")
def canvases(held_out):
    """Return {"digits": [(canvas, label)], "shapes": [canvas], "pairs": [canvas], "two_strokes": [canvas]}."""
    digits, labels = held_out
    rng = np.random.default_rng(0)
    out = {"digits": [(render(d, Condition()), int(y)) for d, y in list(zip(digits, labels))[:60]]}
    out["shapes"] = [render(shape(TEST_SHAPES[i % len(TEST_SHAPES)], rng), Condition()) for i in range(12)]
    pairs = []
    for i in range(6):
        strokes, condition = spaced_pair(digits[2 * i], digits[2 * i + 1], 0.3, Condition())
        pairs.append(render(strokes, condition))
    out["pairs"] = pairs
    out["two_strokes"] = [render(d, Condition()) for d, y in zip(digits, labels) if y in (4, 5, 7) and len(d) >= 2][:10]
    tight = []
    for i in range(6):  # 0.15 × the height apart: close, as people write a number (at 0.1 the layout sees one "00")
        strokes, condition = spaced_pair(digits[2 * i + 20], digits[2 * i + 21], 0.15, Condition())
        tight.append(render(strokes, condition))
    out["tight_pairs"] = tight
    return out


def stem_apart(strokes, gap):
    """Return a 4 drawn in two strokes with its stem (the right stroke) moved ``gap`` × its height clear of the rest."""
    rest, stem = sorted(strokes, key=lambda stroke: stroke[:, 0].mean())
    height = np.ptp(np.concatenate(strokes)[:, 1])
    return [rest, stem + np.array([rest[:, 0].max() - stem[:, 0].min() + gap * height, 0.0], np.float32)]


@pytest.fixture(scope="module")
def stems_apart():
    """Return canvases of held-out writers' two-stroke 4s whose stem stands apart from the bar, as some people draw it."""
    digits, labels, writers = load_pendigits()
    fours = [d for d, y, w in zip(digits, labels, writers) if w in HELD_OUT_WRITERS and y == 4 and len(d) == 2]
    return [render(stem_apart(d, 0.2), Condition()) for d in fours[:10]]


def readings(canvas_list, model):
    return [digitrec.read(canvas, model) for canvas in canvas_list]


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_read_keeps_predicts_answer_and_image(canvases, model):
    canvas, _ = canvases["digits"][0]
    reading = digitrec.read(canvas, model)
    probs, processed = digitrec.predict(canvas, model)
    assert reading.verdict in read_module.VERDICTS
    assert np.array_equal(reading.processed, processed)
    assert reading.probs.keys() == probs.keys()
    assert max(abs(reading.probs[k] - probs[k]) for k in probs) < 1e-5
    assert reading.digit == int(max(probs, key=probs.get))


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_clear_held_out_digits_are_digits(canvases, model):
    """Most held-out drawings are answered "digit", and then with the digit the model reads, as the only candidate."""
    found = [r for r, (_, y) in zip(readings([c for c, _ in canvases["digits"]], model), canvases["digits"])
             if r.verdict == "digit" and r.digit == y]
    assert len(found) > len(canvases["digits"]) / 2
    assert all(r.candidates == [r.digit] and r.headline() == str(r.digit) for r in found)


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_unsure_names_the_digits_it_hesitates_between(canvases, model):
    """Among held-out drawings some are unsure; each names two or three candidates, the most likely first."""
    unsure = [r for r in readings([c for c, _ in canvases["digits"]], model) if r.verdict == "unsure"]
    if not unsure:  # not every 60 drawings hold a doubtful one: make the model doubt by a stricter threshold
        verdicts = read_module.verdicts_for(model)
        original = verdicts.unsure_threshold
        verdicts.unsure_threshold = 0.999999
        try:
            unsure = [r for r in readings([c for c, _ in canvases["digits"][:10]], model) if r.verdict == "unsure"]
        finally:
            verdicts.unsure_threshold = original
    assert unsure
    for reading in unsure:
        assert 2 <= len(reading.candidates) <= 3 and reading.candidates[0] == reading.digit
        assert reading.headline() == "Not sure — " + " or ".join(map(str, reading.candidates)) + "?"


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_shapes_never_trained_on_are_not_digits(canvases, model):
    """Some of a dozen shapes of kinds never fitted on are answered "not a digit" (bench.verdicts measures how many)."""
    rejected = [r for r in readings(canvases["shapes"], model) if r.verdict == "not_a_digit"]
    assert rejected
    assert all(r.headline() == "That doesn't look like a digit" and r.candidates == [r.digit] for r in rejected)


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_two_digits_side_by_side_are_several(canvases, model):
    said = [r.verdict for r in readings(canvases["pairs"], model)]
    assert said == ["several"] * len(said)
    assert digitrec.read(canvases["pairs"][0], model).headline() == "Looks like several digits"


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_two_digits_close_together_are_several(canvases, model):
    assert [r.verdict for r in readings(canvases["tight_pairs"], model)] == ["several"] * len(canvases["tight_pairs"])


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_a_four_whose_stem_stands_apart_from_its_bar_is_one_digit(stems_apart, model):
    """Its layout has two parts, as "12" has; read with the model, the two read better as one 4 than apart."""
    for canvas in stems_apart:
        _, view = read_module.preprocess_with_view(canvas)
        assert count_parts(view) == 2
        reading = digitrec.read(canvas, model)
        assert reading.verdict != "several" and reading.digit == 4


def test_a_digit_drawn_in_two_strokes_is_one_part(canvases):
    """A 4, 5 or 7 whose bar is a second stroke stays one digit: its strokes overlap horizontally."""
    assert canvases["two_strokes"]
    for canvas in canvases["two_strokes"]:
        _, view = read_module.preprocess_with_view(canvas)
        assert count_parts(view) == 1


def test_count_parts_reads_a_padded_view_as_the_view():
    view = np.zeros((30, 80), np.float32)
    view[2:28, 5:15] = 1.0  # a digit-sized bar
    view[2:28, 40:60] = 1.0  # another, well apart
    view[26:28, 70:72] = 1.0  # a dot: not a digit
    padded = np.zeros((80, 80), np.float32)
    padded[:30] = view
    assert count_parts(view) == count_parts(padded) == 2


# ---------------------------------------------------------------- the verdict file


def small_verdicts(sha="abc"):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(3, 4)), rng.normal(size=3)), (rng.normal(size=(1, 3)), np.array([0.25]))]
    return Verdicts("numpy", sha, 1.5, 0.7, 0.6, rng.normal(size=4), rng.uniform(1, 2, 4), layers, {"fitted_on": "test"})


def test_verdict_file_round_trip(tmp_path):
    verdicts = small_verdicts()
    path = verdicts.save(verdict_path(tmp_path, "numpy"))
    loaded = Verdicts.load(path)
    features = np.random.default_rng(1).normal(size=(5, 4))
    assert np.allclose(loaded.non_digit_probability(features), verdicts.non_digit_probability(features), atol=1e-5)
    assert (loaded.temperature, loaded.reject_threshold, loaded.unsure_threshold) == (1.5, 0.7, 0.6)
    assert loaded.description == {"fitted_on": "test"}


def test_own_output_detector_reads_the_networks_not_a_digit_output_and_round_trips(tmp_path):
    """detector "output": p(not a digit) is the 11th output, which features_and_proba puts last in the features."""
    from digitrec.numpy_net import NumpyNet

    model = NumpyNet(sizes=(784, 16, 11), seed=0)
    x = np.random.default_rng(2).random((6, 28, 28)).astype(np.float32)
    features, probs = model.features_and_proba(x)
    assert features.shape == (6, 17) and probs.shape == (6, 10)
    verdicts = dataclasses.replace(small_verdicts(), detector="output", layers=[])
    loaded = Verdicts.load(verdicts.save(verdict_path(tmp_path, "numpy")))
    assert loaded.detector == "output"
    np.testing.assert_allclose(loaded.non_digit_probability(features), model.predict_outputs(x)[:, 10], atol=1e-6)
    document = json.loads(verdict_path(tmp_path, "numpy").read_text())
    document["detector"] = "oracle"
    verdict_path(tmp_path, "numpy").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="unknown detector"):
        Verdicts.load(verdict_path(tmp_path, "numpy"))


def test_verdict_file_with_changed_params_is_refused(tmp_path):
    path = small_verdicts().save(tmp_path / "numpy.verdict.json")
    verdicts = small_verdicts()
    verdicts.layers[-1] = (verdicts.layers[-1][0], np.array([9.25]))
    verdicts.save(tmp_path / "other.verdict.json")
    (tmp_path / "other.verdict.npz").replace(tmp_path / "numpy.verdict.npz")  # the arrays swapped under the file
    with pytest.raises(ValueError, match="checksum"):
        Verdicts.load(path)


def test_verdict_file_for_other_weights_is_not_used(tmp_path, monkeypatch, caplog):
    small_verdicts(sha="0" * 64).save(verdict_path(tmp_path, "numpy"))
    monkeypatch.setattr(read_module, "bundled_dir", lambda: tmp_path)
    monkeypatch.setattr(read_module, "_verdicts", {})
    model = digitrec.get_model("numpy")
    monkeypatch.setattr(model, "verdict_file", verdict_path(tmp_path, "numpy"))  # as if it came with the weights
    with caplog.at_level(logging.WARNING, logger="digitrec"):
        assert read_module.verdicts_for("numpy", model) is None
    assert "fitted on weights 000000000000" in caplog.text
    canvas = np.full((100, 100), 255, np.uint8)
    canvas[20:80, 45:55] = 0
    assert digitrec.read(canvas, "numpy").verdict in ("digit", "several")  # no detector: never a guess at the rest


def test_verdict_file_read_at_other_test_time_views_is_not_used(tmp_path, monkeypatch, caplog):
    """Features read at other views, or at another gate, are not what the detector was fitted on: refused, else kept."""
    from digitrec.views import check_views

    model = digitrec.get_model("numpy")
    views = check_views([[0, 1], [30, 1]])
    fitted = dataclasses.replace(small_verdicts(sha=model.manifest["sha256"]), views=views, views_below=0.9)
    fitted.save(verdict_path(tmp_path, "numpy"))
    assert (Verdicts.load(verdict_path(tmp_path, "numpy")).views, fitted.views_below) == (views, 0.9)
    monkeypatch.setattr(read_module, "bundled_dir", lambda: tmp_path)
    monkeypatch.setattr(read_module, "_verdicts", {})
    monkeypatch.setattr(model, "verdict_file", None)
    with caplog.at_level(logging.WARNING, logger="digitrec"):
        assert read_module.verdicts_for("numpy", model) is None
    assert "test-time views" in caplog.text
    monkeypatch.setattr(read_module, "_verdicts", {})
    monkeypatch.setattr(model, "views", views)
    monkeypatch.setattr(model, "views_below", None)  # the same views, read always: not what it was fitted on
    with caplog.at_level(logging.WARNING, logger="digitrec"):
        assert read_module.verdicts_for("numpy", model) is None
    assert "read below 0.9" in caplog.text
    monkeypatch.setattr(read_module, "_verdicts", {})
    monkeypatch.setattr(model, "views_below", 0.9)
    assert read_module.verdicts_for("numpy", model).views_below == 0.9


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_shipped_verdict_files_fit_the_shipped_weights(model):
    verdicts = read_module.verdicts_for(model)
    assert verdicts is not None
    assert verdicts.weights_sha256 == digitrec.get_model(model).manifest["sha256"]
    assert verdicts.temperature > 0 and 0 < verdicts.reject_threshold < 1 and 0 < verdicts.unsure_threshold < 1


# ---------------------------------------------------------------- the detector's maths


def test_detector_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(20, 5)), (rng.random(20) < 0.4).astype(float)
    weights = rng.uniform(0.5, 1.5, 20)
    w, b = rng.normal(size=5), 0.3
    _, nabla_w, nabla_b = cost_and_gradient(w, b, inputs, targets, weights)
    eps = 1e-6
    for i in range(5):
        step = np.zeros(5)
        step[i] = eps
        numeric = (cost_and_gradient(w + step, b, inputs, targets, weights)[0]
                   - cost_and_gradient(w - step, b, inputs, targets, weights)[0]) / (2 * eps)
        assert abs(numeric - nabla_w[i]) < 1e-6
    numeric = (cost_and_gradient(w, b + eps, inputs, targets, weights)[0]
               - cost_and_gradient(w, b - eps, inputs, targets, weights)[0]) / (2 * eps)
    assert abs(numeric - nabla_b) < 1e-6


def test_network_gradient_matches_finite_differences():
    """The detector network's backprop, weight by weight against central differences of its cost."""
    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(15, 4)), (rng.random(15) < 0.5).astype(float)
    weights = rng.uniform(0.5, 1.5, 15)
    layers = [(rng.normal(size=(3, 4)), rng.normal(size=3)), (rng.normal(size=(1, 3)), rng.normal(size=1))]
    _, nabla_w, nabla_b = network_cost_and_gradients(layers, inputs, targets, weights)
    eps = 1e-6
    for layer, (w, b) in enumerate(layers):
        for array, nabla in ((w, nabla_w[layer]), (b, nabla_b[layer])):
            for index in np.ndindex(array.shape):
                kept = array[index]
                array[index] = kept + eps
                up = network_cost_and_gradients(layers, inputs, targets, weights)[0]
                array[index] = kept - eps
                down = network_cost_and_gradients(layers, inputs, targets, weights)[0]
                array[index] = kept
                assert abs((up - down) / (2 * eps) - nabla[index]) < 1e-6


def test_detectors_separate_two_clouds():
    rng = np.random.default_rng(0)
    digits, others = rng.normal(0, 1, (200, 3)), rng.normal(3, 1, (100, 3))
    mean, scale, layers = fit_detector(digits, others, steps=200)
    verdicts = Verdicts("numpy", "", 1.0, 0.5, 0.0, mean, scale, layers)
    assert verdicts.non_digit_probability(digits).mean() < verdicts.non_digit_probability(others).mean()
    inputs = (np.concatenate([digits, others]) - mean) / scale
    targets = np.r_[np.zeros(200), np.ones(100)]
    layers = fit_network(inputs, targets, np.where(targets == 1, 0.005, 0.0025), hidden=8, epochs=20, batch_size=32)
    scores = network_probability(layers, inputs)
    assert scores[:200].mean() < scores[200:].mean()
    network = Verdicts("numpy", "", 1.0, 0.5, 0.0, mean, scale, layers)
    assert np.allclose(network.non_digit_probability(np.concatenate([digits, others])), scores)


@pytest.mark.parametrize("share_right", [0.9, 1.0])
def test_operating_threshold_keeps_both_rules(share_right):
    """At most 0.5 % of digits and 0.1 % of right-read ones are rejected (to a drawing: quantiles interpolate)."""
    rng = np.random.default_rng(0)
    scores = rng.random(20_000)
    right = rng.random(20_000) < share_right
    threshold = operating_threshold(scores, right)
    one = 1 / right.sum()
    assert np.mean(scores > threshold) <= MAX_FALSE_REJECTION + one
    assert np.mean(scores[right] > threshold) <= MAX_LOST_RIGHT + one
    # the right-read rule is the stricter here, and the threshold is no stricter than it
    assert np.mean(scores[right] > threshold) >= MAX_LOST_RIGHT - one


def test_unsure_tradeoff_counts_unsure_readings_and_the_errors_among_them():
    top = np.array([0.4, 0.6, 0.7, 0.8, 0.99, 0.999])
    right = np.array([False, True, False, True, True, False])
    table = unsure_tradeoff(top, right, thresholds=(0.5, 0.75))
    assert table[0.5] == (1 / 6, 1.0, 1 / 3)  # one unsure, wrong; one of three errors caught
    assert table[0.75] == (0.5, 2 / 3, 2 / 3)


# ---------------------------------------------------------------- through the API


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.mark.slow
@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_predict_endpoint_heads_the_label_with_the_verdict(client, canvases, tmp_path, model):
    """/predict's label is the reading's headline; its confidences stay the ten digits."""
    from gradio_client import handle_file

    cases = {"digit": canvases["digits"][0][0], "shape": canvases["shapes"][0], "pair": canvases["pairs"][0]}
    for name, canvas in cases.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(canvas).save(path)
        expected = digitrec.read(canvas, model)
        sketch = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
        result, _ = client.predict(sketch, model, api_name="/predict")
        assert result["label"] == expected.headline()
        confidences = {c["label"]: c["confidence"] for c in result["confidences"]}
        assert sorted(confidences) == [str(d) for d in range(10)]
        assert abs(sum(confidences.values()) - 1) < 1e-4
