"""The real app on 127.0.0.1, called through gradio_client as scripts and other Spaces call it."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import digitrec
from conftest import png_bytes

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not


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
    assert f"{metrics['unipen_heldout_mean']:.2%}" in text and "other institutions" in text
    distorted = bool(digitrec.MODELS[model]["training"].get("stroke_distortion"))
    assert ("pen strokes distorted" in text) == distorted
    views, below = digitrec.MODELS[model]["views"], digitrec.MODELS[model]["views_below"]
    assert (f"Reads each drawing {len(views)} ways" in text) == (len(views) > 1)
    assert (below is not None and f"when its first reading is below {below:.0%} sure" in text) == (
        len(views) > 1 and below is not None)


def test_feedback_is_stored_validated_and_never_served(client, app_url, app_data_dir, one_per_label, tmp_path):
    import sqlite3
    import urllib.error
    import urllib.request

    def stored_rows():  # the app is shared by the session: other tests (the browser's ✓ Yes) store too
        databases = list(app_data_dir.rglob("*.sqlite3"))
        if not databases:
            return []
        with sqlite3.connect(databases[0]) as db:
            return db.execute("SELECT label, model, drawing FROM corrections ORDER BY rowid").fetchall()

    before = stored_rows()
    path = tmp_path / "five.png"
    Image.fromarray(one_per_label[5]).save(path)
    message = client.predict(sketch_of(path), "dense", 5, api_name="/feedback")
    assert "stored as a 5" in message
    for bad in (11, -1, "seven", None, 2.5):
        with pytest.raises(AppError, match="0 to 9"):
            client.predict(sketch_of(path), "dense", bad, api_name="/feedback")
    rows = stored_rows()[len(before):]
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


def upload_drawing(app_url, png_bytes, part="composite", drawing_id=None):
    """Upload a drawing the way the browser's sketchpad does (by id, to component_server); return the id."""
    import json
    import urllib.request
    import uuid

    with urllib.request.urlopen(f"{app_url}config", timeout=10) as response:
        config = json.load(response)
    sketch_id = next(c["id"] for c in config["components"] if c["type"] == "imageeditor")
    drawing_id = drawing_id or uuid.uuid4().hex[:11]
    fields = {"component_id": str(sketch_id), "session_hash": uuid.uuid4().hex, "fn_name": "accept_blobs",
              "id": drawing_id, "type": part, "index": "null"}
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{part}.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + png_bytes + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{app_url}gradio_api/component_server", data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return drawing_id


def test_every_event_reads_a_drawing_sent_by_id(client, app_url, one_per_label):
    """A drawing uploaded once, as the sketchpad's realtime mode does, can be named by id by several calls."""
    drawing = {"background": None, "layers": [], "composite": None,
               "id": upload_drawing(app_url, png_bytes(Image.fromarray(one_per_label[4])))}
    shown, _ = client.predict(drawing, "cnn", api_name="/predict")
    heat = client.predict(drawing, "cnn", True, api_name="/explain")
    again, _ = client.predict(drawing, "dense", api_name="/predict")
    assert shown["label"] == again["label"] == "4"
    assert Image.open(heat).size == (280, 280)


def test_oversized_drawing_sent_by_id_is_refused_and_the_server_keeps_serving(client, app_url, one_per_label, tmp_path):
    """Refused when uploaded (413, before it is kept), and the event naming it gets the same message."""
    import urllib.error

    from digitrec.preprocess import MAX_SIDE

    with pytest.raises(urllib.error.HTTPError) as refused:
        upload_drawing(app_url, png_bytes(Image.new("1", (MAX_SIDE + 1, 8), 1)), drawing_id="huge-drawing")
    assert refused.value.code == 413 and "too large" in refused.value.read().decode()
    huge = {"background": None, "layers": [], "composite": None, "id": "huge-drawing"}
    with pytest.raises(AppError, match="too large.*largest accepted"):
        client.predict(huge, "cnn", api_name="/predict")
    path = tmp_path / "two.png"
    Image.fromarray(one_per_label[2]).save(path)
    result, _ = client.predict(sketch_of(path), "cnn", api_name="/predict")
    assert result["label"] == "2"


def test_api_lists_exactly_the_app_endpoints(client):
    """Scripts see the stateless endpoints only; the page's own events (which read its session) are private."""
    info = client.view_api(return_format="dict", print_info=False)
    assert sorted(info["named_endpoints"]) == [
        "/compare", "/confirm", "/explain", "/feedback", "/feedback_digit", "/model_details", "/predict",
        "/read_digit", "/read_number",
    ]
    assert not info["unnamed_endpoints"]


def test_confirm_stores_the_models_answer_as_right(client, app_data_dir, one_per_label, tmp_path):
    import sqlite3

    path = tmp_path / "nine.png"
    Image.fromarray(one_per_label[9]).save(path)
    shown, _ = client.predict(sketch_of(path), "numpy", api_name="/predict")
    message = client.predict(sketch_of(path), "numpy", api_name="/confirm")
    assert f"stored as a {shown['label']} (confirmed)" in message
    with sqlite3.connect(next(app_data_dir.rglob("*.sqlite3"))) as db:
        row = db.execute("SELECT label, predicted, model FROM corrections ORDER BY id DESC LIMIT 1").fetchone()
    assert row == (int(shown["label"]), int(shown["label"]), "numpy")
