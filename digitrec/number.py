"""Read a whole number drawn on a canvas: "2026" drawn side by side reads as 2026.

    canvas → ink map (the one pipeline's ``to_ink``: alpha, grey, light-on-dark)
      → pieces: connected components of the ink (run-length labelling, numpy only)
      → specks and dots dropped (small beside the number's height)
      → pieces of one digit merged (a two-stroke 4 or 5, a 7's bar: their columns overlap;
        a short stroke joins the digit it stands over)
      → every piece read whole, exactly as a single digit (``preprocess_ink``), in one batch
      → a wide piece whose whole reading leaves room for doubt is split where digits touch:
        candidate cuts are seams, the paths from top to bottom crossing the least ink (they
        bend around a neighbour's overhang), and the best set of cuts is chosen by the
        classifier's confidence in each stretch and the stretches' shapes (a second batch)

Every digit gets a reading (``DigitReading``: verdict, digit, candidates, probs, processed)
from one function, ``reading``, given the probabilities and 28×28 image the segmentation
already has, and the verdict the model's verdict file (``digitrec.read.Verdicts``) decides
from the same forward pass — "digit", "unsure" or "not_a_digit", as ``digitrec.read``
judges a single digit; a piece that is not a digit is shown as "?" in the text ("2?6").
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from .base import CLASSES, digits_only
from .preprocess import INK_THRESHOLD, EmptyDrawingError, preprocess_ink, stroke_width, to_ink, to_uint8
from .read import verdicts_for
from .registry import check_model_id, get_model

WORK_SIDE_MAX = 900  # the canvas is read at a whole fraction of its size, at most this many pixels wide
MAX_DIGITS = 12  # a drawing with more digits than this is refused: no one draws a longer number
MAX_PIECES = 60  # separate marks beyond this (after specks) are noise, not a number
SPECK = 0.18  # a piece whose longer side is under this fraction of the number's height is a speck or a dot
MERGE_OVERLAP = 0.5  # pieces whose column spans overlap by this fraction of the narrower one are one digit
SPLIT_ASPECT = 0.6  # a piece wider than this × its height may hold several touching digits (a "41" is 0.67)…
SPLIT_HEIGHT = 0.6  # …when it is at least this fraction of the number's height (not a 5's flag)
SHORT_STROKE = 0.5  # a piece shorter than this fraction of the number's height is a stroke of a digit
JOIN_GAP = 0.1  # neighbouring pieces closer than this fraction of the number's height, one of them…
JOIN_HEIGHT = 0.75  # …shorter than this fraction, may be one digit drawn in two pieces (a 4's stem apart from its bar)
MAX_CUTS = 10  # candidate cuts per wide piece (the cheapest seams)
MAX_STRETCH = 1.6  # a stretch wider than this × the piece's height is never one digit
SEAM_STEP = 0.02  # cost of a seam moving one column sideways, in stroke widths of ink crossed
UNSURE_MARGIN = 0.25  # a top guess less than this ahead of the second is "unsure"
# Scores of a segmentation (log-probabilities and shape penalties; chosen on training writers,
# ``python -m bench.numbers --writers training``): a digit much wider than its kind usually is
# is two digits touching, a narrow one is a 1, cutting through more than one stroke is
# unlikely, and each extra digit must earn its place.
# The usual width/height of each digit 0–9 (mean and spread of its logarithm), measured on
# the training writers of both sources (pendigits 1–24, UNIPEN's training institutions) by
# ``python -m bench.numbers --usual-widths``.
ASPECT_LOG_MEAN = np.array([-0.07, -0.93, -0.07, -0.31, -0.38, -0.13, -0.46, -0.24, -0.4, -0.41])
ASPECT_LOG_SPREAD = np.array([0.25, 0.44, 0.24, 0.23, 0.26, 0.24, 0.22, 0.26, 0.24, 0.21])
ASPECT_SLACK = 1.0  # spreads above the usual width before a stretch is penalised
ASPECT_PENALTY = 0.5  # per squared spread beyond the slack
WRITER_WIDEN = 0.3  # at most this much (log of width/height) wider than usual for a writer who draws wide
NARROW_ASPECT = 0.4  # a digit narrower than this × its height that is not read as 1
NARROW_PENALTY = 2.0
SHORT_STRETCH = 0.7  # a stretch cut from a piece, shorter than this × the number's height, is a broken-off hook or an arc…
SHORT_PENALTY = 2.0  # …not a digit
CUT_PENALTY = 0.5  # per stroke width of ink the cut goes through, beyond one stroke
ALONG_STROKE = 2.5  # beyond this many stroke widths of ink the cut runs along a stroke, not across
ALONG_PENALTY = 1.0  # per stroke width beyond ALONG_STROKE
DIGIT_PENALTY = 0.3  # for each digit in a segmentation
NON_DIGIT_PENALTY = 3.0  # more for a whole piece read as one non-digit: people draw numbers here, and touching digits read as "not a digit" are cut
NON_DIGIT_WIDE = 5.0  # …and this much per unit of width/height beyond 1: a mark as wide as two digits that reads as none is digits run together


class TooManyMarksError(ValueError):
    """Raised for a drawing with more separate marks or digits than a number has."""


@dataclasses.dataclass
class DigitReading:
    """One digit of a number as the model read it (the shape ``digitrec.read`` gives)."""

    verdict: str  # "digit", "unsure" or "not_a_digit", as ``digitrec.read`` judges one digit
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
    found = segment(work, model_id)
    height, width = ink.shape
    boxes = [
        (x0 * factor, y0 * factor, min(x1 * factor, width), min(y1 * factor, height)) for x0, y0, x1, y1 in found.boxes
    ]
    probs = np.asarray(digits_only(found.outputs), np.float64)  # the ten digits' probabilities, as predict gives them
    verdicts = verdicts_for(model_id)
    if verdicts is None:
        decided = [None] * len(probs)
    else:  # each digit is judged as ``digitrec.read`` judges a single digit, from the batch that read it
        decided, _ = verdicts.decide(probs, found.features, np.ones(len(probs)))
    digits = [reading(p, to_uint8(x), verdict) for p, x, verdict in zip(probs, found.processed, decided)]
    return NumberReading("".join(d.symbol for d in digits), digits, boxes, [to_uint8(1.0 - c) for c in found.crops])


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


def reading(p: np.ndarray, processed: np.ndarray, verdict: str | None = None) -> DigitReading:
    """Return the reading of one digit from its ten probabilities and its verdict (``Verdicts.decide``).

    Without a verdict (a model with no verdict file) the reading is "unsure" when the top two
    guesses are close; a piece that is not a digit has no digit.
    """
    order = np.argsort(-p, kind="stable")
    top, second = float(p[order[0]]), float(p[order[1]])
    if verdict is None:
        verdict = "unsure" if top - second < UNSURE_MARGIN else "digit"
    return DigitReading(
        verdict=str(verdict),
        digit=None if verdict == "not_a_digit" else int(order[0]),
        candidates=[{"digit": int(d), "probability": round(float(p[d]), 4)} for d in order[:3]],
        probs={str(d): float(p[d]) for d in range(10)},
        processed=processed,
    )


def _outputs(x: np.ndarray, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (outputs, features) for N preprocessed images from one forward pass (``features_and_proba``).

    ``outputs`` (N, 11) are the digits' shares of all the model's outputs, not renormalised,
    then the "not a digit" share (0 for a ten-output network): a fragment cut off a digit
    scores low for every digit, so a cut that leaves fragments loses to one that leaves
    digits, and a heart read whole as "not a digit" is not cut into digits
    (``hypothesis_score``). ``features`` are what the verdicts are decided on.
    """
    model = get_model(model_id)
    features, probs = model.features_and_proba(np.asarray(x, np.float32))
    features, probs = np.asarray(features), np.asarray(probs, np.float64)
    other = features[:, -1:].astype(np.float64) if model.outputs > CLASSES else np.zeros((len(probs), 1))
    return np.concatenate([probs * (1.0 - other), other], axis=1), features


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


