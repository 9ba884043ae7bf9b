"""The page's own events, called as the page calls them: the drawing taken at pen-up, then read on a click.

Importing ``app`` builds the page without serving it; these call its plain functions with
what the browser sends. The browser itself is driven in test_browser.py.
"""

from __future__ import annotations

import base64
import threading
import time

import gradio as gr
import pytest
from PIL import Image

from conftest import png_bytes


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Import the app with its corrections store in a temporary folder, never the working directory."""
    import importlib

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITREC_CORRECTIONS_DIR", str(tmp_path_factory.mktemp("corrections")))
        yield importlib.import_module("app")


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def page_copy(app, canvas) -> str:
    """Return what the page's script sends for a canvas: its copy at CAPTURE_SCALE, as a PNG data URL."""
    image = Image.fromarray(canvas)
    side = round(image.width * app.CAPTURE_SCALE)
    return data_url(image.resize((side, side), Image.BILINEAR))


def take_then_show(app, capture, edit, current=None, model="cnn"):
    drawing, *_ = app.take_capture(capture, model, False, False, edit, current)
    return drawing, app.show(drawing, model, show_heat=False)


@pytest.mark.parametrize("model", ["cnn", "dense", "numpy"])
def test_the_page_copy_is_read_like_the_canvas(app, one_per_label, model):
    """Each held-out digit, copied at half size as the page does, is read as the full canvas is read."""
    differ = []
    for label, canvas in one_per_label.items():
        _, panels = take_then_show(app, page_copy(app, canvas), edit=1, model=model)
        full, *_ = app.take(png_bytes(Image.fromarray(canvas)), model, False, False, 1, None)
        full_label = app.show(full, model, show_heat=False)[0]["label"]
        if panels[0]["label"] != full_label:
            differ.append(f"{label}: copy {panels[0]['label']}, canvas {full_label}")
    assert not differ, differ


def test_an_unreadable_drawing_is_said_at_the_next_click_never_the_drawing_before(app, one_per_label):
    """A drawing the server cannot read replaces the one before in the session; the next click says why."""
    drawing, panels = take_then_show(app, page_copy(app, one_per_label[3]), edit=1)
    assert panels[0]["label"] == "3"
    huge = Image.new("L", (5000, 10), 255)
    for problem in ("data:image/png;base64,!!!", data_url(huge)):
        drawing, *_ = app.take_capture(problem, "cnn", False, False, 2, drawing)
        label, processed, heat, *_ = app.show(drawing, "cnn")
        assert isinstance(label, str) and label != "3" and processed is None and heat is None, label
    drawing, *_ = app.take(png_bytes(huge), "cnn", False, False, 3, drawing)  # gradio's export, the fallback
    assert drawing["x"] is None and "too large" in app.show(drawing, "cnn")[0]


def test_a_click_with_nothing_drawn_says_so_where_the_answer_goes(app):
    for drawing in (None, {"edit": 4, "png": None, "x": None}):
        label, processed, heat, *comparisons, thanks, shown = app.show_comparison(drawing, "cnn", True)
        assert label == app.NOTHING_DRAWN
        assert processed is heat is shown is None and all(c is None for c in comparisons)


def test_a_late_take_never_replaces_a_newer_drawing(app, one_per_label):
    newer, _ = take_then_show(app, page_copy(app, one_per_label[7]), edit=5)
    late = app.take_capture(page_copy(app, one_per_label[1]), "cnn", False, False, 4, newer)
    assert all(isinstance(value, dict) and value.get("__type__") == "update" for value in late)


def test_the_page_events_compute_at_most_the_queue_limit_at_once(app):
    running, most = 0, 0
    lock = threading.Lock()

    def slow():
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    paced = app.paced(slow)
    threads = [threading.Thread(target=paced) for _ in range(4 * app.CONCURRENCY + 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most == app.CONCURRENCY


def test_the_page_copy_is_refused_without_the_queue_yet_never_raises(app):
    """The copy's event is not queued: a bad copy must come back as the drawing's problem, not a gr.Error."""
    try:
        drawing, *_ = app.take_capture(None, "cnn", False, False, 1, None)
    except gr.Error as error:  # pragma: no cover - the failure this test is for
        pytest.fail(f"take_capture raised {error}")
    assert drawing["x"] is None and drawing["problem"]
