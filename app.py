"""digitrec's Gradio app: draw a digit, pick a model, see what it reads and what it saw.

Plain functions first, the ``gr.Blocks`` wiring last. Every event has an ``api_name``;
``/predict`` takes (sketch, model) and returns (label, processed image) for
``gradio_client``. There is no per-server "current model": the model id travels with
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
from digitrec.canvas import CheckedSketchpad

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
log = logging.getLogger("digitrec.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
SCALE = 10  # the 28×28 image is shown 280×280, each pixel a crisp block
PROCESSED_DIR = Path(tempfile.mkdtemp(prefix="digitrec-processed-"))


def model_choices():
    return [(description["name"], model_id) for model_id, description in digitrec.MODELS.items()]


def model_details(model: str) -> str:
    """Return Markdown describing a model: architecture, parameters, training and measured accuracy."""
    try:
        digitrec.registry.check_model_id(model)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
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
            f"augmentation: {training.get('augmentation')}; seed {training.get('seed')}"
        )
    if metrics.get("measured_by"):
        lines.append(f"*Measured by `{metrics['measured_by']}` on these weights.*")
    return "\n\n".join(lines)


def processed_png(processed: np.ndarray) -> str:
    """Write the 28×28 image, scaled up, as a PNG named by its content; return the path.

    The file is written under a temporary name and renamed into place, so a visitor
    downloading it never sees it half written, even when many get the same image at once.
    """
    big = Image.fromarray(processed).resize((28 * SCALE, 28 * SCALE), Image.Resampling.NEAREST)
    path = PROCESSED_DIR / f"{hashlib.sha256(processed.tobytes()).hexdigest()[:32]}.png"
    if not path.exists():
        with tempfile.NamedTemporaryFile(dir=PROCESSED_DIR, suffix=".tmp", delete=False) as file:
            big.save(file, format="PNG")
        os.replace(file.name, path)
    return str(path)


def classify(sketch, model):
    """Predict the digit in a sketch with the chosen model id: (label probabilities, processed image)."""
    try:
        probs, processed = digitrec.predict(sketch, model)
    except digitrec.EmptyDrawingError as error:
        raise gr.Error(str(error), title="Nothing to read", print_exception=False) from None
    except ValueError as error:  # unreadable image or unknown model: say so, keep serving
        raise gr.Error(str(error), title="Cannot read this", print_exception=False) from None
    return probs, processed_png(processed)


def warm_up():
    """Load every model and run it once, so the first visitor waits for nothing."""
    blank = np.full((64, 64), 255, np.uint8)
    blank[16:48, 30:34] = 0
    for model_id in digitrec.MODEL_IDS:
        digitrec.predict(blank, model_id)


warm_up()

with gr.Blocks(title="digitrec — handwritten digits") as demo:
    gr.Markdown(
        "# digitrec\nDraw a digit from 0 to 9, pick a model and press **Predict**: you see how sure the "
        "model is of every digit, and the 28×28 image it actually read."
    )
    with gr.Row():
        with gr.Column():
            sketch = CheckedSketchpad(
                label="Draw a digit",
                type="numpy",
                image_mode="RGBA",
                canvas_size=(800, 800),
                brush=gr.Brush(colors=["#000000"], color_mode="fixed"),
                layers=False,
                transforms=(),
            )
            model_radio = gr.Radio(model_choices(), value="cnn", label="Model")
            predict_button = gr.Button("Predict", variant="primary")
        with gr.Column():
            label = gr.Label(num_top_classes=10, label="What the model reads")
            processed = gr.Image(label="What the model saw (28×28)", format="png", interactive=False)
            details = gr.Markdown(model_details("cnn"))
    if EXAMPLES:
        gr.Examples([[str(path), "cnn"] for path in EXAMPLES], inputs=[sketch, model_radio], label="Example drawings")

    predict_button.click(classify, [sketch, model_radio], [label, processed], api_name="predict")
    model_radio.change(model_details, model_radio, details, api_name="model_details")

if __name__ == "__main__":
    demo.launch()