def number_height(pieces: list[Piece]) -> float:
    """Return the number's height: the median height of its tall pieces, so a 5's flag or a dot does not count."""
    heights = np.array([p.height for p in pieces], dtype=np.float64)
    return float(np.median(heights[heights >= 0.5 * heights.max()]))


def drop_specks(pieces: list[Piece]) -> list[Piece]:
    """Drop dots and specks: pieces small beside the number's height."""
    if not pieces:
        return pieces
    reference = number_height(pieces)
    return [p for p in pieces if max(p.width, p.height) >= SPECK * reference]


def attach_strokes(pieces: list[Piece], reference: float) -> list[Piece]:
    """Join each short piece (a 5's flag, a 7's bar) to the tall piece whose columns it overlaps most.

    ``merge_pieces`` joins pieces that share most of their columns; a flag drawn apart
    from a 5 that touches the digit before it may stick out past the 5's columns, and
    read alone it would be a digit of its own.
    """
    short = [p for p in pieces if p.height < SHORT_STROKE * reference]
    tall = [p for p in pieces if p.height >= SHORT_STROKE * reference]
    for piece in short:
        overlaps = [min(piece.x1, t.x1) - max(piece.x0, t.x0) for t in tall]
        best = int(np.argmax(overlaps)) if tall else -1
        if best >= 0 and overlaps[best] > 0:
            tall[best] = merge(tall[best], piece)
        else:
            tall.append(piece)
    return sorted(tall, key=lambda p: p.x0)


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


