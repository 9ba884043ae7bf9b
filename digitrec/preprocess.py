"""Turn whatever a visitor or a script sends into the 28×28 image a model reads.

There is exactly one pipeline, used by the app, the API, training and the benchmarks:

    image (sketchpad dict, PIL image, numpy array, path)
      → ink map: composite onto white honouring alpha, greyscale, invert (ink = 1)
      → crop to the ink's bounding box at full resolution
      → normalise the stroke width (a fat brush on a small digit, or a hairline)
      → scale so the longer side is 20 px, keeping the aspect ratio, anti-aliased
      → paste into 28×28 and shift so the centre of mass sits at the centre

which is how MNIST itself was made (LeCun et al.), plus the stroke-width step.
The original site's shortcut is kept as ``method="legacy"`` for comparison.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, UnidentifiedImageError

from .messages import cut

SIZE = 28  # side of the image the models read
BOX = 20  # longer side of the digit inside it, as in MNIST
CENTRE = 14.0  # where MNIST puts the centre of mass (row, column), measured on x_train
INK_THRESHOLD = 0.2  # ink below this (faint anti-aliasing, JPEG noise) does not count as drawn
MAX_SIDE = 4096  # larger images are refused before they are decoded
WORK_SIDE = 80  # the crop is brought to this size for stroke-width normalisation (4 × BOX)
TARGET_STROKE = 8.0  # stroke width, in WORK_SIDE pixels, of the median MNIST test digit (7.8)
METHODS = ("mnist", "plain", "legacy")

Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE * 4  # PIL's own bomb check stays as a backstop


class InvalidImageError(ValueError):
    """Raised for input that is not an image the pipeline can read."""


class EmptyDrawingError(ValueError):
    """Raised when there is nothing drawn: None, an all-white or all-transparent canvas."""

    def __init__(self, message: str = "Draw a digit first."):
        super().__init__(message)


def preprocess(image, method: str = "mnist") -> np.ndarray:
    """Return the (28, 28) float32 image in [0, 1], ink = 1, that a model reads.

    ``method`` is "mnist" (the pipeline above), "plain" (the same without stroke-width
    normalisation) or "legacy" (the original site's resize-and-stretch).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown preprocessing method {method!r}; valid: {', '.join(METHODS)}.")
    if method == "mnist":
        return preprocess_with_view(image)[0]
    ink = to_ink(image)
    if method == "legacy":
        return legacy_preprocess(ink)
    return centre_by_mass(fit_box(crop_to_ink(ink), BOX))


def preprocess_with_view(image) -> tuple[np.ndarray, np.ndarray]:
    """Return the "mnist" pipeline's 28×28 image and the WORK_SIDE view of the whole drawing it was made from.

    The view (the ink's bounding box scaled so its longer side is WORK_SIDE px, before the
    stroke width is touched) lets a reader look at the drawing's layout — one digit or several
    side by side — without reading the image a second time.
    """
    return preprocess_ink(to_ink(image))


def preprocess_ink(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``preprocess_with_view`` of an ink map already read (ink = 1), so a caller holding one skips reading it again.

    ``digitrec.read_number`` cuts a canvas's ink into many candidate digits; each goes through
    the same steps as a drawing of one digit, from the crop on.
    """
    crop = crop_to_ink(ink)
    view = fit_box(crop, WORK_SIDE)
    return centre_by_mass(normalise_stroke(crop, view)), view


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Convert a [0, 1] float image to uint8, white ink on black as MNIST."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- reading the input


def open_image(image) -> Image.Image | np.ndarray:
    """Resolve any accepted input to a PIL image or a numpy array, still unconverted.

    A sketchpad dict gives its composite (or its flattened layers), a path or PNG bytes
    are opened; None raises EmptyDrawingError, anything else InvalidImageError.
    """
    if image is None:
        raise EmptyDrawingError()
    if isinstance(image, dict):
        image = _composite_of(image)
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    elif isinstance(image, (bytes, bytearray)):
        image = _open(io.BytesIO(image))
    if not isinstance(image, (Image.Image, np.ndarray)):
        raise InvalidImageError(
            f"Unsupported image type {type(image).__name__}; send a PNG, a PIL image or a numpy array."
        )
    return image


def read_ink(image) -> np.ndarray:
    """Read any accepted input as a float32 (H, W) ink map in [0, 1], as it is: not yet judged empty or inverted."""
    image = open_image(image)
    return _ink_from_pil(image) if isinstance(image, Image.Image) else _ink_from_array(image)


def to_ink(image) -> np.ndarray:
    """Read any accepted input as a float32 (H, W) ink map in [0, 1]; raise on empty or bad input."""
    ink = read_ink(image)
    if ink.size == 0 or float(ink.max()) < INK_THRESHOLD:
        raise EmptyDrawingError()
    if _border_is_ink(ink):  # white digit on black, as in MNIST itself: read it the same way
        ink = 1.0 - ink
        if float(ink.max()) < INK_THRESHOLD:
            raise EmptyDrawingError()
    return ink


def _composite_of(value: dict):
    """Return the composite of a sketchpad value, or flatten its background and layers."""
    unknown = set(value) - {"background", "layers", "composite", "id"}
    if unknown:
        raise InvalidImageError(
            "A sketch is a dict with 'background', 'layers' and 'composite'; "
            f"unexpected key(s): {', '.join(sorted(map(str, unknown)))}."
        )
    if value.get("composite") is not None:
        return value["composite"]
    layers = value.get("layers") or []
    if not isinstance(layers, (list, tuple)):
        raise InvalidImageError("The sketch's 'layers' must be a list of images.")
    parts = [p for p in [value.get("background"), *layers] if p is not None]
    if not parts:
        raise EmptyDrawingError()
    inks = [to_ink_or_none(p) for p in parts]
    inks = [i for i in inks if i is not None]
    if not inks:
        raise EmptyDrawingError()
    shape = inks[0].shape
    if any(i.shape != shape for i in inks):
        raise InvalidImageError("The sketch's background and layers differ in size.")
    return 1.0 - np.max(np.stack(inks), axis=0).astype(np.float32)  # back to white paper


def to_ink_or_none(image) -> np.ndarray | None:
    """Return the ink map of one layer, or None when the layer is empty."""
    try:
        return to_ink(image)
    except EmptyDrawingError:
        return None


def _open(source) -> Image.Image:
    """Open an image file lazily, refusing oversized or unreadable ones before decoding."""
    try:
        image = open_header(source)
        check_size(*image.size)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InvalidImageError(f"Could not read the image ({cut(error, 120)}).") from None
    return image


def open_header(source) -> Image.Image:
    """Open an image lazily (only its header is read), calling an image too large for PIL too large.

    PIL refuses a header over twice MAX_IMAGE_PIXELS (a 20000×20000 PNG) with its own
    DecompressionBombError before the size can be checked; that becomes the same "too
    large" answer as any other oversized image, with the size read from a PNG's header.
    """
    try:
        return Image.open(source)
    except Image.DecompressionBombError:
        size = _png_size(source)
        shown = f"{size[0]}×{size[1]} pixels" if size else "over 100 megapixels"
        raise InvalidImageError(_too_large(shown)) from None


def _png_size(source) -> tuple[int, int] | None:
    """Return (width, height) from a PNG's IHDR chunk, or None for anything else."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            head = source.read(24)
        else:
            with open(source, "rb") as file:
                head = file.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _too_large(shown: str) -> str:
    return f"Image is too large: {shown}; the largest accepted is {MAX_SIDE}×{MAX_SIDE}."


def check_size(width: int, height: int) -> None:
    """Refuse an image over MAX_SIDE on either side, before any pixel is converted."""
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InvalidImageError(_too_large(f"{width}×{height} pixels"))


def _ink_from_pil(image: Image.Image) -> np.ndarray:
    """Composite a PIL image of any mode onto white and return its ink map."""
    check_size(*image.size)
    try:
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
            grey = np.asarray(image, dtype=np.float64)
            top = 65535.0 if grey.max() > 255 else 255.0
            return (1.0 - np.clip(grey / top, 0, 1)).astype(np.float32)
        if image.mode == "F":
            return _ink_from_array(np.asarray(image, dtype=np.float32))
        has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
        rgba = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError, SyntaxError) as error:
        raise InvalidImageError(f"Could not read the image ({cut(error, 120)}).") from None
    return _ink_from_array(rgba)


def _ink_from_array(array: np.ndarray) -> np.ndarray:
    """Return the ink map of an (H, W), (H, W, 1|3|4) array of uint8, uint16, bool or float."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4); got {array.shape}."
        )
    check_size(array.shape[1], array.shape[0])
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"Image has no pixels (shape {array.shape}).")
    if array.dtype == np.uint8 and array.ndim == 3:
        # The common case (a canvas): let PIL composite and convert in C, ~10× faster than floats.
        # ink = alpha × (1 − luminance), the composite onto white paper; PIL's "L" ignores alpha.
        image = Image.fromarray(np.ascontiguousarray(array), "RGBA" if array.shape[2] == 4 else "RGB")
        ink = (255 - np.asarray(image.convert("L"))).astype(np.float32) * np.float32(1 / 255)
        if array.shape[2] == 4:
            ink *= array[:, :, 3].astype(np.float32) * np.float32(1 / 255)
        return ink
    values = _unit_scale(array)
    if values.ndim == 2:
        return 1.0 - values
    luminance = values[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if values.shape[2] == 4:  # composite onto white: ink = alpha × (1 − luminance)
        return values[:, :, 3] * (1.0 - luminance)
    return 1.0 - luminance


def _unit_scale(array: np.ndarray) -> np.ndarray:
    """Scale pixel values to float32 [0, 1] from their dtype's range."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:  # 16-bit, or 8-bit values stored in 16 bits (as PIL's I;16 path reads them)
        return array.astype(np.float32) / (65535.0 if int(array.max()) > 255 else 255.0)
    if np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise InvalidImageError("Image contains NaN or infinite values.")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 255:
            raise InvalidImageError(f"Pixel values must lie in [0, 1] or [0, 255]; got {low:g}..{high:g}.")
        return values / 255.0 if high > 1.0 else values
    raise InvalidImageError(f"Unsupported pixel type {array.dtype}.")


