"""digitrec's Gradio app: draw a digit, pick a model, see what it reads and what it saw.

Plain functions first, the ``gr.Blocks`` wiring last. Every event has an ``api_name``.

The page reads a drawing once, when the pen lifts: a small script on the page copies the
drawing out of the canvas (one 400×400 PNG) and presses a hidden button whose event
(``take_capture``) sends it, and the server keeps the 28×28 image it read in the visitor's
session (where the page cannot copy the canvas, the hidden ``take`` has gradio export it).
Predict, Compare, ✓ Yes and Save correction then read that session state in one unqueued
request each, so a click costs a model call (milliseconds) instead of the canvas's export,
upload and a queue round trip; the script holds a click until the drawing on screen has
been taken, so a click right after the pen lifts reads that drawing, never the one before.

Scripts call the stateless endpoints, each with the drawing: ``/predict`` (sketch, model)
→ (label, processed image) — the label's top ``label`` is the verdict's headline ("7", "Not
sure — 4 or 9?", "That doesn't look like a digit", "Looks like several digits"; docs/verdicts.md),
its ``confidences`` the ten digits' probabilities — ``/explain`` (sketch, model, show) → heat map, ``/compare``
(sketch) → every model's label and the processed image, ``/feedback`` (sketch, model,
label) and ``/confirm`` (sketch, model) → confirmation, ``/model_details`` (model). There
is no per-server "current model": the model id travels with every request. ``/read_digit``
(image as base64 or a data URL, model) → JSON takes and gives no files; it is also the MCP
tool ``read_digit`` (``launch(mcp_server=True)``, at ``/gradio_api/mcp/``).
"""

from __future__ import annotations

import os

# One thread per model call, set before numpy and TensorFlow load (a deployer's own value
# wins): their pools, a thread per core each, compete on a Space's two cores and make every
# call slower and unsteady, while DIGITREC_CONCURRENCY calls already use one core each
# (python -m bench.serve --spread; docs/speed.md).
SERVING_THREADS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
for variable in SERVING_THREADS:
    os.environ.setdefault(variable, "1")

import functools
import hashlib
import io
import logging
import tempfile
import threading
from pathlib import Path
from typing import Literal

import gradio as gr
import numpy as np
from PIL import Image

import digitrec
from digitrec import api, config, feedback, feedback_sync, guard
from digitrec.canvas import CAPTURE_SCALE, SKETCHPAD, CheckedSketchpad
from digitrec.explain import heatmap_image, saliency
from digitrec.messages import cut
from digitrec.preprocess import EmptyDrawingError, preprocess, preprocess_with_view, to_ink, to_uint8
from digitrec.read import digits_side_by_side, read_processed
from digitrec.views import describe as describe_view
from digitrec.weights import bundled_dir

