"""The real app on 127.0.0.1, called through gradio_client as scripts and other Spaces call it."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import digitrec


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def sketch_of(path):
    """Return the sketchpad payload an API client sends for one PNG."""
    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_predict_reads_drawn_digits(client, one_per_label, tmp_path, model):
    correct = 0
    for label, canvas in one_per_label.items():
        path = tmp_path / f"{label}.png"
        Image.fromarray(canvas).save(path)
        result, processed = client.predict(sketch_of(path), model, api_name="/predict")
        confidences = {c["label"]: c["confidence"] for c in result["confidences"]}
        assert sorted(confidences) == [str(d) for d in range(10)]
        assert abs(sum(confidences.values()) - 1) < 1e-4
        shown = np.asarray(Image.open(processed))
        assert shown.shape[:2] == (280, 280)
        correct += result["label"] == str(label)
    assert correct >= 9, f"{model} read only {correct}/10 held-out drawings"


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_transparent_png_from_a_script(client, one_per_label, tmp_path, model):
    canvas = one_per_label[7]
    ink = canvas[:, :, 0] < 128
    rgba = np.zeros(canvas.shape[:2] + (4,), np.uint8)
    rgba[ink] = (0, 0, 0, 255)
    path = tmp_path / "seven.png"
    Image.fromarray(rgba, "RGBA").save(path)
    result, _ = client.predict(sketch_of(path), model, api_name="/predict")
    assert result["label"] == "7"


def test_empty_canvas_says_draw_first(client, tmp_path):
    path = tmp_path / "white.png"
    Image.new("RGB", (800, 800), "white").save(path)
    for payload in ({"background": None, "layers": [], "composite": None}, sketch_of(path)):
        with pytest.raises(AppError, match="Draw a digit first"):
            client.predict(payload, "cnn", api_name="/predict")


def test_unknown_model_is_refused_then_server_still_serves(client, one_per_label, tmp_path):
    path = tmp_path / "three.png"
    Image.fromarray(one_per_label[3]).save(path)
    with pytest.raises(AppError, match="cnn"):
        client.predict(sketch_of(path), "bogus", api_name="/predict")
    result, _ = client.predict(sketch_of(path), "cnn", api_name="/predict")
    assert result["label"] == "3"


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_model_details_show_both_accuracies_and_figures(client, model):
    text, curves, confusion = client.predict(model, api_name="/model_details")
    assert digitrec.MODELS[model]["name"] in text
    for figure in (curves, confusion):
        assert figure is not None, "training figures missing: run python -m training.figures"
        assert Image.open(figure).size[0] > 100
    metrics = digitrec.MODELS[model]["metrics"]
    assert f"{metrics['mnist_test_accuracy']:.2%}" in text
    assert f"{metrics['drawn_heldout_mean']:.2%}" in text
    distorted = bool(digitrec.MODELS[model]["training"].get("stroke_distortion"))
    assert ("pen strokes distorted" in text) == distorted


def test_feedback_is_stored_validated_and_never_served(client, app_url, app_data_dir, one_per_label, tmp_path):
    import sqlite3
    import urllib.error
    import urllib.request

    path = tmp_path / "five.png"
    Image.fromarray(one_per_label[5]).save(path)
    message = client.predict(sketch_of(path), "dense", 5, api_name="/feedback")
    assert "stored as a 5" in message
    for bad in (11, -1, "seven", None, 2.5):
        with pytest.raises(AppError, match="0 to 9"):
            client.predict(sketch_of(path), "dense", bad, api_name="/feedback")
    with sqlite3.connect(next(app_data_dir.rglob("*.sqlite*"))) as db:
        rows = db.execute("SELECT label, model, drawing FROM corrections").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(5, "dense")]
    stored = next(p for p in app_data_dir.rglob("*.png"))
    for url in (f"{app_url}gradio_api/file={stored}", f"{app_url}file={stored}"):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status >= 400, f"{url} served a stored drawing"
        except urllib.error.HTTPError as error:
            assert error.code in (403, 404)


def test_compare_reads_with_all_three_models(client, one_per_label, tmp_path):
    path = tmp_path / "six.png"
    Image.fromarray(one_per_label[6]).save(path)
    *labels, processed = client.predict(sketch_of(path), api_name="/compare")
    assert len(labels) == len(digitrec.MODEL_IDS)
    for model, label in zip(digitrec.MODEL_IDS, labels):
        expected, _ = digitrec.predict(one_per_label[6], model)
        assert label["label"] == max(expected, key=expected.get)
    assert Image.open(processed).size == (280, 280)


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_explain_returns_a_heat_map_over_the_ink(client, one_per_label, tmp_path, model):
    path = tmp_path / "eight.png"
    Image.fromarray(one_per_label[8]).save(path)
    heat = np.asarray(Image.open(client.predict(sketch_of(path), model, True, api_name="/explain")).convert("RGB"))
    _, processed = digitrec.predict(one_per_label[8], model)
    red = heat[5::10, 5::10, 0].astype(int) - heat[5::10, 5::10, 2].astype(int)  # warm where the answer came from
    assert red[processed > 0].mean() > red[processed == 0].mean()
    assert client.predict(sketch_of(path), model, False, api_name="/explain") is None
