"""Read a drawing sent as text (base64 PNG or data URL) and answer in plain JSON: for scripts and agents.

The JSON endpoint (``/read_digit``) and the MCP tool call ``read_digit``; it goes through
the one pipeline (``digitrec.read``, which ``digitrec.predict`` shares) with the same limits as the sketchpad's uploads
(``digitrec.canvas``: bytes, sides, pixels), checked before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np
from PIL import Image

from .canvas import MAX_FILE_BYTES, check_image_file
from .messages import shown
from .preprocess import InvalidImageError
from .read import read

# Base64 of MAX_FILE_BYTES, plus room for a data URL's prefix and line breaks.
MAX_TEXT = (MAX_FILE_BYTES + 2) // 3 * 4 + 4096
_DATA_URL = re.compile(r"^data:image/[\w.+-]+(;[\w=.+-]+)*;base64,", re.IGNORECASE)


def decode_image(text) -> bytes:
    """Return the image file's bytes from a base64 string or a ``data:image/...;base64,`` URL.

    Raises InvalidImageError with a short message for anything else, for text longer than
    the largest accepted file could make (before decoding it), or for a file the sketchpad's
    upload route would refuse (bytes, sides, pixels: its header only, before the image is decoded).
    """
    if not isinstance(text, str):
        raise InvalidImageError(
            f"The image must be a string: a base64-encoded PNG or a data URL; got {type(text).__name__}."
        )
    if len(text) > MAX_TEXT:
        raise InvalidImageError(
            f"Image is too large: {len(text):,} characters of base64; the largest accepted file is "
            f"{MAX_FILE_BYTES:,} bytes."
        )
    text = text.strip()
    if text.startswith("data:"):
        match = _DATA_URL.match(text)
        if not match:
            raise InvalidImageError(f"Unsupported data URL {shown(text)}; send data:image/png;base64,....")
        text = text[match.end():]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImageError("The image is not valid base64; send a base64-encoded PNG or a data URL.") from None
    if not data:
        raise InvalidImageError("The image is empty; send a base64-encoded PNG or a data URL.")
    check_image_file(data)
    return data


def png_data_url(image: np.ndarray) -> str:
    """Return a uint8 image as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def read_digit(image, model="cnn") -> dict:
    """Read the digit in a base64 drawing; return {"digit", "confidence", "probabilities", "model", "image", "verdict", "headline", "candidates"}.

    ``probabilities`` lists the ten digits' probabilities in order (index = digit);
    ``image`` is the 28×28 image the model read (white ink on black) as a PNG data URL;
    ``verdict`` is "digit", "unsure", "not_a_digit" or "several" (``digitrec.read``), with its
    ``headline`` for people and the ``candidates`` it hesitates between.
    Raises EmptyDrawingError, InvalidImageError (also for a file over the sketchpad's
    limits) or UnknownModelError, each with a short message.
    """
    reading = read(decode_image(image), model)
    probabilities = [reading.probs[str(digit)] for digit in range(10)]
    digit = int(np.argmax(probabilities))
    return {
        "digit": digit,
        "confidence": probabilities[digit],
        "probabilities": probabilities,
        "model": model,
        "image": png_data_url(reading.processed),
        "verdict": reading.verdict,
        "headline": reading.headline(),
        "candidates": reading.candidates,
    }