def _border_is_ink(ink: np.ndarray) -> bool:
    """Tell whether the image is light-on-dark: its border is mostly ink."""
    if min(ink.shape) < 8:
        return False
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    return float(np.median(border)) > 0.5


# ---------------------------------------------------------------- geometry


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Crop to the bounding box of the pixels that count as ink, at full resolution."""
    drawn = ink >= INK_THRESHOLD
    rows = np.flatnonzero(drawn.any(axis=1))
    cols = np.flatnonzero(drawn.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError()
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` px, keeping the aspect ratio, with anti-aliasing."""
    height, width = crop.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, resample)
    digit = np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)
    top = float(digit.max())
    return digit / top if top > 0 else digit  # full contrast, as MNIST's strokes


def stroke_width(binary: np.ndarray) -> float:
    """Estimate the stroke width of a binary drawing as 2 × area / perimeter.

    A stroke of length L and width w has area L·w and a perimeter of about 2·L,
    so the ratio gives w whatever the digit's shape.
    """
    area = int(binary.sum())
    if area == 0:
        return 0.0
    padded = np.pad(binary, 1)
    inner = padded[1:-1, 1:-1]
    edges = (
        (inner != padded[:-2, 1:-1]).sum()
        + (inner != padded[2:, 1:-1]).sum()
        + (inner != padded[1:-1, :-2]).sum()
        + (inner != padded[1:-1, 2:]).sum()
    )
    return 2.0 * area / max(edges / 2.0, 1.0)


