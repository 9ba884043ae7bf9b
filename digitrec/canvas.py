"""The app's drawing component: gradio's Sketchpad, bounded and with short clear answers.

Scripts can send anything as the sketch. Stock gradio answers a payload of the wrong
shape, an unreadable file or a huge image with a generic "the app raised an exception"
(and decodes a 10000×10000 PNG in full first, ~400 MB and seconds), keeps every drawing
uploaded to its ``accept_blobs`` route in memory, whole, until an event reads it, and
grows a list to whatever layer index a request names. Here:

- each uploaded file's size and header are checked before it is kept or decoded: over
  MAX_FILE_BYTES, MAX_SIDE on a side or MAX_PIXELS is "too large" (HTTP 413 on the upload
  route, the same message to the event that names the drawing);
- only the background and the composite are kept (the app reads the composite); layers
  are acknowledged and dropped, a layer index beyond MAX_LAYERS refused;
- all kept drawings together stay under MAX_KEPT_BYTES (and BLOB_LIMIT), the oldest going first;
- an event naming a drawing that has not arrived waits for it only while no other
  request is waiting (``_wait_for_blobs``), so such requests cannot pile up on the workers;
- any decoding error becomes a one-line ``gr.Error``.

Environment: DIGITREC_MAX_UPLOAD_MB (per file, default 2), DIGITREC_MAX_PIXELS (per
drawing, default 2048×2048), DIGITREC_DRAWINGS_MAX_MB (all kept drawings, default 64).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict

import gradio as gr
from fastapi import HTTPException
from gradio.components.base import server
from gradio.components.image_editor import EditorData, EditorDataBlobs
from pydantic import ValidationError

from . import config
from .guard import refuse
from .messages import cut, shown
from .preprocess import InvalidImageError, check_size, open_header

BLOB_WAIT = 2.0  # seconds one request may wait for a drawing the browser is still uploading
# A visitor may draw, think, and press Predict minutes after the live reading read the
# drawing. A drawing's two kept PNGs (background, composite) are ~30 KB together.
BLOB_KEEP = 600.0  # seconds a drawing stays readable after the first event read it
BLOB_LIMIT = 512  # drawings kept at most; the oldest go first
MAX_FILE_BYTES = int(config.number("DIGITREC_MAX_UPLOAD_MB") * 1e6)  # one uploaded file
MAX_PIXELS = int(config.number("DIGITREC_MAX_PIXELS"))  # one drawing (the canvas is 800×800)
MAX_KEPT_BYTES = int(config.number("DIGITREC_DRAWINGS_MAX_MB") * 1e6)  # all kept drawings
MAX_LAYERS = 8  # layer indexes accepted (and dropped) on the upload route
MAX_ID = 64  # characters in a drawing id (the browser's are 11)
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
# The page copies the drawing out of the canvas at this scale (400×400 for 800×800): every
# model reads it as well as the full size (docs/browser.md), at a quarter of the pixels to read back.
CAPTURE_SCALE = 0.5
SHAPE_MESSAGE = "The sketch must be a dict with 'background', 'layers' and 'composite' images (or None)."
_one_waiter = threading.Semaphore(1)


class CheckedEditorData(EditorData):
    """The sketchpad's payload model, refusing a payload of the wrong shape with a clear message."""

    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError:
            raise refuse(SHAPE_MESSAGE) from None


def _size(blobs) -> int:
    parts = [getattr(blobs, "background", None), getattr(blobs, "composite", None), *(getattr(blobs, "layers", None) or [])]
    return sum(len(part) for part in parts if isinstance(part, (bytes, bytearray)))


