"""Read a whole number drawn on a canvas: "2026" drawn side by side reads as 2026.

    canvas → ink map (the one pipeline's ``to_ink``: alpha, grey, light-on-dark)
      → pieces: connected components of the ink (run-length labelling, numpy only)
      → specks and dots dropped (small beside the number's height)
      → pieces of one digit merged (a two-stroke 4 or 5, a 7's bar: their columns overlap)
      → wide pieces split where digits touch (cuts at minima of the vertical ink profile,
        the best set of cuts chosen by the classifier's confidence and the digits' shapes)
      → each digit's crop read exactly as a single digit (``preprocess``), all in one batch

Every digit gets a reading (``DigitReading``: verdict, digit, candidates, probs, processed)
from one function, ``read_digits``; when ``digitrec.read`` (per-digit verdicts, including
"not_a_digit") exists, that function is the one line to change, and a piece that is not a
digit is shown as "?" in the text.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from .preprocess import INK_THRESHOLD, EmptyDrawingError, preprocess, stroke_width, to_ink, to_uint8
from .registry import check_model_id, get_model

WORK_SIDE_MAX = 900  # the canvas is read at a whole fraction of its size, at most this many pixels wide
MAX_DIGITS = 12  # a drawing with more digits than this is refused: no one draws a longer number
MAX_PIECES = 60  # separate marks beyond this (after specks) are noise, not a number
SPECK = 0.18  # a piece whose longer side is under this fraction of the number's height is a speck or a dot
MERGE_OVERLAP = 0.5  # pieces whose column spans overlap by this fraction of the narrower one are one digit
SPLIT_ASPECT = 0.95  # a piece wider than this × its height may hold several touching digits
MAX_CUTS = 10  # candidate cuts per wide piece (the lowest minima of its ink profile)
UNSURE_MARGIN = 0.25  # a top guess less than this ahead of the second is "unsure"
PAD = 0.15  # white margin around a digit's crop, as a fraction of its longer side (see _crop)
# Scores of a segmentation (log-probabilities and shape penalties; chosen on training writers,
# ``python -m bench.numbers --writers training``): a digit much wider than tall is unlikely,
# a narrow one is a 1, cutting through more than one stroke is unlikely, and each extra
# digit must earn its place.
WIDE_PENALTY = 2.0  # per unit of width/height above WIDE_ASPECT
WIDE_ASPECT = 1.0
NARROW_ASPECT = 0.4  # a digit narrower than this × its height that is not read as 1
NARROW_PENALTY = 2.0
CUT_PENALTY = 0.1  # per stroke width of ink the cut goes through, beyond one stroke
ALONG_STROKE = 2.5  # beyond this many stroke widths of ink the cut runs along a stroke, not across
ALONG_PENALTY = 1.0  # per stroke width beyond ALONG_STROKE
DIGIT_PENALTY = 0.3  # for each digit in a segmentation


class TooManyMarksError(ValueError):
    """Raised for a drawing with more separate marks or digits than a number has."""


@dataclasses.dataclass
class DigitReading:
    """One digit of a number as the model read it (the shape ``digitrec.read`` gives)."""

    verdict: str  # "digit", "unsure" (top two close); later also "not_a_digit", "several"
    digit: int | None  # the top guess (None when the piece is not a digit)
    candidates: list  # [{"digit": d, "probability": p}, …] best first, the top three
    probs: dict  # {"0": p0, …, "9": p9}
    processed: np.ndarray  # the (28, 28) uint8 image the model read

    @property
    def symbol(self) -> str:
        """Return the character this digit shows in the number's text: the digit, or "?"."""
        return str(self.digit) if self.verdict in ("digit", "unsure") and self.digit is not None else "?"


@dataclasses.dataclass
class NumberReading:
    """A number as read: its text, one reading per digit, and each digit's box on the canvas."""

    text: str
    digits: list  # DigitReading per digit, left to right
    boxes: list  # (x0, y0, x1, y1) per digit on the canvas, pixel edges (x1, y1 exclusive)
    crops: list  # each digit's drawing (uint8, ink dark on white): what a correction stores

    def details(self) -> list[dict]:
        """Return the per-digit details as plain data (JSON): digit, verdict, candidates, box."""
        return [
            {
                "position": i,
                "digit": d.symbol,
                "verdict": d.verdict,
                "candidates": d.candidates,
                "box": list(box),
            }
            for i, (d, box) in enumerate(zip(self.digits, self.boxes))
        ]


# ---------------------------------------------------------------- reading


