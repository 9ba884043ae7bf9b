"""The JSON endpoint ``/read_digit``: a base64 drawing in, plain JSON out, through gradio_client on the real app."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

import digitrec
from conftest import png_bytes

GENERIC = "has not enabled verbose error reporting"

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + b64(data)


def test_endpoint_is_typed_json(client):
    """The API page lists /read_digit with a string image and the three model ids, and no files."""
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/read_digit"]
    image, model = endpoint["parameters"]
    assert (image["parameter_name"], image["type"]) == ("image", {"type": "string"})
    assert model["parameter_name"] == "model" and model["parameter_default"] == "cnn"
    assert set(model["type"]["enum"]) == set(digitrec.MODEL_IDS)
    assert "handwritten digit" in endpoint["description"]


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_held_out_drawings_read_as_the_pipeline_reads_them(client, one_per_label, model):
    """Each held-out digit, as a data URL: the same distribution and 28×28 image as digitrec.predict."""
    for digit, canvas in one_per_label.items():
        expected, processed = digitrec.predict(canvas, model)
        answer = client.predict(data_url(png_bytes(Image.fromarray(canvas))), model, api_name="/read_digit")
        assert set(answer) == {"digit", "confidence", "probabilities", "model", "image", "verdict", "headline", "candidates"}
        assert answer["verdict"] in ("digit", "unsure", "not_a_digit", "several") and answer["digit"] in answer["candidates"]
        assert answer["model"] == model
        assert len(answer["probabilities"]) == 10
        assert max(abs(answer["probabilities"][d] - expected[str(d)]) for d in range(10)) < 1e-6
        assert answer["digit"] == int(max(expected, key=expected.get))
        assert answer["confidence"] == answer["probabilities"][answer["digit"]]
        assert answer["image"].startswith("data:image/png;base64,")
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["image"].split(",", 1)[1]))))
        assert seen.shape == (28, 28) and np.array_equal(seen, processed)


def test_plain_base64_and_the_default_model(client, one_per_label):
    """Raw base64 (no data URL), with line breaks as `base64` prints it, and no model: the CNN reads a 3."""
    text = base64.encodebytes(png_bytes(Image.fromarray(one_per_label[3]))).decode("ascii")
    answer = client.predict(text, api_name="/read_digit")
    assert answer["model"] == "cnn" and answer["digit"] == 3


@pytest.fixture(scope="module")
def bad_inputs(one_per_label):
    """Return (image, model, words the message must contain) for each kind of bad request."""
    good = data_url(png_bytes(Image.fromarray(one_per_label[5])))
    huge_pixels = png_bytes(Image.new("L", (3000, 3000), 255))  # small file, too many pixels
    too_long = "A" * (3 * 10**6)  # more base64 than the largest accepted file, under the request limit
    return [
        ("hello, world", "cnn", "not valid base64"),
        ("", "cnn", "empty"),
        (12345, "cnn", "must be a string"),
        (None, "cnn", "must be a string"),
        ({"composite": good}, "cnn", "must be a string"),
        ("data:text/plain;base64,aGVsbG8=", "cnn", "Unsupported data URL"),
        (b64(b"not an image at all" * 10), "cnn", "not a PNG"),
        (b64(png_bytes(Image.new("RGB", (64, 64), "white"))), "cnn", "Draw a digit first"),
        (b64(huge_pixels), "cnn", "too large"),
        (b64(png_bytes(Image.new("L", (5000, 10), 255))), "cnn", "too large"),
        (too_long, "cnn", "too large"),
        (good, "bogus", "Unknown model"),
        (good, 7, "Unknown model"),
    ]


def test_bad_inputs_get_short_clear_errors_and_the_server_keeps_serving(client, bad_inputs, one_per_label):
    for image, model, words in bad_inputs:
        with pytest.raises(AppError) as raised:
            client.predict(image, model, api_name="/read_digit")
        message = str(raised.value)
        assert words in message, (repr(image)[:60], message)
        assert GENERIC not in message and "Traceback" not in message and len(message) < 200
    answer = client.predict(data_url(png_bytes(Image.fromarray(one_per_label[8]))), "cnn", api_name="/read_digit")
    assert answer["digit"] == 8