class RecentDrawings(OrderedDict):
    """The sketchpad's uploaded drawings by id, readable by every event that refers to one.

    The browser uploads a drawing once and several events then name it by id: the sketch's
    change (live prediction), Predict, and the heat map that follows it. Stock gradio drops
    a drawing when the first event reads it, so whichever event came second read an empty
    canvas ("Draw a digit first" for a digit on screen). Here a read only starts a
    ``keep``-second clock; drawings are dropped when that runs out, and beyond ``limit``
    drawings or ``max_bytes`` bytes the oldest go first, so uploads that no event reads
    cannot pile up either.
    """

    def __init__(self, keep: float = BLOB_KEEP, limit: int = BLOB_LIMIT, max_bytes: int = MAX_KEPT_BYTES):
        super().__init__()
        self.keep, self.limit, self.max_bytes = keep, limit, max_bytes
        self.bytes = 0
        self._sizes: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def __setitem__(self, blob_id, blobs):
        with self._lock:
            super().__setitem__(blob_id, blobs)
            self.move_to_end(blob_id)
            self.bytes += _size(blobs) - self._sizes.get(blob_id, 0)
            self._sizes[blob_id] = _size(blobs)
            self._expires.pop(blob_id, None)
            self._drop_old()

    def pop(self, blob_id, *default):
        """Keep the drawing for ``keep`` more seconds instead of dropping it; return it."""
        with self._lock:
            if blob_id in self:
                self._expires.setdefault(blob_id, time.monotonic() + self.keep)
            self._drop_old()
            return self.get(blob_id, *default[:1])

    def discard(self, blob_id) -> None:
        with self._lock:
            self._forget(blob_id)

    def _forget(self, blob_id) -> None:
        super().pop(blob_id, None)
        self._expires.pop(blob_id, None)
        self.bytes -= self._sizes.pop(blob_id, 0)

    def _drop_old(self) -> None:
        now = time.monotonic()
        for blob_id in [i for i, expiry in self._expires.items() if expiry < now]:
            self._forget(blob_id)
        while self and (len(self) > self.limit or self.bytes > self.max_bytes):
            self._forget(next(iter(self)))