def read_number(image, model_id: str = "cnn") -> NumberReading:
    """Read every digit drawn in ``image``, left to right, with ``model_id``.

    Accepts what ``digitrec.predict`` accepts. Raises EmptyDrawingError when nothing is
    drawn, TooManyMarksError for noise, InvalidImageError for unreadable input and
    UnknownModelError for a bad id (all ValueErrors with short messages).
    """
    check_model_id(model_id)
    try:
        ink = to_ink(image)
    except EmptyDrawingError:
        raise EmptyDrawingError("Draw a number first.") from None
    work, factor = reduce(ink)
    boxes, crops = segment(work, model_id)
    height, width = ink.shape
    boxes = [
        (x0 * factor, y0 * factor, min(x1 * factor, width), min(y1 * factor, height)) for x0, y0, x1, y1 in boxes
    ]
    digits = read_digits(crops, model_id)
    return NumberReading("".join(d.symbol for d in digits), digits, boxes, [to_uint8(1.0 - c) for c in crops])


def reduce(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the ink map shrunk by a whole factor to at most WORK_SIDE_MAX on its longer side, and the factor.

    A digit on the wide canvas is ~300 px tall, and the pipeline brings it down to 80 px
    before anything else: reading the canvas at half size loses nothing and costs a
    quarter. Each block keeps its mean ink (PIL's reduce, in C): one full pixel of ink
    in a block of four is still over INK_THRESHOLD, so a thin stroke stays joined.
    """
    factor = max(1, -(-max(ink.shape) // WORK_SIDE_MAX))
    if factor == 1:
        return ink, 1
    return np.asarray(Image.fromarray(ink, mode="F").reduce(factor), dtype=np.float32), factor


def read_digits(crops: list[np.ndarray], model_id: str) -> list[DigitReading]:
    """Read each digit's crop (an ink map) as a single digit, in one model call.

    This is the one place a digit's reading is made: when ``digitrec.read`` exists this
    becomes ``[digitrec.read(to_uint8(1.0 - c), model_id) for c in crops]``.
    """
    x = np.stack([preprocess(_paper(c)) for c in crops])
    probs = _probabilities(x, model_id)
    return [reading(p, to_uint8(xi)) for p, xi in zip(probs, x)]


def reading(p: np.ndarray, processed: np.ndarray) -> DigitReading:
    """Return the reading of one digit from its ten probabilities: "unsure" when the top two are close."""
    order = np.argsort(-p, kind="stable")
    top, second = float(p[order[0]]), float(p[order[1]])
    return DigitReading(
        verdict="unsure" if top - second < UNSURE_MARGIN else "digit",
        digit=int(order[0]),
        candidates=[{"digit": int(d), "probability": round(float(p[d]), 4)} for d in order[:3]],
        probs={str(d): float(p[d]) for d in range(10)},
        processed=processed,
    )


def _probabilities(x: np.ndarray, model_id: str) -> np.ndarray:
    """Return (N, 10) probabilities for N preprocessed images, in one call of the model."""
    p = np.asarray(get_model(model_id).predict_proba(np.asarray(x, np.float32)), dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def _paper(ink: np.ndarray) -> np.ndarray:
    """Return an ink crop as the white-paper image the pipeline reads (ink dark), with a white margin.

    The margin keeps the pipeline's light-on-dark check (a border mostly ink) from
    inverting a tight crop, such as a 1 whose stroke fills its box's width.
    """
    pad = max(4, int(PAD * max(ink.shape)))
    return to_uint8(1.0 - np.pad(ink, pad))


# ---------------------------------------------------------------- pieces of ink


def components(drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Label the 8-connected pieces of a binary image by its horizontal runs of ink.

    Returns (run rows, run starts, run ends (exclusive), run labels 0..n-1, n). Runs in
    neighbouring rows that touch (diagonally too) are joined by a vectorised union-find
    (hook to the smaller root, then pointer jumping), so a canvas costs milliseconds.
    """
    height, width = drawn.shape
    edges = np.diff(np.pad(drawn, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, columns = np.nonzero(edges)
    rising = edges[rows, columns] == 1  # a run starts; the next change in its row ends it
    rows, starts, ends = rows[rising], columns[rising], columns[~rising]
    count = rows.size
    if count == 0:
        return rows, starts, ends, rows, 0
    stride = width + 2
    start_keys = rows.astype(np.int64) * stride + starts
    end_keys = rows.astype(np.int64) * stride + ends
    below = (rows.astype(np.int64) + 1) * stride
    # Runs of the next row touching run i: end_j >= start_i and start_j <= end_i (8-connected).
    first = np.searchsorted(end_keys, below + starts, side="left")
    last = np.searchsorted(start_keys, below + ends, side="right")
    touching = np.maximum(last - first, 0)
    a = np.repeat(np.arange(count), touching)
    b = np.arange(touching.sum()) - np.repeat(np.cumsum(touching) - touching, touching) + np.repeat(first, touching)
    labels = np.arange(count)
    while a.size:
        la, lb = labels[a], labels[b]
        apart = la != lb
        if not apart.any():
            break
        a, b, la, lb = a[apart], b[apart], la[apart], lb[apart]
        low = np.minimum(la, lb)
        np.minimum.at(labels, la, low)
        np.minimum.at(labels, lb, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
    _, labels = np.unique(labels, return_inverse=True)
    return rows, starts, ends, labels, int(labels.max()) + 1


@dataclasses.dataclass
class Piece:
    """A set of ink runs (one or more components) with its box on the canvas."""

    runs: np.ndarray  # indexes into the run arrays
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def pieces_of(rows, starts, ends, labels, count) -> list[Piece]:
    """Return one Piece per component, with its bounding box."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    x0 = np.full(count, np.iinfo(np.int64).max)
    x1 = np.zeros(count, np.int64)
    y0 = np.full(count, np.iinfo(np.int64).max)
    y1 = np.zeros(count, np.int64)
    np.minimum.at(x0, labels, starts)
    np.maximum.at(x1, labels, ends)
    np.minimum.at(y0, labels, rows)
    np.maximum.at(y1, labels, rows + 1)
    return [
        Piece(order[bounds[i] : bounds[i + 1]], int(x0[i]), int(y0[i]), int(x1[i]), int(y1[i])) for i in range(count)
    ]


def drop_specks(pieces: list[Piece]) -> list[Piece]:
    """Drop dots and specks: pieces small beside the number's height (the median of its tall pieces)."""
    if not pieces:
        return pieces
    heights = np.array([p.height for p in pieces], dtype=np.float64)
    tall = heights[heights >= 0.5 * heights.max()]
    reference = float(np.median(tall))
    return [p for p in pieces if max(p.width, p.height) >= SPECK * reference]


def merge(a: Piece, b: Piece) -> Piece:
    return Piece(np.concatenate([a.runs, b.runs]), min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1))


def merge_pieces(pieces: list[Piece]) -> list[Piece]:
    """Merge pieces of one digit: pieces whose column spans overlap by MERGE_OVERLAP of the narrower one.

    A 4 or 5 drawn in two strokes, a 7 with a separate bar, a stroke that did not quite
    join: one digit's pieces stand in the same columns, while neighbouring digits stand
    side by side. Repeated until nothing more merges, so a digit in three pieces is one.
    """
    pieces = sorted(pieces, key=lambda p: p.x0)
    merged = True
    while merged:
        merged = False
        for i in range(len(pieces)):
            for j in range(i + 1, len(pieces)):
                a, b = pieces[i], pieces[j]
                overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
                if overlap >= MERGE_OVERLAP * min(a.width, b.width):
                    pieces[i] = merge(a, b)
                    del pieces[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(pieces, key=lambda p: p.x0)


def piece_ink(piece: Piece, ink: np.ndarray, rows, starts, ends) -> np.ndarray:
    """Return the ink of one piece inside its box: only its own runs, so a neighbour's overhang stays out."""
    mask = np.zeros((piece.height, piece.width + 1), np.int16)
    r = rows[piece.runs] - piece.y0
    np.add.at(mask, (r, starts[piece.runs] - piece.x0), 1)
    np.add.at(mask, (r, ends[piece.runs] - piece.x0), -1)
    inside = np.cumsum(mask, axis=1)[:, :-1] > 0
    box = ink[piece.y0 : piece.y1, piece.x0 : piece.x1]
    return np.where(inside, box, 0.0).astype(np.float32)


# ---------------------------------------------------------------- touching digits


def segment(ink: np.ndarray, model_id: str) -> tuple[list[tuple], list[np.ndarray]]:
    """Return (boxes, crops): each digit's box on the canvas and its ink, left to right."""
    drawn = ink >= INK_THRESHOLD
    rows, starts, ends, labels, count = components(drawn)
    pieces = drop_specks(pieces_of(rows, starts, ends, labels, count))
    if not pieces:
        raise EmptyDrawingError("Draw a number first.")
    if len(pieces) > MAX_PIECES:
        raise TooManyMarksError(
            f"Found {len(pieces)} separate marks; draw a number of at most {MAX_DIGITS} digits on a clean canvas."
        )
    pieces = merge_pieces(pieces)
    inks = [piece_ink(p, ink, rows, starts, ends) for p in pieces]
    wide = [i for i, p in enumerate(pieces) if p.width > SPLIT_ASPECT * p.height]
    splits = split_touching([inks[i] for i in wide], model_id) if wide else []
    boxes, crops = [], []
    cuts_of = dict(zip(wide, splits))
    for i, (piece, piece_crop) in enumerate(zip(pieces, inks)):
        bounds = cuts_of.get(i, [0, piece.width])
        for left, right in zip(bounds[:-1], bounds[1:]):
            part = piece_crop[:, left:right]
            filled = np.flatnonzero((part >= INK_THRESHOLD).any(axis=1))
            columns = np.flatnonzero((part >= INK_THRESHOLD).any(axis=0))
            if filled.size == 0:
                continue
            part = part[filled[0] : filled[-1] + 1, columns[0] : columns[-1] + 1]
            x0 = piece.x0 + left + int(columns[0])
            y0 = piece.y0 + int(filled[0])
            boxes.append((x0, y0, x0 + part.shape[1], y0 + part.shape[0]))
            crops.append(part)
    if len(crops) > MAX_DIGITS:
        raise TooManyMarksError(f"Found {len(crops)} digits; a number here has at most {MAX_DIGITS}.")
    return boxes, crops


def profile_minima(piece_crop: np.ndarray, stroke: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (columns, ink there in stroke widths) of the lowest minima of a piece's vertical ink profile."""
    height, width = piece_crop.shape
    column_ink = (piece_crop >= INK_THRESHOLD).sum(axis=0).astype(np.float64)
    window = max(1, int(stroke / 2))
    smooth = np.convolve(column_ink, np.ones(window) / window, mode="same")
    margin = max(2, int(0.12 * height))
    inner = np.arange(margin, width - margin)
    if inner.size == 0:
        return inner, inner.astype(np.float64)
    left, here, right = smooth[inner - 1], smooth[inner], smooth[np.minimum(inner + 1, width - 1)]
    minima = inner[(here <= left) & (here < right)]
    if minima.size == 0:
        return minima, minima.astype(np.float64)
    minima = minima[np.argsort(smooth[minima], kind="stable")]
    kept = []
    for column in minima:  # the lowest first; one cut per stretch of a tenth of the height
        if all(abs(column - k) > 0.1 * height for k in kept):
            kept.append(int(column))
        if len(kept) == MAX_CUTS:
            break
    kept = np.array(sorted(kept), dtype=np.int64)
    return kept, smooth[kept] / max(stroke, 1.0)


def split_touching(piece_crops: list[np.ndarray], model_id: str) -> list[list[int]]:
    """Return, for each wide piece, the column bounds of its digits ([0, …, width]).

    Every stretch between two candidate cuts is a possible digit; all are read in one
    batch, and the best chain of stretches (dynamic programming) maximises the sum of
    log-probabilities of their top guesses, less the shape and cut penalties above.
    """
    plans = []  # per piece: (bounds, cut costs, spans)
    images = []
    shapes = []  # (piece index, i, j, aspect)
    for index, crop in enumerate(piece_crops):
        drawn = crop >= INK_THRESHOLD
        stroke = max(stroke_width(drawn), 1.0)
        cuts, ink_there = profile_minima(crop, stroke)
        bounds = [0, *cuts.tolist(), crop.shape[1]]
        cost = CUT_PENALTY * np.maximum(ink_there - 1.0, 0.0) + ALONG_PENALTY * np.maximum(ink_there - ALONG_STROKE, 0.0)
        costs = [0.0, *cost.tolist(), 0.0]
        spans = []
        for i in range(len(bounds) - 1):
            for j in range(i + 1, len(bounds)):
                part = drawn[:, bounds[i] : bounds[j]]
                filled = np.flatnonzero(part.any(axis=1))
                if filled.size == 0:
                    continue
                if (i, j) != (0, len(bounds) - 1) and bounds[j] - bounds[i] > 1.6 * crop.shape[0]:
                    continue  # far wider than any digit: not a hypothesis worth a model call
                columns = np.flatnonzero(part.any(axis=0))
                aspect = (columns[-1] - columns[0] + 1) / (filled[-1] - filled[0] + 1)
                spans.append((i, j))
                shapes.append((index, i, j, aspect))
                images.append(preprocess(_paper(crop[:, bounds[i] : bounds[j]])))
        plans.append((bounds, costs, spans))
    p = _probabilities(np.stack(images), model_id)
    scores = {}
    for (index, i, j, aspect), probs in zip(shapes, p):
        top = int(np.argmax(probs))
        score = float(np.log(max(probs[top], 1e-9))) - DIGIT_PENALTY
        score -= WIDE_PENALTY * max(0.0, aspect - WIDE_ASPECT)
        if aspect < NARROW_ASPECT and top != 1:
            score -= NARROW_PENALTY
        scores[index, i, j] = score
    result = []
    for index, (bounds, costs, spans) in enumerate(plans):
        ends = len(bounds) - 1
        best = [-np.inf] * (ends + 1)
        back = [0] * (ends + 1)
        best[0] = 0.0
        for j in range(1, ends + 1):
            for i in range(j):
                score = scores.get((index, i, j))
                if score is None or best[i] == -np.inf:
                    continue
                total = best[i] + score - costs[i]
                if total > best[j]:
                    best[j], back[j] = total, i
        chain, j = [ends], ends
        while j > 0:
            j = back[j]
            chain.append(j)
        result.append([bounds[k] for k in reversed(chain)])
    return result