def normalise_stroke(crop: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """Bring the stroke width to MNIST's before the final 20 px scaling.

    People draw a small digit with a fat brush, or a large one with a hairline; MNIST's
    strokes are about 2 px wide in the 20 px box. The crop is first scaled to a
    WORK_SIDE box, its stroke width measured, then thinned (min filter) or thickened
    (max filter) to TARGET_STROKE before it is brought down to 20 px. ``work`` is that
    WORK_SIDE image when the caller has it already.
    """
    work = fit_box(crop, WORK_SIDE) if work is None else work
    width = stroke_width(work >= 0.5)
    steps = int(round((TARGET_STROKE - width) / 2.0))  # a 3×3 filter changes the width by ~2 px
    steps = max(-4, min(4, steps))
    image = Image.fromarray(work, mode="F")
    for _ in range(abs(steps)):
        thinned = image.filter(ImageFilter.MinFilter(3) if steps < 0 else ImageFilter.MaxFilter(3))
        if steps < 0 and float(np.asarray(thinned).max()) < 0.5:
            break  # never erase the digit
        image = thinned
    work = np.asarray(image, dtype=np.float32)
    if not (work >= INK_THRESHOLD).any():
        work = fit_box(crop, WORK_SIDE)
    return fit_box(crop_to_ink(work), BOX)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into 28×28 with the centre of mass at MNIST's centre (integer shift, kept in frame)."""
    height, width = digit.shape
    mass = float(digit.sum())
    rows, cols = np.indices(digit.shape)
    centre_row = float((rows * digit).sum()) / mass
    centre_col = float((cols * digit).sum()) / mass
    top = int(round(CENTRE - centre_row))
    left = int(round(CENTRE - centre_col))
    top = min(max(top, 0), SIZE - height)
    left = min(max(left, 0), SIZE - width)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + height, left : left + width] = digit
    return out


def legacy_preprocess(ink: np.ndarray) -> np.ndarray:
    """Reproduce the original site: resize the whole canvas to 28×28, strip blank, stretch to 20×20, pad."""
    paper = Image.fromarray(to_uint8(1.0 - ink), mode="L")
    small = np.asarray(paper.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float32)
    small = (255.0 - small) / 255.0
    rows = np.flatnonzero(small.any(axis=1))
    cols = np.flatnonzero(small.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError()
    stripped = small[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    stretched = Image.fromarray(stripped, mode="F").resize((BOX, BOX), Image.Resampling.BILINEAR)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    pad = (SIZE - BOX) // 2
    out[pad : pad + BOX, pad : pad + BOX] = np.clip(np.asarray(stretched), 0.0, 1.0)
    return out
