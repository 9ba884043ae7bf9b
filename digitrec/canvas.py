"""The app's drawing component: gradio's Sketchpad, with a short clear answer for bad uploads.

Scripts can send anything as the sketch. Stock gradio answers a payload of the wrong
shape, an unreadable file or a huge image with a generic "the app raised an exception"
(and decodes a 10000×10000 PNG in full first, ~400 MB and seconds). Here the payload's
shape is checked, each uploaded file's header is read to refuse oversized images before
they are decoded, and any decoding error becomes a one-line ``gr.Error``.
"""

from __future__ import annotations

import time

import gradio as gr
from gradio.components.image_editor import EditorData
from PIL import Image
from pydantic import ValidationError

from .preprocess import MAX_SIDE

BLOB_WAIT = 2.0  # seconds to wait for a drawing the browser is still uploading
SHAPE_MESSAGE = "The sketch must be a dict with 'background', 'layers' and 'composite' images (or None)."


def _error(message: str, title: str = "Cannot read this") -> gr.Error:
    return gr.Error(message, title=title, print_exception=False)


class CheckedEditorData(EditorData):
    """The sketchpad's payload model, refusing a payload of the wrong shape with a clear message."""

    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError:
            raise _error(SHAPE_MESSAGE) from None


class CheckedSketchpad(gr.Sketchpad):
    """A Sketchpad whose uploads are size-checked before decoding and whose read errors are short."""

    data_model = CheckedEditorData

    def get_block_name(self) -> str:
        """Use the stock image editor's front end (gradio would look for a custom "sketchpad" one)."""
        return "imageeditor"

    def preprocess(self, payload):
        if payload is None:
            return None
        self._wait_for_blobs(payload.id)
        files = [payload.background, payload.composite, *(payload.layers or [])]
        for file in files:
            if file is not None and getattr(file, "path", None):
                _check_header(file.path)
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:  # truncated data, odd modes PIL cannot convert, …
            text = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise _error(f"Could not read the image ({text}).") from None

    def _wait_for_blobs(self, blob_id, timeout: float = BLOB_WAIT) -> None:
        """Wait briefly for the browser's upload of the drawing that this request refers to.

        The browser uploads the canvas about a second after the pen lifts and sends only an
        id with the event; a Predict pressed sooner would otherwise read an empty canvas.
        """
        if blob_id is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blobs = self.blob_storage.get(blob_id)
            if blobs is not None and blobs.composite is not None:
                return
            time.sleep(0.05)


def _check_header(path: str) -> None:
    """Read only the image header: refuse unreadable files and images over MAX_SIDE."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:
        raise _error("Could not read the image: it is not a PNG, JPEG, WebP or other known format.") from None
    if width > MAX_SIDE or height > MAX_SIDE:
        raise _error(f"Image is {width}×{height} pixels; the largest accepted is {MAX_SIDE}×{MAX_SIDE}.")
