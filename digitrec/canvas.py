"""The app's drawing component: gradio's Sketchpad, with a short clear answer for bad uploads.

Scripts can send anything as the sketch. Stock gradio answers a payload of the wrong
shape, an unreadable file or a huge image with a generic "the app raised an exception"
(and decodes a 10000×10000 PNG in full first, ~400 MB and seconds). Here the payload's
shape is checked, each uploaded file's header is read to refuse oversized images before
they are decoded, and any decoding error becomes a one-line ``gr.Error``.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict

import gradio as gr
from gradio.components.image_editor import EditorData
from PIL import Image
from pydantic import ValidationError

from .preprocess import InvalidImageError, check_size

BLOB_WAIT = 2.0  # seconds to wait for a drawing the browser is still uploading
# A visitor may draw, think, and press Predict minutes after the live reading read the
# drawing. A drawing's three PNGs (background, layer, composite) are ~50 KB together, so
# the limit bounds the store to ~25 MB.
BLOB_KEEP = 600.0  # seconds a drawing stays readable after the first event read it
BLOB_LIMIT = 512  # drawings kept at most; the oldest go first
# The app's canvas (bench/floor_app.py measures a stock Sketchpad with the same settings).
SKETCHPAD = dict(
    type="numpy",
    image_mode="RGBA",
    canvas_size=(800, 800),
    brush=gr.Brush(colors=["#000000"], color_mode="fixed"),
    layers=False,
    transforms=(),
    height=520,
    elem_id="sketch",
)
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


class RecentDrawings(OrderedDict):
    """The sketchpad's uploaded drawings by id, readable by every event that refers to one.

    The browser uploads a drawing once and several events then name it by id: the sketch's
    change (live prediction), Predict, and the heat map that follows it. Stock gradio drops
    a drawing when the first event reads it, so whichever event came second read an empty
    canvas ("Draw a digit first" for a digit on screen). Here a read only starts a
    ``keep``-second clock; drawings are dropped when that runs out, and beyond ``limit``
    the oldest go first, so uploads that no event reads cannot pile up either.
    """

    def __init__(self, keep: float = BLOB_KEEP, limit: int = BLOB_LIMIT):
        super().__init__()
        self.keep, self.limit = keep, limit
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def __setitem__(self, blob_id, blobs):
        with self._lock:
            super().__setitem__(blob_id, blobs)
            self.move_to_end(blob_id)
            self._expires.pop(blob_id, None)
            self._drop_old()

    def pop(self, blob_id, *default):
        """Keep the drawing for ``keep`` more seconds instead of dropping it; return it."""
        with self._lock:
            self._expires.setdefault(blob_id, time.monotonic() + self.keep)
            self._drop_old()
            return self.get(blob_id, *default[:1])

    def _drop_old(self) -> None:
        now = time.monotonic()
        for blob_id in [i for i, expiry in self._expires.items() if expiry < now]:
            self._expires.pop(blob_id)
            super().pop(blob_id, None)
        while len(self) > self.limit:
            blob_id, _ = self.popitem(last=False)
            self._expires.pop(blob_id, None)


class CheckedSketchpad(gr.Sketchpad):
    """A Sketchpad whose uploads are size-checked before decoding and whose read errors are short."""

    data_model = CheckedEditorData

    # A property, not an __init__ override: gradio builds the front end's props from the
    # signature of __init__, so a (*args, **kwargs) override would hide them all.
    @property
    def blob_storage(self) -> RecentDrawings:
        return self._drawings

    @blob_storage.setter
    def blob_storage(self, drawings) -> None:
        self._drawings = RecentDrawings()
        self._drawings.update(drawings)

    def get_block_name(self) -> str:
        """Use the stock image editor's front end (gradio would look for a custom "sketchpad" one)."""
        return "imageeditor"

    def preprocess(self, payload):
        if payload is None:
            return None
        self._wait_for_blobs(payload.id)
        source = self.blob_storage.get(payload.id) if payload.id is not None else payload
        files = [source.background, source.composite, *(source.layers or [])] if source is not None else []
        for file in files:
            if isinstance(file, (bytes, bytearray)):
                _check_header(io.BytesIO(file))
            elif file is not None and getattr(file, "path", None):
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


def _check_header(file) -> None:
    """Read only the image header of a path or bytes stream: refuse unreadable files and images over MAX_SIDE."""
    try:
        with Image.open(file) as image:
            width, height = image.size
    except Exception:
        raise _error("Could not read the image: it is not a PNG, JPEG, WebP or other known format.") from None
    try:
        check_size(width, height)
    except InvalidImageError as error:
        raise _error(str(error)) from None
