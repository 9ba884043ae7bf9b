"""digitrec's Gradio app: draw a digit, pick a model, see what it reads and what it saw.

Plain functions first, the ``gr.Blocks`` wiring last. Every event has an ``api_name``:
``/predict`` (sketch, model) → (label, processed image), ``/compare`` (sketch) → the three
models' labels, ``/explain`` (sketch, model) → heat map, ``/feedback`` (sketch, model,
label) → confirmation. There is no per-server "current model": the model id travels with
every request, so visitors never affect each other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

import digitrec
from digitrec import feedback, guard
from digitrec.canvas import CheckedSketchpad
from digitrec.explain import heatmap_image, saliency
from digitrec.preprocess import preprocess
from digitrec.weights import bundled_dir

guard.configure_logging()  # one line per record: client strings in messages are escaped
log = logging.getLogger("digitrec.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
SCALE = 10  # the 28×28 image is shown 280×280, each pixel a crisp block
# Limits for a Space open to scripts (README, "Limits"). The processed images live in one
# folder under gradio's cache; it and gradio's cache lose files older than CACHE_SECONDS
# (gradio's delete_cache, plus empty folders and processed images here), also at start.
GRADIO_TEMP = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
CACHE_SECONDS = int(os.environ.get("DIGITREC_CACHE_SECONDS", "3600"))
PROCESSED_DIR = guard.kept_folder(GRADIO_TEMP / "digitrec-processed", CACHE_SECONDS)
MAX_UPLOAD_BYTES = int(float(os.environ.get("DIGITREC_MAX_UPLOAD_MB", "2")) * 1e6)
MAX_REQUEST_BYTES = int(float(os.environ.get("DIGITREC_MAX_REQUEST_MB", "5")) * 1e6)
# Two predictions at a time, one per core (TensorFlow and numpy release the GIL while they
# compute). bench/serve.py measured the HTTP floor itself (a no-op endpoint) at ~13 requests/s
# with 8 clients on 2 cores, so more workers would only queue inside the process.
# DIGITREC_CONCURRENCY=N python -m bench.serve measures another setting.
CONCURRENCY = int(os.environ.get("DIGITREC_CONCURRENCY", "2"))


def model_choices():
    return [(description["name"], model_id) for model_id, description in digitrec.MODELS.items()]


def _refuse(error: Exception, title: str = "Cannot read this") -> gr.Error:
    return guard.refuse(str(error), title)


def model_details(model: str):
    """Return a model's description (Markdown) and its training-curve and confusion-matrix images."""
    try:
        digitrec.registry.check_model_id(model)
    except ValueError as error:
        raise _refuse(error) from None
    description = digitrec.MODELS[model]
    metrics, training = description["metrics"], description["training"]
    lines = [f"### {description['name']}", f"**Architecture:** {description['architecture']}"]
    if description["params"]:
        lines.append(f"**Parameters:** {description['params']:,}")
    if metrics.get("mnist_test_accuracy") is not None:
        lines.append(f"**MNIST test accuracy (10,000 digits):** {metrics['mnist_test_accuracy']:.2%}")
    if metrics.get("drawn_heldout_mean") is not None:
        writers = len(metrics.get("drawn_heldout_writers", []))
        lines.append(
            f"**Digits drawn by {writers} people it never saw:** {metrics['drawn_heldout_mean']:.2%} "
            f"on average over canvas conditions, {metrics['drawn_heldout_worst']:.2%} in the hardest"
        )
    if training:
        lines.append(
            f"**Training:** {training.get('epochs')} epochs, batch {training.get('batch_size')}, "
            f"{training.get('optimizer')}, peak learning rate {training.get('learning_rate')}; "
            f"{training.get('training_images', 0):,} images (MNIST + rendered pen drawings), "
            f"augmentation: {training.get('augmentation')}"
            + ("; pen strokes distorted before rendering" if training.get("stroke_distortion") else "")
            + f"; seed {training.get('seed')}"
        )
    if metrics.get("measured_by"):
        lines.append(f"*Measured by `{metrics['measured_by']}` on these weights.*")
    curves, confusion = (bundled_dir() / f"{model}_{kind}.png" for kind in ("curves", "confusion"))
    return (
        "\n\n".join(lines),
        str(curves) if curves.exists() else None,
        str(confusion) if confusion.exists() else None,
    )


