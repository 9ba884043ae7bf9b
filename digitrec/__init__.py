"""digitrec: read handwritten digits drawn on a canvas with one of three models."""

from .base import ChecksumError, Model
from .preprocess import EmptyDrawingError, InvalidImageError
from .read import Reading, read
from .registry import MODEL_IDS, MODELS, UnknownModelError, get_model, predict
from .number import DigitReading, NumberReading, TooManyMarksError, read_number

__all__ = [
    "MODELS",
    "MODEL_IDS",
    "ChecksumError",
    "DigitReading",
    "EmptyDrawingError",
    "InvalidImageError",
    "Model",
    "NumberReading",
    "Reading",
    "TooManyMarksError",
    "UnknownModelError",
    "get_model",
    "predict",
    "read",
    "read_number",
]
