"""``digitrec.predict`` with the shipped weights, on held-out writers' digits rendered like canvas input.

Needs ``weights/<id>.json`` (written by ``python -m training.train``); a model whose
weights are missing is skipped. In CI the weights are always present: there, a skip here
is a failure of the build, never expected.
"""

import numpy as np
import pytest
from PIL import Image

import digitrec
from conftest import png_bytes
from digitrec.preprocess import preprocess, to_uint8
from digitrec.weights import bundled_dir

MODEL_IDS = ("cnn", "dense", "numpy")


@pytest.fixture(params=MODEL_IDS)
def model_id(request):
    if not (bundled_dir() / f"{request.param}.json").exists():
        pytest.skip(f"{bundled_dir() / request.param}.json not trained yet (never skipped in CI)")
    return request.param


def as_rgba(canvas):
    """The RGB canvas as black ink on a transparent layer (the render has no anti-aliasing)."""
    rgba = np.zeros(canvas.shape[:2] + (4,), np.uint8)
    rgba[:, :, 3] = 255 - canvas.min(axis=2)
    return rgba


def on_canvas(canvas, size, box):
    """The drawing scaled (aspect kept) to ``box`` px and pasted on a white canvas of ``size``."""
    image = Image.new("RGB", size, "white")
    image.paste(Image.fromarray(canvas).resize((box, box), Image.Resampling.LANCZOS), ((size[0] - box) // 2, 0))
    return image


FORMS = {  # name → function of the 800×800 RGB canvas giving one way a client sends it
    "sketch with composite": lambda c: {
        "background": np.full(c.shape[:2] + (4,), 255, np.uint8),
        "layers": [as_rgba(c)],
        "composite": np.dstack([c, np.full(c.shape[:2], 255, np.uint8)]),
    },
    "sketch, composite None, transparent layer": lambda c: {
        "background": np.full(c.shape[:2] + (4,), 255, np.uint8),
        "layers": [as_rgba(c)],
        "composite": None,
    },
    "PIL RGB": lambda c: Image.fromarray(c),
    "PIL RGBA transparent": lambda c: Image.fromarray(as_rgba(c)),
    "array (H,W)": lambda c: c[:, :, 0].copy(),
    "array (H,W,3)": lambda c: c,
    "array (H,W,4) transparent": as_rgba,
    "PNG bytes": lambda canvas: png_bytes(Image.fromarray(canvas)),
    "300×200 canvas": lambda c: on_canvas(c, (300, 200), 200),
    "resized to 200×200": lambda c: Image.fromarray(c).resize((200, 200), Image.Resampling.LANCZOS),
    "resized to 300×200 (stretched)": lambda c: Image.fromarray(c).resize((300, 200), Image.Resampling.BILINEAR),
}


def check_result(probs, processed):
    assert list(probs) == [str(d) for d in range(10)]
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probs.values())
    assert abs(sum(probs.values()) - 1.0) < 1e-6
    assert isinstance(processed, np.ndarray)
    assert processed.dtype == np.uint8 and processed.shape == (28, 28)
    assert processed.max() > 0


def argmax(probs):
    return max(probs, key=probs.get)


@pytest.mark.parametrize("label", [3, 7])
def test_every_input_form_gives_the_same_answer(model_id, one_per_label, label):
    canvas = one_per_label[label]
    answers = {}
    for name, form in FORMS.items():
        probs, processed = digitrec.predict(form(canvas), model_id)
        check_result(probs, processed)
        answers[name] = argmax(probs)
    assert len(set(answers.values())) == 1, answers


def test_reads_held_out_digits(model_id, one_per_label):
    wrong = {}
    for label, canvas in one_per_label.items():
        probs, _ = digitrec.predict(canvas, model_id)
        if argmax(probs) != str(label):
            wrong[label] = argmax(probs)
    assert len(one_per_label) == 10
    assert len(wrong) <= 1, f"{model_id} misread (true: read) {wrong}"


def test_processed_image_is_what_the_model_read(model_id, one_per_label):
    canvas = one_per_label[5]
    probs, processed = digitrec.predict(canvas, model_id)
    x = preprocess(canvas)
    assert np.array_equal(processed, to_uint8(x))
    expected = digitrec.get_model(model_id).predict_proba(x[None])[0]
    np.testing.assert_allclose([probs[str(d)] for d in range(10)], expected / expected.sum(), atol=1e-6)


def test_legacy_method_also_predicts(model_id, one_per_label):
    check_result(*digitrec.predict(one_per_label[0], model_id, method="legacy"))


def test_get_model_is_cached(model_id):
    model = digitrec.get_model(model_id)
    assert digitrec.get_model(model_id) is model
    assert model.model_id == model_id
    assert model.source


def test_models_table_matches_the_loaded_weights(model_id):
    model = digitrec.get_model(model_id)
    entry = digitrec.MODELS[model_id]
    if model.source.startswith("bundled"):
        assert entry["params"] == model.parameter_count()
        assert entry["architecture"] == model.describe()


def test_empty_and_bad_drawings_raise_with_a_model(model_id):
    with pytest.raises(digitrec.EmptyDrawingError, match="Draw a digit first."):
        digitrec.predict(None, model_id)
    with pytest.raises(digitrec.EmptyDrawingError):
        digitrec.predict({"background": None, "layers": [], "composite": None}, model_id)
    with pytest.raises(digitrec.InvalidImageError):
        digitrec.predict(b"not an image", model_id)