@dataclasses.dataclass
class Segmentation:
    """The digits found on a canvas: each one's box, ink, 28×28 image and probabilities, left to right."""

    boxes: list  # (x0, y0, x1, y1) on the work map, x1 and y1 exclusive
    crops: list  # each digit's ink (float, ink = 1), cropped to it
    processed: np.ndarray  # (N, 28, 28) float32: what the model read
    outputs: np.ndarray  # (N, 11): the digits' shares, then "not a digit" (``_outputs``)
    features: np.ndarray  # (N, F): what each digit's verdict is decided on


@dataclasses.dataclass
class Hypothesis:
    """A stretch of a piece that may be one digit: the ink between two cuts (all of a piece that is not split)."""

    piece: int
    first: int  # index of its left cut (0: the piece's left edge)
    last: int  # index of its right cut
    crop: np.ndarray  # its ink, cropped to it
    x0: int  # the crop's place on the work map
    y0: int


def find_pieces(ink: np.ndarray) -> tuple[list[Piece], float, tuple]:
    """Return a work-size ink map's pieces of digits, the number's height, and the ink runs the pieces hold.

    Specks are dropped and the pieces of one digit merged (``merge_pieces``, ``attach_strokes``);
    ``piece_ink`` cuts each piece's own ink out of the runs. Raises EmptyDrawingError for no ink
    and TooManyMarksError for noise, before the merging that many marks would make slow.
    """
    rows, starts, ends, labels, count = components(ink >= INK_THRESHOLD)
    pieces = drop_specks(pieces_of(rows, starts, ends, labels, count))
    if not pieces:
        raise EmptyDrawingError("Draw a number first.")
    if len(pieces) > MAX_PIECES:
        raise TooManyMarksError(
            f"Found {len(pieces)} separate marks; draw a number of at most {MAX_DIGITS} digits on a clean canvas."
        )
    reference = number_height(pieces)
    return attach_strokes(merge_pieces(pieces), reference), reference, (rows, starts, ends)


def segment(ink: np.ndarray, model_id: str) -> Segmentation:
    """Find the digits on a work-size ink map and read them.

    Every piece is first read whole, in one model call. A wide piece is cut into stretches
    (a second call for all of them) only when its whole reading leaves room for a better
    split: any split scores at most two digits' DIGIT_PENALTY, so a piece read whole as a
    sure digit of a usual width keeps its reading without the cost of reading its stretches.
    """
    pieces, reference, (rows, starts, ends) = find_pieces(ink)
    crops = [piece_ink(p, ink, rows, starts, ends) for p in pieces]
    x = np.stack([preprocess_ink(crop)[0] for crop in crops])
    probs, features = _outputs(x, model_id)
    pieces, crops, x, probs, features = join_neighbours(
        pieces, crops, x, probs, features, reference, (ink, rows, starts, ends), model_id
    )
    hypotheses = [Hypothesis(i, 0, 1, crop, p.x0, p.y0) for i, (p, crop) in enumerate(zip(pieces, crops))]
    cut_costs = [[0.0, 0.0] for _ in pieces]
    wide = [p.width > SPLIT_ASPECT * p.height and p.height >= SPLIT_HEIGHT * reference for p in pieces]
    widen = writer_width(probs, crops, wide)
    more = []
    for index, (piece, crop) in enumerate(zip(pieces, crops)):
        if not wide[index]:
            continue
        if hypothesis_score(probs[index], crop, widen, whole=True) >= -2 * DIGIT_PENALTY:
            continue  # no split can score better than this piece read whole
        seams = candidate_seams(crop)
        hypotheses[index].last = len(seams) + 1
        cut_costs[index] = [0.0, *(cost for _, cost in seams), 0.0]
        more += stretches(index, piece, crop, [seam for seam, _ in seams])
    if more:
        x_more = np.stack([preprocess_ink(h.crop)[0] for h in more])
        hypotheses, x = hypotheses + more, np.concatenate([x, x_more])
        more_probs, more_features = _outputs(x_more, model_id)
        probs, features = np.concatenate([probs, more_probs]), np.concatenate([features, more_features])
    chosen = [
        k for i, costs in enumerate(cut_costs) for k in best_chain(i, costs, hypotheses, probs, widen, reference)
    ]
    if len(chosen) > MAX_DIGITS:
        raise TooManyMarksError(f"Found {len(chosen)} digits; a number here has at most {MAX_DIGITS}.")
    boxes = [(h.x0, h.y0, h.x0 + h.crop.shape[1], h.y0 + h.crop.shape[0]) for h in (hypotheses[k] for k in chosen)]
    return Segmentation(boxes, [hypotheses[k].crop for k in chosen], x[chosen], probs[chosen], features[chosen])