guard.configure_logging()  # one line per record: client strings in messages are escaped
log = logging.getLogger("digitrec.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
SCALE = 10  # the 28×28 image is shown 280×280, each pixel a crisp block
# Limits for a Space open to scripts (docs/limits.md). The processed images live in one
# folder under gradio's cache; it and gradio's cache lose files older than CACHE_SECONDS
# (gradio's delete_cache, plus empty folders and processed images here), also at start.
GRADIO_TEMP = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
CACHE_SECONDS = int(config.number("DIGITREC_CACHE_SECONDS"))
PROCESSED_DIR = guard.kept_folder(GRADIO_TEMP / "digitrec-processed", CACHE_SECONDS)
MAX_UPLOAD_BYTES = int(config.number("DIGITREC_MAX_UPLOAD_MB") * 1e6)
MAX_REQUEST_BYTES = int(config.number("DIGITREC_MAX_REQUEST_MB") * 1e6)
# Two model calls at a time, one per core (TensorFlow and numpy release the GIL while they
# compute); more would only queue inside the process. DIGITREC_CONCURRENCY=N python -m
# bench.serve measures another setting.
CONCURRENCY = int(config.number("DIGITREC_CONCURRENCY"))
# The page's own events skip the queue (a click is one request, not a queue round trip); this
# keeps them to CONCURRENCY computing at a time, the queue's limit, whoever sends them.
PAGE_CALLS = threading.BoundedSemaphore(CONCURRENCY)
NOTHING_DRAWN = "Draw a digit first."
ModelId = Literal[tuple(digitrec.MODEL_IDS)]  # the API and MCP schemas list the valid ids


def model_choices():
    return [(description["name"], model_id) for model_id, description in digitrec.MODELS.items()]


def model_details(model: str):
    """Return a model's description (Markdown) and its training-curve and confusion-matrix images."""
    try:
        digitrec.registry.check_model_id(model)
    except ValueError as error:
        raise guard.refuse(error) from None
    description = digitrec.MODELS[model]
    metrics, training = description["metrics"], description["training"]
    lines = [f"### {description['name']}", f"**Architecture:** {description['architecture']}"]
    if description["params"]:
        lines.append(f"**Parameters:** {description['params']:,}")
    if len(description.get("views", [])) > 1:
        ways = "; ".join(describe_view(view) for view in description["views"])
        when = "" if description.get("views_below") is None else (
            f" when its first reading is below {description['views_below']:.0%} sure")
        lines.append(f"**Reads each drawing {len(description['views'])} ways and averages{when}:** {ways}")
    if metrics.get("mnist_test_accuracy") is not None:
        lines.append(f"**MNIST test accuracy (10,000 digits):** {metrics['mnist_test_accuracy']:.2%}")
    if metrics.get("drawn_heldout_mean") is not None:
        writers = len(metrics.get("drawn_heldout_writers", []))
        lines.append(
            f"**Digits drawn by {writers} people it never saw:** {metrics['drawn_heldout_mean']:.2%} "
            f"on average over canvas conditions, {metrics['drawn_heldout_worst']:.2%} in the hardest"
        )
    if metrics.get("unipen_heldout_mean") is not None:
        places = len(metrics.get("unipen_heldout_institutions", []))
        lines.append(
            f"**Digits drawn at {places} other institutions it never saw (UNIPEN):** "
            f"{metrics['unipen_heldout_mean']:.2%} on average over canvas conditions, "
            f"{metrics['unipen_heldout_worst']:.2%} in the hardest"
        )
    if training:
        lines.append(
            f"**Training:** {training.get('epochs')} epochs, batch {training.get('batch_size')}, "
            f"{training.get('optimizer')}, peak learning rate {training.get('learning_rate')}; "
            f"{training.get('training_images', 0):,} images (MNIST + rendered pen drawings), "
            f"augmentation: {training.get('augmentation')}"
            + ("; pen strokes distorted before rendering" if training.get("stroke_distortion") else "")
            + ("; fine-tuned from the weights before (their own training is in the manifest)" if training.get("init") else "")
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


def _guarded(reader, sketch, model):
    """Return ``reader(sketch, model)``, refusing empty or unreadable drawings and unknown models with a message."""
    try:
        return reader(sketch, model)
    except digitrec.EmptyDrawingError as error:
        raise guard.refuse(error, "Nothing to read") from None
    except ValueError as error:  # unreadable image or unknown model: say so, keep serving
        raise guard.refuse(error) from None


def _predict(sketch, model):
    return _guarded(digitrec.predict, sketch, model)


def _read(sketch, model):
    return _guarded(digitrec.read, sketch, model)


class VerdictLabel(gr.Label):
    """A label whose heading is the reading's verdict, above the ten digits' probabilities.

    ``gr.Label`` heads a distribution with its most likely class; a reading may say "Not sure —
    4 or 9?" or "That doesn't look like a digit" instead, so a value {"label", "confidences"}
    keeps its own heading.
    """

    def get_block_name(self):
        return "label"  # the built-in frontend: a subclass's own name would make gradio fetch a custom component

    def postprocess(self, value):
        if isinstance(value, dict) and "label" in value and isinstance(value.get("confidences"), dict):
            ranked = super().postprocess(value["confidences"])
            ranked.label = value["label"]
            return ranked
        return super().postprocess(value)


def verdict_label(reading) -> dict:
    """Return the label's value for a reading: its headline over the ten digits' probabilities."""
    return {"label": reading.headline(), "confidences": reading.probs}


def heat_map(processed: np.ndarray, model: str, probs: dict) -> str:
    """Return the path of the heat map of the pixels that drove the model's answer."""
    answer = int(max(probs, key=probs.get))
    heat = saliency(digitrec.get_model(model), processed.astype(np.float32) / 255.0, answer)
    return png_path(enlarge(heatmap_image(processed, heat)))


# ---------------------------------------------------------------- the API: the drawing in every call


def classify(sketch, model):
    """Read a sketch with the chosen model id: (the verdict over the digits' probabilities, processed image)."""
    reading = _read(sketch, model)
    return verdict_label(reading), png_path(enlarge(reading.processed))


def compare(sketch):
    """Read one sketch with every model: a label for each, and the processed image.

    The drawing is preprocessed once; each model then reads the same 28×28 image.
    """
    try:
        x = preprocess(sketch)
    except EmptyDrawingError as error:
        raise guard.refuse(error, "Nothing to read") from None
    except ValueError as error:
        raise guard.refuse(error) from None
    labels = [digitrec.registry.classify(x, model) for model in digitrec.MODEL_IDS]
    return (*labels, png_path(enlarge(to_uint8(x))))


def read_digit(image: str, model: ModelId = "cnn") -> dict:
    """Read a handwritten digit (0-9) in an image and say how sure the model is of each digit.

    Args:
        image: The drawing as a base64-encoded PNG (or JPEG, WebP), or as a data URL such as "data:image/png;base64,iVBOR...". Dark ink on a light background, or light ink on dark; any size up to 2048×2048 pixels and 2 MB.
        model: Which model reads it: "cnn" (Keras CNN, the most accurate), "dense" (Keras dense network) or "numpy" (a network written in numpy).

    Returns:
        {"digit": the digit read, "confidence": its probability, "probabilities": the ten digits' probabilities (index = digit), "model": the model id, "image": the 28×28 image the model read, white ink on black, as a PNG data URL, "verdict": "digit", "unsure" (see "candidates"), "not_a_digit" (letters, shapes, scribbles) or "several" (digits side by side), "headline": the verdict in words, "candidates": the digits it hesitates between}
    """
    try:
        return api.read_digit(image, model)
    except digitrec.EmptyDrawingError as error:
        raise guard.refuse(error, "Nothing to read") from None
    except ValueError as error:  # not base64, unreadable image or unknown model: say so, keep serving
        raise guard.refuse(error) from None


def explain(sketch, model, show):
    """Return the heat map of the pixels that drove the model's answer (None when hidden)."""
    if not show:
        return None
    probs, processed = _predict(sketch, model)
    return heat_map(processed, model, probs)


def record(sketch, model, label, request: gr.Request = None):
    """Store a correction (or a confirmation): the drawing, what the model said, the true label.

    The sender is recorded as a salted hash of the visitor's session and address
    (``request``, which gradio passes; it is not part of the API).
    """
    try:
        stored = STORE.record(sketch, model, label, **guard.visitor(request))
    except digitrec.EmptyDrawingError as error:
        raise guard.refuse(error, "Nothing to store") from None
    except ValueError as error:
        raise guard.refuse(error, "Not stored") from None
    verdict = "confirmed" if stored["predicted"] == stored["label"] else f"corrected from {stored['predicted']}"
    return f"Thank you — stored as a {stored['label']} ({verdict})."


def confirm(sketch, model, request: gr.Request = None):
    """Store the model's answer for a sketch as right."""
    probs, _ = _predict(sketch, model)
    return record(sketch, model, max(probs, key=probs.get), request)


# ---------------------------------------------------------------- the page: read once, show many


def paced(function):
    """Wrap a page event's function so at most CONCURRENCY of its calls compute at once, as queued events do."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        with PAGE_CALLS:
            return function(*args, **kwargs)

    return run


def take(sketch, model, live, show_heat, edit, current):
    """Read the drawing on the canvas (gradio's export of it) into the session, as the pen lifts."""
    return taken(lambda: to_ink(sketch), model, live, show_heat, edit, current)


def take_capture(capture, model, live, show_heat, edit, current):
    """Read the page's own copy of the canvas (a PNG data URL) into the session, as the pen lifts.

    The page script copies the drawing out of the canvas at CAPTURE_SCALE as one small PNG
    (~10 KB): one readback instead of gradio's export of three full-size PNGs and their
    upload, which is what made a click wait. When the page cannot copy the canvas (another
    gradio version), it presses ``take`` instead.
    """

    return taken(lambda: to_ink(api.decode_image(capture)), model, live, show_heat, edit, current)


def taken(read_ink, model, live, show_heat, edit, current):
    """Keep the drawing ``read_ink()`` reads in the session; in live mode, also return its answer.

    ``edit`` numbers the visitor's edits (strokes, Clear, Undo, examples) in the page; a
    take that finishes after a later one (a stroke's, overtaken by an example's) is
    dropped, so the session always holds the newest drawing. Returns the drawing state
    ({"edit", "png", "x"}; "x" None for an empty canvas, with "problem" for one that could
    not be read) and, in live mode, every answer panel for it; otherwise the panels are
    left as they are.
    """
    edit = int(edit or 0)
    if current is not None and current["edit"] > edit:
        return gr.skip(), *[gr.skip()] * len(PANELS)
    try:
        ink = read_ink()
        x, view = preprocess_with_view(ink)
    except EmptyDrawingError:
        drawing = {"edit": edit, "png": None, "x": None}
        return drawing, *(cleared() if live else [gr.skip()] * len(PANELS))
    except ValueError as error:
        # Kept, not raised: the next click must say this, never answer for the drawing before.
        guard.refuse(error)  # logged in one line
        drawing = {"edit": edit, "png": None, "x": None, "problem": cut(error)}
        return drawing, *(show(drawing, model) if live else [gr.skip()] * len(PANELS))
    buffer = io.BytesIO()  # the drawing kept as a small grey PNG: it is what a correction stores
    Image.fromarray(to_uint8(1.0 - ink)).save(buffer, format="PNG")
    drawing = {"edit": edit, "png": buffer.getvalue(), "x": x, "view": view}
    if not live:
        return drawing, *[gr.skip()] * len(PANELS)
    return drawing, *show(drawing, model, show_heat)


def load_example(index, model, live, show_heat, edit, current):
    """Put example ``index`` on the canvas and read it into the session, in one event."""
    path = str(EXAMPLES[int(index)])
    return {"background": path, "layers": [], "composite": path}, *take(path, model, live, show_heat, edit, current)


def show(drawing, model, show_heat=True, compare_all=False):
    """Return every answer panel for one drawing: label, 28×28 image, heat map, comparisons, thanks, shown.

    All panels come from the same drawing in one response, so none can contradict
    another; the comparisons are filled only when asked for and cleared otherwise.
    """
    if drawing is None or drawing["x"] is None:
        # The headline says it: the page's own events skip the queue, and gradio shows no
        # message box for an error raised outside the queue.
        return said(drawing.get("problem") if drawing else None)
    try:
        digitrec.registry.check_model_id(model)
    except ValueError as error:
        return said(cut(error))
    x = drawing["x"]
    reading = read_processed(x, model, digits_side_by_side(drawing["view"], model))
    processed, probs = reading.processed, reading.probs
    heat = heat_map(processed, model, probs) if show_heat else None
    others = [digitrec.registry.classify(x, other) if compare_all else None for other in digitrec.MODEL_IDS]
    answer = max(probs, key=probs.get)
    shown = {"png": drawing["png"], "model": model, "answer": answer}
    return verdict_label(reading), png_path(enlarge(processed)), heat, *others, "", shown


def show_comparison(drawing, model, show_heat):
    return show(drawing, model, show_heat, compare_all=True)


def said(problem=None):
    """Return every answer panel empty but the headline, which says why there is no answer."""
    return problem or NOTHING_DRAWN, *cleared()[1:]


def cleared():
    """Return every answer panel empty (the canvas was cleared)."""
    return None, None, None, *[None] * len(digitrec.MODEL_IDS), "", None


def confirm_shown(shown, request: gr.Request = None):
    """Store the answer on screen as right."""
    if shown is None:
        raise guard.refuse("Press Predict first, then confirm.", "Not stored")
    return record(shown["png"], shown["model"], shown["answer"], request)


def correct_shown(shown, label, request: gr.Request = None):
    """Store the drawing whose answer is on screen with the digit the visitor says it is."""
    if shown is None:
        raise guard.refuse("Press Predict first, then correct it.", "Not stored")
    return record(shown["png"], shown["model"], label, request)


# ---------------------------------------------------------------- Number mode: a whole number on a wide canvas

NUMBER_SKETCHPAD = {**SKETCHPAD, "canvas_size": (1600, 600), "height": 420, "elem_id": "number-sketch"}
BOX_COLOUR = (220, 40, 40)  # the digits' boxes over the drawing
STRIP_GAP = 4  # pixels between digits in the strip of 28×28 images


def _read_number(sketch, model):
    """Read the number in a sketch, or refuse with a short message (the app keeps serving)."""
    try:
        return digitrec.read_number(sketch, model)
    except digitrec.EmptyDrawingError as error:
        raise guard.refuse(error, "Nothing to read") from None
    except ValueError as error:
        raise guard.refuse(error) from None


def digit_strip(reading) -> np.ndarray:
    """Put the digits' 28×28 images side by side, enlarged, with a thin gap: what the model read."""
    gap = np.zeros((28, STRIP_GAP), np.uint8) + 60
    parts = []
    for digit in reading.digits:
        parts += [digit.processed, gap]
    return enlarge(np.concatenate(parts[:-1], axis=1))


def boxes_over(sketch, reading) -> np.ndarray:
    """Return a copy of the drawing with each digit's box and reading drawn over it."""
    from PIL import ImageDraw

    paper = Image.fromarray(to_uint8(1.0 - to_ink(sketch))).convert("RGB")
    draw = ImageDraw.Draw(paper)
    width = max(2, paper.width // 400)
    for digit, (x0, y0, x1, y1) in zip(reading.digits, reading.boxes):
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=BOX_COLOUR, width=width)
        draw.text((x0 + 2 * width, max(0, y0 - 14 * width)), digit.symbol, fill=BOX_COLOUR, font_size=12 * width)
    paper.thumbnail((800, 800))
    return np.asarray(paper)


def caption(digit) -> str:
    """Return a digit's caption, short enough for a thumbnail: its top two guesses, and a flag when unsure."""
    guesses = " · ".join(f"{c['digit']} {c['probability']:.0%}" for c in digit.candidates[:2])
    return guesses + ("" if digit.verdict == "digit" else f" ({digit.verdict.replace('_', ' ')})")


def read_number(sketch, model):
    """Read a whole number in a sketch: (the number, per-digit details as JSON, the strip of 28×28 images)."""
    reading = _read_number(sketch, model)
    return reading.text, reading.details(), png_path(digit_strip(reading))


def read_number_shown(sketch, model):
    """Read the number for the page: the number, details, strip, each digit with its guesses, the boxes, the state.

    The state keeps each digit's drawing (its crop) so a correction stores that digit.
    """
    reading = _read_number(sketch, model)
    gallery = [(png_path(enlarge(d.processed)), caption(d)) for d in reading.digits]
    positions = [(f"#{i + 1} (read {d.symbol})", i) for i, d in enumerate(reading.digits)]
    shown_number = {"model": model, "crops": reading.crops, "text": reading.text}
    return (
        reading.text,
        reading.details(),
        png_path(digit_strip(reading)),
        gallery,
        png_path(boxes_over(sketch, reading)),
        gr.update(choices=positions, value=None),
        "",
        shown_number,
    )


def _position(position, count) -> int:
    """Return a digit's place (0-based) in a number of ``count`` digits, or refuse."""
    try:
        index = int(position)
    except (TypeError, ValueError):
        raise guard.refuse("Pick which digit to correct.", "Not stored") from None
    if not 0 <= index < count:
        raise guard.refuse(f"The number has {count} digits: pick 0 to {count - 1}, counted from the left.", "Not stored")
    return index


def correct_digit(sketch, model, position, label, request: gr.Request = None):
    """Store a correction of one digit of the number in a sketch: ``position`` counts from 0, left to right."""
    reading = _read_number(sketch, model)
    index = _position(position, len(reading.crops))
    return record(reading.crops[index], model, label, request)  # that digit's drawing, as a single digit


def correct_digit_shown(shown_number, position, label, request: gr.Request = None):
    """Store the digit the visitor picked, of the number on screen, with the digit it really is."""
    if shown_number is None:
        raise guard.refuse("Read a number first, then correct a digit.", "Not stored")
    index = _position(position, len(shown_number["crops"]))
    return record(shown_number["crops"][index], shown_number["model"], label, request)


def pick_digit(event: gr.SelectData):
    """Select the digit clicked in the gallery as the one to correct."""
    return event.index


def warm_up():
    """Load every model and run it once, so the first visitor waits for nothing."""
    blank = np.full((64, 64), 255, np.uint8)
    blank[16:48, 30:34] = 0
    for model_id in digitrec.MODEL_IDS:
        digitrec.read(blank, model_id)  # loads the model and its verdict file
        saliency(digitrec.get_model(model_id), preprocess(blank), 1)


warm_up()
STORE = feedback.FeedbackStore(feedback.data_dir())  # visitors' corrections (docs/corrections.md)
feedback_sync.start_sync(STORE)

# The page's script. It counts the visitor's edits (a stroke, Undo, Clear: any pointer
# release that began on the sketchpad; an example loaded) and has the drawing taken after
# each, one take at a time; ``settled()`` resolves once the drawing on screen has been
# taken, and every answer button waits for it. It also picks the brush up on load and
# after Clear (which puts it down), so the next drag draws instead of selecting text.
PAGE_JS = """() => {
  const state = window.digitrec = {edits: 0, taken: 0, started: 0, busy: false, since: 0};
  const take = (now = false) => {
    if (state.busy && performance.now() - state.since < 20000) return;
    state.busy = true; state.since = performance.now(); state.started = state.edits;
    const copy = () => {
      const start = performance.now();
      state.png = state.capture();
      state.copy_ms = performance.now() - start;  // read by bench.browser
      document.querySelector(state.png ? '#take-capture' : '#take')?.click();
    };
    // A stroke is on the layer once the editor's pointerup (on window, before ours) returns:
    // copy it now, ahead of the frames the browser paints next. A button (Undo, Clear) acts
    // on its click, after the pointerup: wait for it.
    if (now) copy(); else setTimeout(copy, 20);
  };
  // The editor's pixi application drawing in #sketch (collected by HEAD's script), or undefined.
  state.app = () => {
    const sketch = document.querySelector('#sketch');
    return (window.__digitrec_apps || []).find((candidate) => sketch && sketch.contains(candidate.canvas));
  };
  // The editor repaints its whole canvas every frame for half a second after each pointer
  // event; without a GPU each repaint costs the page ~0.1 s. Once the frame showing the
  // finished stroke is painted there is nothing left to draw: stop the loop (the editor
  // restarts it on the next pointer event, as it does after its own half second).
  const rest = () => {
    const app = state.app();
    if (app?.ticker?.started) requestAnimationFrame(() => app.ticker.stop());
  };
  // Copy the drawing out of the editor's canvas as one small PNG (what gradio's export does
  // three times at full size): the pixi application holding #sketch (collected by HEAD's
  // script), its image container, read back at CAPTURE_SCALE. null if anything differs.
  state.capture = () => {
    try {
      const app = state.app();
      const image = app?.stage?.children.find((child) => child.sortableChildren && child.eventMode === 'static');
      if (!image) return null;
      const Rectangle = image.getLocalBounds().rectangle.constructor;
      const frame = new Rectangle(0, 0, CANVAS_WIDTH, CANVAS_HEIGHT);
      const {pixels, width, height} = app.renderer.extract.pixels({target: image, resolution: CAPTURE_SCALE, frame});
      if (!width || !height || pixels.length !== width * height * 4) return null;
      for (let i = 0; i < pixels.length; i += 4) {  // WebGL gives premultiplied alpha
        const alpha = pixels[i + 3];
        if (alpha !== 0 && alpha !== 255) {
          pixels[i] *= 255 / alpha; pixels[i + 1] *= 255 / alpha; pixels[i + 2] *= 255 / alpha;
        }
      }
      const copy = document.createElement('canvas');
      copy.width = width; copy.height = height;
      const context = copy.getContext('2d');
      const data = context.createImageData(width, height);
      data.data.set(pixels);
      context.putImageData(data, 0, 0);
      return copy.toDataURL('image/png');
    } catch (error) {
      return null;
    }
  };
  state.examples = [];
  state.example = () => { state.edits += 1; state.examples.push(state.edits); return state.edits; };
  state.edited = (now = false) => { state.edits += 1; take(now); };
  state.taken_done = () => {
    state.taken = Math.max(state.taken, state.started); state.busy = false;
    state.taken_at = performance.now();  // read by bench.browser
    if (state.taken < state.edits) take();
  };
  state.example_done = () => { state.taken = Math.max(state.taken, state.examples.shift() ?? 0); };
  state.settled = async (limit = 20000) => {
    const start = performance.now();
    while (state.taken < state.edits && performance.now() - start < limit) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    state.last_wait = performance.now() - start;
  };
  state.pick_brush = () => setTimeout(
    () => document.querySelector('#sketch button[aria-label="Brush"]')?.click(), 300);
  let drawing = false, stroke = false;
  document.addEventListener('pointerdown', (event) => {
    drawing = Boolean(event.target.closest && event.target.closest('#sketch'));
    stroke = drawing && event.target === state.app()?.canvas;
  }, true);
  document.addEventListener('pointerup', () => {
    if (!drawing) return;
    drawing = false; state.edited(stroke);
    if (stroke) rest();
  }, true);
  document.addEventListener('pointercancel', () => { if (drawing) { drawing = false; state.edited(); } }, true);
  document.addEventListener('keyup', (event) => {  // the editor's keyboard undo and redo
    if ((event.ctrlKey || event.metaKey) && 'zy'.includes(event.key.toLowerCase())) state.edited();
  }, true);
  state.pick_brush();
}""".replace("CAPTURE_SCALE", str(CAPTURE_SCALE)).replace("CANVAS_WIDTH", str(SKETCHPAD["canvas_size"][0])).replace(
    "CANVAS_HEIGHT", str(SKETCHPAD["canvas_size"][1])
)
# The take carries the number of the newest edit it includes; an example's take, its own.
TAKE_JS = "(sketch, model, live, heat) => [sketch, model, live, heat, window.digitrec?.started ?? 0]"
TAKE_CAPTURE_JS = "(capture, model, live, heat) => [window.digitrec?.png ?? null, model, live, heat, window.digitrec?.started ?? 0]"
AFTER_TAKE = "() => window.digitrec?.taken_done()"
EXAMPLE_JS = "(index, model, live, heat) => [index, model, live, heat, window.digitrec?.example() ?? 0]"
AFTER_EXAMPLE = "() => window.digitrec?.example_done()"
# Each answer button waits until the drawing on screen has been taken, then reads it.
WHEN_SETTLED = "async (...inputs) => { await window.digitrec?.settled(); return inputs; }"
SHOW_ANSWER = """() => {
  const answer = document.querySelector('#label');
  if (!answer) return;
  const box = answer.getBoundingClientRect();
  if (box.top < 0 || box.top + Math.min(box.height, 160) > window.innerHeight) {
    answer.scrollIntoView({block: 'start', behavior: 'instant'});
  }
}"""

CSS = """
#processed img, #heatmap img { image-rendering: pixelated; }
/* Phones: the drawing square takes the width, and the tool palette moves under it. */
@media (max-width: 640px) {
  #sketch { height: calc(100vw + 48px) !important; }
  #sketch .toolbar-wrap { top: auto !important; bottom: 6px; left: 50% !important; transform: translateX(-50%);
                          width: auto !important; flex-direction: row !important; }
  #sketch .toolbar-wrap .half-container { flex-direction: row !important; }
}
"""
CSS += """
#number-text textarea { font-size: 2.6rem; font-weight: 700; letter-spacing: 0.15em; }
#number-digits img, #number-strip img { image-rendering: pixelated; }
"""
# The page's side margins sit outside the part of the page that ``css`` (which gradio
# scopes to the app's content) reaches, so the phone's narrower margins go in the head.
# Gradio's image editor announces each pixi application it creates as window.__PIXI_APP__
# (for pixi's devtools), one overwriting the other; this keeps them all, so the page's
# script can find the one drawing in #sketch and copy its drawing (PAGE_JS, state.capture).
PIXI_APPS = """<script>(() => {
  const apps = window.__digitrec_apps = [];
  let last;
  Object.defineProperty(window, '__PIXI_APP__', {configurable: true, get: () => last, set: (app) => { last = app; apps.push(app); }});
})();</script>"""
HEAD = PIXI_APPS + "<style>@media (max-width: 640px) { .gradio-container .main.app { padding-left: 6px; padding-right: 6px; } }</style>"

with gr.Blocks(title="digitrec — handwritten digits") as demo:
    drawing = gr.State(None)  # the drawing on the canvas as the server read it ({"png", "x"}), or None
    shown = gr.State(None)  # the answer on screen ({"png", "model", "answer"}): what ✓ Yes confirms
    gr.Markdown(
        "# digitrec\nDraw a digit from 0 to 9, pick a model and press **Predict**: you see how sure the "
        "model is of every digit, and the 28×28 image it actually read."
    )
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            sketch = CheckedSketchpad(label="Draw a digit", **SKETCHPAD)
            model_radio = guard.ModelRadio(model_choices(), value="cnn", label="Model", elem_id="model")
            with gr.Row():
                predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
                compare_button = gr.Button(f"Compare all {len(digitrec.MODEL_IDS)}", elem_id="compare")
            with gr.Row():
                live = gr.Checkbox(label="Predict as I draw", value=False, elem_id="live")
                show_heat = gr.Checkbox(label="Show what the model looked at", value=True, elem_id="show-heat")
            take_button = gr.Button("Take the drawing", visible="hidden", elem_id="take")
            take_capture_button = gr.Button("Take the page's copy", visible="hidden", elem_id="take-capture")
            capture = gr.Textbox(visible="hidden", elem_id="capture")  # see TAKE_CAPTURE_JS
            edit = gr.Number(0, precision=0, visible="hidden", elem_id="edit")  # see TAKE_JS
        with gr.Column(min_width=300):
            label = VerdictLabel(num_top_classes=10, label="What the model reads", elem_id="label")
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
            thanks = gr.Markdown(elem_id="thanks")
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
    examples = gr.Dataset(
        components=[gr.Image(visible=False)], samples=[[str(path)] for path in EXAMPLES], type="index",
        label="Example drawings", layout="gallery", elem_id="examples",
    )

    with gr.Tabs():
        with gr.Tab("Number", id="number", elem_id="number-tab"):
            gr.Markdown(
                "Draw a whole number — a year, a house number — side by side, and press **Read the number**: "
                "each digit is cut out and read like a single digit. Fix a digit it got wrong below."
            )
            shown_number = gr.State(None)  # the number on screen: each digit's drawing, for a correction
            number_sketch = CheckedSketchpad(label="Draw a number", **NUMBER_SKETCHPAD)
            with gr.Row():
                number_model = guard.ModelRadio(model_choices(), value="cnn", label="Model", elem_id="number-model")
                read_button = gr.Button("Read the number", variant="primary", elem_id="read-number")
            number_text = gr.Textbox(label="The number", interactive=False, elem_id="number-text")
            with gr.Row(equal_height=False):
                number_digits = gr.Gallery(
                    label="Each digit as the model saw it (28×28), with its top guesses",
                    columns=6, height=260, object_fit="contain", allow_preview=False, elem_id="number-digits",
                )
                number_boxes = gr.Image(
                    label="Where each digit was found", format="png", interactive=False, elem_id="number-boxes"
                )
            with gr.Row(equal_height=True):
                digit_position = gr.Dropdown([], label="Digit to correct", allow_custom_value=True, elem_id="digit-position")
                digit_label = gr.Dropdown(
                    [str(d) for d in range(10)], value=None, label="It is a", allow_custom_value=True,
                    elem_id="digit-label",
                )
                digit_button = gr.Button("Save correction", size="sm", variant="secondary", elem_id="correct-digit")
            digit_thanks = gr.Markdown(elem_id="digit-thanks")
            with gr.Accordion("Details (JSON) and the strip of digits", open=False):
                number_json = gr.JSON(label="Each digit: reading, guesses, box", elem_id="number-json")
                number_strip = gr.Image(
                    label="The digits the model read", format="png", interactive=False, elem_id="number-strip"
                )

    read_button.click(
        read_number_shown, [number_sketch, number_model],
        [number_text, number_json, number_strip, number_digits, number_boxes, digit_position, digit_thanks,
         shown_number],
        api_name="read_number_shown", api_visibility="private",
    )
    number_digits.select(pick_digit, None, digit_position, api_name="pick_digit", api_visibility="private")
    digit_button.click(
        correct_digit_shown, [shown_number, digit_position, digit_label], digit_thanks,
        api_name="correct_digit_shown", api_visibility="private",
    )
    gr.on([], read_number, [number_sketch, number_model], [number_text, number_json, number_strip],
          api_name="read_number")
    gr.on([], correct_digit, [number_sketch, number_model, digit_position, digit_label], digit_thanks,
          api_name="feedback_digit")

    PANELS = [label, processed, heatmap, *compare_labels, thanks, shown]

    # The page.
    take_button.click(
        paced(take), [sketch, model_radio, live, show_heat, edit, drawing], [drawing, *PANELS], api_name="take",
        api_visibility="private", show_progress="hidden", trigger_mode="multiple", js=TAKE_JS, queue=False,
    ).then(None, js=AFTER_TAKE)
    take_capture_button.click(
        paced(take_capture), [capture, model_radio, live, show_heat, edit, drawing], [drawing, *PANELS],
        api_name="take_capture", api_visibility="private", show_progress="hidden", trigger_mode="multiple",
        js=TAKE_CAPTURE_JS, queue=False,
    ).then(None, js=AFTER_TAKE)
    examples.click(
        load_example, [examples, model_radio, live, show_heat, edit, drawing], [sketch, drawing, *PANELS],
        api_name="load_example", api_visibility="private", show_progress="hidden", trigger_mode="multiple",
        js=EXAMPLE_JS,
    ).then(None, js=AFTER_EXAMPLE)
    predict_button.click(
        paced(show), [drawing, model_radio, show_heat], PANELS, api_name="show", api_visibility="private", js=WHEN_SETTLED,
        queue=False,
    ).then(None, js=SHOW_ANSWER)
    compare_button.click(
        paced(show_comparison), [drawing, model_radio, show_heat], PANELS, api_name="show_comparison", api_visibility="private",
        js=WHEN_SETTLED, queue=False,
    )
    confirm_button.click(confirm_shown, shown, thanks, api_name="confirm_shown", api_visibility="private")
    correct_button.click(
        correct_shown, [shown, true_digit], thanks, api_name="correct_shown", api_visibility="private"
    )
    sketch.clear(
        cleared, None, PANELS, api_name="clear", api_visibility="private", queue=False,
        js="() => { window.digitrec?.pick_brush(); return []; }",
    )
    model_radio.change(model_details, model_radio, [details, curves, confusion], api_name="model_details")
    demo.load(None, js=PAGE_JS)

    # Scripts: every call carries the drawing; nothing is kept between calls.
    gr.on([], classify, [sketch, model_radio], [label, processed], api_name="predict")
    gr.on([], explain, [sketch, model_radio, show_heat], heatmap, api_name="explain")
    gr.on([], compare, [sketch], [*compare_labels, processed], api_name="compare")
    gr.on([], record, [sketch, model_radio, true_digit], thanks, api_name="feedback")
    gr.on([], confirm, [sketch, model_radio], thanks, api_name="confirm")
    # JSON in, JSON out (no file upload or download); also the MCP tool "read_digit".
    gr.api(read_digit, api_name="read_digit")

demo.queue(default_concurrency_limit=CONCURRENCY)
guard.guard_paths(demo)
demo.delete_cache = (min(CACHE_SECONDS, 600), CACHE_SECONDS)  # read by launch(); same as gr.Blocks(delete_cache=)
guard.start_cleaner([(PROCESSED_DIR, True), (GRADIO_TEMP, False)], min(CACHE_SECONDS, 600), CACHE_SECONDS)

if __name__ == "__main__":
    demo.launch(
        css=CSS,
        head=HEAD,
        blocked_paths=[str(feedback.data_dir())],
        max_file_size=MAX_UPLOAD_BYTES,
        app_kwargs=guard.body_limit(MAX_REQUEST_BYTES),
        mcp_server=True,  # agents: /gradio_api/mcp/ (streamable HTTP), tool "read_digit"
    )