class CheckedSketchpad(gr.Sketchpad):
    """A Sketchpad whose uploads are size-checked before they are kept or decoded, and whose read errors are short."""

    data_model = CheckedEditorData

    # Properties, not an __init__ override: gradio builds the front end's props from the
    # signature of __init__, so a (*args, **kwargs) override would hide them all.
    @property
    def blob_storage(self) -> RecentDrawings:
        return self._drawings

    @blob_storage.setter
    def blob_storage(self, drawings) -> None:
        self._drawings = RecentDrawings()
        self._drawings.update(drawings)
        self._refused: OrderedDict[str, str] = OrderedDict()  # drawing id → why its upload was refused

    def get_block_name(self) -> str:
        """Use the stock image editor's front end (gradio would look for a custom "sketchpad" one)."""
        return "imageeditor"

    @server
    def accept_blobs(self, data):
        """Keep one part of a drawing the browser uploads (background or composite), checked first."""
        fields, files = getattr(data, "data", None), getattr(data, "files", None)
        if not isinstance(fields, dict) or not files:
            raise HTTPException(400, "Send one image file with the drawing's id and type.")
        kind, blob_id, index = fields.get("type"), fields.get("id"), fields.get("index")
        if not isinstance(blob_id, str) or not 0 < len(blob_id) <= MAX_ID:
            raise HTTPException(400, f"A drawing id is 1 to {MAX_ID} characters; got {shown(blob_id)}.")
        if kind == "layer":
            if index not in (None, "null", "") and not (str(index).isdigit() and int(index) < MAX_LAYERS):
                raise HTTPException(400, f"Layer index {shown(index)} is out of range (0 to {MAX_LAYERS - 1}).")
            return None  # the app reads the composite: layers are not kept
        if kind not in ("background", "composite"):
            raise HTTPException(400, f"Unknown part {shown(kind)}: send 'background', 'composite' or 'layer'.")
        problem = _problem(files[0][1])
        if problem:
            status, message = problem
            self.blob_storage.discard(blob_id)
            with self.blob_storage._lock:
                self._refused[blob_id] = message
                while len(self._refused) > BLOB_LIMIT:
                    self._refused.popitem(last=False)
            refuse(message, "Upload refused")  # logged in one line
            raise HTTPException(status, message)
        current = self.blob_storage.get(blob_id)
        parts = {"background": getattr(current, "background", None), "composite": getattr(current, "composite", None)}
        parts[kind] = files[0][1]
        self.blob_storage[blob_id] = EditorDataBlobs(layers=[], **parts)
        return None

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.id is not None:
            self._wait_for_blobs(payload.id)
            source = self.blob_storage.get(payload.id)
            if source is None and payload.id in self._refused:
                raise refuse(self._refused[payload.id])
            files = [source.background, source.composite] if source is not None else []
        else:
            if payload.composite is not None:
                payload.layers = []  # the app reads the composite: layers are never decoded
            elif len(payload.layers) > MAX_LAYERS:
                raise refuse(f"A sketch has at most {MAX_LAYERS} layers; got {len(payload.layers)}.")
            files = [payload.background, payload.composite, *payload.layers]
        for file in files:
            if isinstance(file, (bytes, bytearray)):
                _check_header(file)
            elif file is not None and getattr(file, "path", None):
                _check_header(file.path)
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:  # truncated data, odd modes PIL cannot convert, …
            raise refuse(f"Could not read the image ({cut(error, 120)}).") from None

    def _wait_for_blobs(self, blob_id, timeout: float = BLOB_WAIT) -> None:
        """Wait briefly for the browser's upload of the drawing that this request refers to.

        The browser uploads the canvas about a second after the pen lifts and sends only an
        id with the event; a Predict pressed sooner would otherwise read an empty canvas.
        Only one request waits at a time: while one does, others naming a drawing that has
        not arrived are answered at once, so requests for ids never uploaded cannot hold
        the workers (two) and stall every other visitor.
        """
        if blob_id is None or self._arrived(blob_id) or blob_id in self._refused:
            return
        if not _one_waiter.acquire(blocking=False):
            return
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not self._arrived(blob_id) and blob_id not in self._refused:
                time.sleep(0.05)
        finally:
            _one_waiter.release()

    def _arrived(self, blob_id) -> bool:
        blobs = self.blob_storage.get(blob_id)
        return blobs is not None and blobs.composite is not None


def _problem(file) -> tuple[int, str] | None:
    """Return (HTTP status, message) if an uploaded file (path or bytes) must be refused, else None.

    Only the size and the header are read: over MAX_FILE_BYTES, MAX_SIDE or MAX_PIXELS is
    "too large" (413), a file no image reader knows is 400.
    """
    try:
        size = len(file) if isinstance(file, (bytes, bytearray)) else os.path.getsize(file)
    except OSError:
        return 400, "Could not read the image file."
    if size > MAX_FILE_BYTES:
        return 413, f"Image file is too large: {size:,} bytes; the largest accepted is {MAX_FILE_BYTES:,} bytes."
    try:
        with open_header(io.BytesIO(file) if isinstance(file, (bytes, bytearray)) else file) as image:
            width, height = image.size
        check_size(width, height)
    except InvalidImageError as error:
        return 413, str(error)
    except Exception:
        return 400, "Could not read the image: it is not a PNG, JPEG, WebP or other known format."
    if width * height > MAX_PIXELS:
        return 413, (
            f"Image is too large: {width}×{height} pixels; a drawing has at most {MAX_PIXELS / 1e6:.1f} megapixels"
            f" (the canvas is 800×800)."
        )
    return None


def _check_header(file) -> None:
    """Refuse a path or bytes whose size or header is too large or unreadable, before decoding it."""
    problem = _problem(file)
    if problem:
        raise refuse(problem[1])


def check_image_file(file) -> None:
    """Raise InvalidImageError, with the sketchpad's message, for an image file (path or bytes) it would refuse.

    The same size and header check for a drawing that arrives another way (the JSON endpoint).
    """
    problem = _problem(file)
    if problem:
        raise InvalidImageError(problem[1])