def join_neighbours(pieces, crops, x, probs, features, reference, ink_runs, model_id):
    """Return (pieces, crops, x, probs, features) with neighbours joined where they read better as one digit than as two.

    A 4 whose stem stands just apart from its bar, or a zero whose bar broke off, leaves two
    pieces side by side that ``merge_pieces`` (shared columns) and ``attach_strokes`` (short
    strokes) keep apart. Only close neighbours, one of them short, are tried: their union is
    read in one more model call and replaces them when it scores better than the two do
    together (``hypothesis_score``, each digit paying DIGIT_PENALTY).
    """
    pairs = [
        i for i in range(len(pieces) - 1)
        if pieces[i + 1].x0 - pieces[i].x1 <= JOIN_GAP * reference
        and min(pieces[i].height, pieces[i + 1].height) < JOIN_HEIGHT * reference
    ]
    if not pairs:
        return pieces, crops, x, probs, features
    unions = [merge(pieces[i], pieces[i + 1]) for i in pairs]
    union_crops = [piece_ink(union, *ink_runs) for union in unions]
    union_x = np.stack([preprocess_ink(crop)[0] for crop in union_crops])
    union_probs, union_features = _outputs(union_x, model_id)
    joined = {}
    for k, i in enumerate(pairs):
        if i - 1 in joined:
            continue  # a piece joins at most one neighbour: this one joined the piece before it
        if better_as_one((probs[i], crops[i]), (probs[i + 1], crops[i + 1]), (union_probs[k], union_crops[k])):
            joined[i] = k
    if not joined:
        return pieces, crops, x, probs, features
    keep = [i for i in range(len(pieces)) if i not in joined and i - 1 not in joined]
    items = [(pieces[i], crops[i], x[i], probs[i], features[i]) for i in keep]
    items += [(unions[k], union_crops[k], union_x[k], union_probs[k], union_features[k]) for k in joined.values()]
    pieces, crops, x, probs, features = zip(*sorted(items, key=lambda item: item[0].x0))
    return list(pieces), list(crops), np.stack(x), np.stack(probs), np.stack(features)


def reads_as_one(ink: np.ndarray, model_id: str) -> bool:
    """Return whether a drawing whose ink falls into two pieces side by side reads better as one digit than as two.

    The pieces are found as a number's are; the union and each piece are read in one model
    call and judged as ``join_neighbours`` judges close neighbours (``better_as_one``,
    each digit paying DIGIT_PENALTY). A number must not join a "1" to its neighbour, so
    there only close pieces, one of them short, are tried; a drawing of one digit has no
    neighbour to take, and any two pieces are: a 4 whose stem stands apart from its bar
    reads better whole, two digits with a gap read better apart.
    """
    pieces, _, (rows, starts, ends) = find_pieces(ink)
    if len(pieces) != 2:
        return len(pieces) < 2
    pieces.append(merge(*pieces))
    crops = [piece_ink(p, ink, rows, starts, ends) for p in pieces]
    probs, _ = _outputs(np.stack([preprocess_ink(crop)[0] for crop in crops]), model_id)
    return better_as_one(*zip(probs, crops))