def png_path(image: np.ndarray) -> str:
    """Write an image as a PNG named by its content; return the path.

    The file is written under a temporary name and renamed into place, so a visitor
    downloading it never sees it half written, even when many get the same image at once.
    """
    path = PROCESSED_DIR / f"{hashlib.sha256(image.tobytes()).hexdigest()[:32]}.png"
    try:
        os.utime(path)  # in use again: young for the cleaner
    except FileNotFoundError:
        with tempfile.NamedTemporaryFile(dir=PROCESSED_DIR, suffix=".tmp", delete=False) as file:
            Image.fromarray(image).save(file, format="PNG")
        os.replace(file.name, path)
    return str(path)


def enlarge(image: np.ndarray) -> np.ndarray:
    """Scale a 28×28 image (grey or RGB) up SCALE times, each pixel a crisp block."""
    return np.repeat(np.repeat(image, SCALE, axis=0), SCALE, axis=1)


def _predict(sketch, model):
    try:
        return digitrec.predict(sketch, model)
    except digitrec.EmptyDrawingError as error:
        raise _refuse(error, "Nothing to read") from None
    except ValueError as error:  # unreadable image or unknown model: say so, keep serving
        raise _refuse(error) from None


def classify(sketch, model):
    """Predict the digit in a sketch with the chosen model id: (label probabilities, processed image)."""
    probs, processed = _predict(sketch, model)
    return probs, png_path(enlarge(processed))


def live_classify(sketch, model, live):
    """Predict while the visitor draws, when live mode is on; stay quiet on an empty canvas."""
    if not live:
        return gr.skip(), gr.skip()
    try:
        probs, processed = digitrec.predict(sketch, model)
    except ValueError:
        return gr.skip(), gr.skip()
    return probs, png_path(enlarge(processed))


def compare(sketch):
    """Read one sketch with all three models: a label for each, and the processed image."""
    labels = []
    for model in digitrec.MODEL_IDS:
        probs, processed = _predict(sketch, model)
        labels.append(probs)
    return (*labels, png_path(enlarge(processed)))


def explain(sketch, model, show):
    """Return the heat map of the pixels that drove the model's answer (None when hidden)."""
    if not show:
        return None
    probs, processed = _predict(sketch, model)
    answer = int(max(probs, key=probs.get))
    heat = saliency(digitrec.get_model(model), processed.astype(np.float32) / 255.0, answer)
    return png_path(enlarge(heatmap_image(processed, heat)))


def record(sketch, model, label, request: gr.Request = None):
    """Store a correction (or a confirmation): the drawing, what the model said, the true label.

    The sender is recorded as a salted hash of the visitor's session and address
    (``request``, which gradio passes; it is not part of the API).
    """
    try:
        stored = feedback.record_correction(sketch, model, label, **guard.visitor(request))
    except digitrec.EmptyDrawingError as error:
        raise _refuse(error, "Nothing to store") from None
    except ValueError as error:
        raise _refuse(error, "Not stored") from None
    verdict = "confirmed" if stored["predicted"] == stored["label"] else f"corrected from {stored['predicted']}"
    return f"Thank you — stored as a {stored['label']} ({verdict})."


def confirm(sketch, model, shown, request: gr.Request = None):
    """Store the shown answer as right."""
    if not shown or not isinstance(shown, dict) or shown.get("label") is None:
        raise guard.refuse("Press Predict first, then confirm.", "Not stored")
    return record(sketch, model, shown["label"], request)


def warm_up():
    """Load every model and run it once, so the first visitor waits for nothing."""
    blank = np.full((64, 64), 255, np.uint8)
    blank[16:48, 30:34] = 0
    for model_id in digitrec.MODEL_IDS:
        digitrec.predict(blank, model_id)
        saliency(digitrec.get_model(model_id), preprocess(blank), 1)


warm_up()
feedback.start_sync(feedback.default_store())

SELECT_BRUSH = """() => {
  const pick = () => document.querySelector('#sketch button[aria-label="Brush"]')?.click();
  setTimeout(pick, 300);
}"""

CSS = """
#processed img, #heatmap img { image-rendering: pixelated; }
"""