def better_as_one(first, second, union) -> bool:
    """Return whether two pieces, each (outputs, crop), score better read as their union than as two digits.

    Each is scored whole (``hypothesis_score``), so the two apart pay DIGIT_PENALTY twice and
    the union once: a 4 whose stem stands apart from its bar joins, "12" with a gap does not.
    """
    apart = hypothesis_score(*first, whole=True) + hypothesis_score(*second, whole=True)
    return hypothesis_score(*union, whole=True) > apart


def stretches(index: int, piece: Piece, crop: np.ndarray, seams: list[np.ndarray]) -> list[Hypothesis]:
    """Return every stretch of a piece between two of its cuts (seams) that may be one digit, but the whole piece.

    Cuts are numbered 0 (the left edge), 1 … len(seams), len(seams) + 1 (the right edge);
    a stretch far wider than any digit is not worth a model call.
    """
    height, width = crop.shape
    bounds = [np.zeros(height, np.int64), *seams, np.full(height, width, np.int64)]
    columns = np.arange(width)
    found = []
    for i in range(len(bounds) - 1):
        for j in range(i + 1, len(bounds)):
            if (i, j) == (0, len(bounds) - 1) or np.median(bounds[j] - bounds[i]) > MAX_STRETCH * height:
                continue
            inside = (columns >= bounds[i][:, None]) & (columns < bounds[j][:, None])
            part = np.where(inside, crop, 0.0)
            drawn = part >= INK_THRESHOLD
            filled = np.flatnonzero(drawn.any(axis=1))
            if filled.size == 0:
                continue
            used = np.flatnonzero(drawn.any(axis=0))
            part = part[filled[0] : filled[-1] + 1, used[0] : used[-1] + 1]
            found.append(Hypothesis(index, i, j, part, piece.x0 + int(used[0]), piece.y0 + int(filled[0])))
    return found


def candidate_seams(crop: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Return the candidate cuts of a piece that may hold touching digits, left to right: (seam, cost).

    A seam is a path from the piece's top to its bottom (one column per row, moving at
    most one column a row), so it can follow the slanted or curved gap between two digits
    where no vertical cut exists. The cheapest seam through each column of the middle row
    is found by two passes of dynamic programming (down from the top, up from the bottom);
    the candidates are the lowest local minima of that cost. A seam's cost is the ink it
    crosses, in stroke widths (crossing one stroke where two digits join costs about one).
    """
    height, width = crop.shape
    drawn = crop >= INK_THRESHOLD
    stroke = max(stroke_width(drawn), 1.0)
    ink = drawn / stroke
    down, from_above = _seam_pass(ink)
    up, from_below = _seam_pass(ink[::-1])
    up, from_below = up[::-1], from_below[::-1]
    middle = height // 2
    through = down[middle] + up[middle] - ink[middle]
    margin = max(2, int(0.12 * height))
    inner = np.arange(margin, width - margin)
    if inner.size == 0:
        return []
    left, here, right = through[inner - 1], through[inner], through[inner + 1]
    minima = inner[(here <= left) & (here < right)]
    kept = []
    for column in minima[np.argsort(through[minima], kind="stable")]:  # the cheapest first, one per tenth of the height
        if all(abs(column - k) > 0.1 * height for k in kept):
            kept.append(int(column))
        if len(kept) == MAX_CUTS:
            break
    seams = []
    for column in sorted(kept):
        seam = np.empty(height, np.int64)
        seam[middle] = column
        for y in range(middle, 0, -1):
            seam[y - 1] = seam[y] + from_above[y, seam[y]]
        for y in range(middle, height - 1):
            seam[y + 1] = seam[y] + from_below[y, seam[y]]
        seams.append((seam, float(ink[np.arange(height), seam].sum())))
    return seams


def _seam_pass(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the cost of the cheapest seam from row 0 to each pixel, and each pixel's step (-1, 0, 1) back up."""
    height, width = ink.shape
    cost = np.empty_like(ink, dtype=np.float64)
    step = np.zeros((height, width), np.int64)
    cost[0] = ink[0]
    options = np.empty((3, width))
    for y in range(1, height):
        above = cost[y - 1]
        options[0, 0], options[0, 1:] = np.inf, above[:-1] + SEAM_STEP
        options[1] = above
        options[2, :-1], options[2, -1] = above[1:] + SEAM_STEP, np.inf
        best = options.argmin(axis=0)
        cost[y] = ink[y] + options[best, np.arange(width)]
        step[y] = best - 1
    return cost, step


def writer_width(probs: np.ndarray, crops: list[np.ndarray], wide: list[bool]) -> float:
    """Return how much wider than usual (log of width/height) this writer draws digits, from the number's pieces.

    A writer who draws wide draws every digit wide: a wide 4 among wide 5s and 2s is one 4,
    not two digits touching, and a wide 3 in a number of wide digits is not "37". With two
    pieces or more every piece counts, as its whole reading (the median, so one touching
    pair among single digits does not widen the rest); a piece alone counts only if it is
    too narrow to be cut, since a lone wide piece may be the touching digits themselves.
    Only widening counts, so a number drawn all in one blob is judged by the usual widths.
    """
    offsets = [
        np.log(crop.shape[1] / crop.shape[0]) - ASPECT_LOG_MEAN[int(np.argmax(p[:CLASSES]))]
        for p, crop, w in zip(probs, crops, wide)
        if len(crops) > 1 or not w
    ]
    return float(np.clip(np.median(offsets), 0.0, WRITER_WIDEN)) if offsets else 0.0


def hypothesis_score(outputs: np.ndarray, crop: np.ndarray, widen: float = 0.0, whole: bool = False,
                     reference: float = 0.0) -> float:
    """Return how likely a stretch is to be one digit (or, read ``whole``, one non-digit): a log-probability less penalties.

    Each digit has a usual width for its height (``ASPECT``); a stretch much wider than
    its digit usually is — two touching digits read as one — is penalised, so a touching
    "06" that the classifier calls an 8 is not taken for one 8. A narrow stretch that is
    not a 1 is a fragment cut off a digit, and so is a stretch cut from a piece that is
    shorter than SHORT_STRETCH × the number's height (``reference``): a broken-off hook. A
    whole piece may also be one mark that is not a digit (``outputs``' last column), so a
    heart is not cut into three digits; less so the wider it is than tall, since three
    digits run together read as "not a digit" too ("1881" was read "?"). A stretch may not
    be a non-digit, or cutting a digit into fragments would pay.
    """
    aspect = crop.shape[1] / crop.shape[0]
    excess = np.maximum((np.log(aspect) - widen - ASPECT_LOG_MEAN) / ASPECT_LOG_SPREAD - ASPECT_SLACK, 0.0)
    score = np.log(np.maximum(outputs[:CLASSES], 1e-9)) - ASPECT_PENALTY * excess**2 - DIGIT_PENALTY
    if aspect < NARROW_ASPECT:
        score[np.arange(CLASSES) != 1] -= NARROW_PENALTY
    if not whole and crop.shape[0] < SHORT_STRETCH * reference:
        score -= SHORT_PENALTY
    other = -np.inf
    if whole and len(outputs) > CLASSES:
        other = np.log(max(float(outputs[CLASSES]), 1e-9)) - DIGIT_PENALTY - NON_DIGIT_PENALTY
        other -= NON_DIGIT_WIDE * max(aspect - 1.0, 0.0)
    return float(max(score.max(), other))


def best_chain(index: int, costs: list[float], hypotheses: list[Hypothesis], probs: np.ndarray, widen: float,
               reference: float = 0.0) -> list[int]:
    """Return the hypotheses (indexes) that cut piece ``index`` into digits with the best total score.

    Dynamic programming over the piece's cuts: the best chain to cut j is the best chain to
    some cut i plus the stretch (i, j), less the cost of cutting at i.
    """
    mine = {(h.first, h.last): k for k, h in enumerate(hypotheses) if h.piece == index}
    ends = len(costs) - 1
    best = [-np.inf] * (ends + 1)
    back = [None] * (ends + 1)
    best[0] = 0.0
    for j in range(1, ends + 1):
        for i in range(j):
            k = mine.get((i, j))
            if k is None or best[i] == -np.inf:
                continue
            score = hypothesis_score(probs[k], hypotheses[k].crop, widen, whole=(i, j) == (0, ends), reference=reference)
            total = best[i] + score - _cut_cost(costs[i])
            if total > best[j]:
                best[j], back[j] = total, i
    chain, j = [], ends
    while j > 0 and back[j] is not None:
        chain.append(mine[back[j], j])
        j = back[j]
    return chain[::-1]


def _cut_cost(ink_crossed: float) -> float:
    """Return the penalty of a cut crossing this much ink (stroke widths): a second stroke, and more so a stroke followed along."""
    return CUT_PENALTY * max(ink_crossed - 1.0, 0.0) + ALONG_PENALTY * max(ink_crossed - ALONG_STROKE, 0.0)