with gr.Blocks(title="digitrec — handwritten digits") as demo:
    gr.Markdown(
        "# digitrec\nDraw a digit from 0 to 9, pick a model and press **Predict**: you see how sure the "
        "model is of every digit, and the 28×28 image it actually read."
    )
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            sketch = CheckedSketchpad(
                label="Draw a digit",
                type="numpy",
                image_mode="RGBA",
                canvas_size=(800, 800),
                brush=gr.Brush(colors=["#000000"], color_mode="fixed"),
                layers=False,
                transforms=(),
                height=520,
                elem_id="sketch",
            )
            model_radio = guard.ModelRadio(model_choices(), value="cnn", label="Model", elem_id="model")
            with gr.Row():
                predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
                compare_button = gr.Button("Compare all three", elem_id="compare")
            with gr.Row():
                live = gr.Checkbox(label="Predict as I draw", value=False)
                show_heat = gr.Checkbox(label="Show what the model looked at", value=True)
        with gr.Column(min_width=300):
            label = gr.Label(num_top_classes=10, label="What the model reads", elem_id="label")
            with gr.Row():
                processed = gr.Image(
                    label="What the model saw (28×28)", format="png", interactive=False, elem_id="processed"
                )
                heatmap = gr.Image(
                    label="Ink that drove the answer (red → yellow = most)",
                    format="png",
                    interactive=False,
                    elem_id="heatmap",
                )
            gr.Markdown("**Was it right?** Your answer helps the models learn to read drawings.")
            with gr.Row(equal_height=True):
                confirm_button = gr.Button("✓ Yes", size="sm", variant="secondary", elem_id="confirm")
                true_digit = gr.Dropdown(  # any value reaches record(), which says clearly what a label must be
                    [str(d) for d in range(10)],
                    value=None,
                    label="No, it is a",
                    allow_custom_value=True,
                    scale=2,
                    elem_id="true-digit",
                )
                correct_button = gr.Button("Save correction", size="sm", variant="secondary", elem_id="correct")
            thanks = gr.Markdown()
    with gr.Row():
        compare_labels = [
            gr.Label(num_top_classes=3, label=description["name"], elem_id=f"compare-{model_id}")
            for model_id, description in digitrec.MODELS.items()
        ]
    with gr.Accordion("About this model", open=False):
        details_text, first_curves, first_confusion = model_details("cnn")
        details = gr.Markdown(details_text)
        with gr.Row():
            curves = gr.Image(first_curves, label="Training curves", interactive=False, format="png")
            confusion = gr.Image(first_confusion, label="MNIST test confusion matrix", interactive=False, format="png")
    if EXAMPLES:
        gr.Examples([[str(path), "cnn"] for path in EXAMPLES], inputs=[sketch, model_radio], label="Example drawings")

    predict_button.click(
        classify, [sketch, model_radio], [label, processed], api_name="predict", scroll_to_output=True
    ).then(
        explain, [sketch, model_radio, show_heat], heatmap, api_name="explain"
    )
    sketch.change(
        live_classify,
        [sketch, model_radio, live],
        [label, processed],
        api_name="live",
        trigger_mode="always_last",
        show_progress="hidden",
    )
    compare_button.click(compare, [sketch], [*compare_labels, processed], api_name="compare")
    model_radio.change(model_details, model_radio, [details, curves, confusion], api_name="model_details")
    correct_button.click(record, [sketch, model_radio, true_digit], thanks, api_name="feedback")
    confirm_button.click(confirm, [sketch, model_radio, label], thanks, api_name="confirm")
    # Pick up the brush on load and after Clear (which puts it down), so the next drag draws
    # instead of selecting the hint text.
    demo.load(None, js=SELECT_BRUSH)
    sketch.clear(None, js=SELECT_BRUSH)

demo.queue(default_concurrency_limit=CONCURRENCY)
guard.guard_paths(demo)
demo.delete_cache = (min(CACHE_SECONDS, 600), CACHE_SECONDS)  # read by launch(); same as gr.Blocks(delete_cache=)
guard.start_cleaner([(PROCESSED_DIR, True), (GRADIO_TEMP, False)], min(CACHE_SECONDS, 600), CACHE_SECONDS)

if __name__ == "__main__":
    demo.launch(
        css=CSS,
        blocked_paths=[str(feedback.data_dir())],
        max_file_size=MAX_UPLOAD_BYTES,
        app_kwargs=guard.body_limit(MAX_REQUEST_BYTES),
    )
