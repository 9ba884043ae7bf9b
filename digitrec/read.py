"""``read``: a digit, or "not sure", "that is not a digit" or "several digits", instead of always a guess.

A classifier trained on ten digits answers one of ten digits for anything, a letter or a
scribble too, often at 100 %. ``read`` adds three answers, all from the one forward pass
``predict`` already makes (``Model.features_and_proba``) plus the drawing's layout:

- "several": the ink falls into two or more digit-sized parts side by side (``count_parts``:
  connected components of the ink, grouped when they overlap horizontally, so the bar of a 4,
  5 or 7 drawn as a second stroke stays with its digit), unless two parts read better as one
  digit than apart (``digits_side_by_side``: a 4 whose stem stands apart from its bar);
- "not_a_digit": the network's own "not a digit" output (models trained with an 11th class,
  ``training/train.py --non-digits``), or for a ten-output network a small network (one ReLU
  layer of 64, sigmoid output) on its penultimate features fitted on drawn digits against
  letters, shapes and scribbles — whichever rejected more on validation (``training/verdicts.py``) —
  says the drawing is not a digit;
- "unsure": the top probability, calibrated by the model's temperature, is below a threshold
  chosen on validation drawings; ``candidates`` are the digits it hesitates between.

The detector, temperature and thresholds of a model live in ``<model_id>.verdict.json``
(and the detector's arrays in ``<model_id>.verdict.npz``) beside its weights (``Verdicts``), with the SHA-256 of the weights they were fitted on; a
file fitted on other weights is not used (logged), and then only "several" and a plain
digit are answered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from .manifest import sha256_of
from .messages import cut
from .preprocess import preprocess_with_view, to_uint8
from .registry import check_model_id, get_model
from . import views as test_time_views
from .views import IDENTITY
from .weights import bundled_dir

log = logging.getLogger("digitrec")

VERDICTS = ("digit", "unsure", "not_a_digit", "several")
FORMAT_VERSION = 1
PART_INK = 0.5  # a pixel of the layout view counts as ink from this level (drawn strokes are ~1)
PART_GAP = 0.06  # components closer than this share of the height (or overlapping) horizontally are one part
PART_MIN_HEIGHT = 0.4  # a part is digit-sized when at least this fraction of the drawing's height…
PART_MIN_SHARE = 0.08  # …and at least this share of its ink: dots and short ticks are not digits
PART_PAD = 8  # the layout view is read by the number reader with this margin, so no piece touches the edge
CANDIDATE_SHARE = 0.1  # a digit is a candidate when its calibrated probability is at least this


@dataclasses.dataclass(frozen=True)
class Reading:
    """What ``read`` says about one drawing."""

    verdict: str  # "digit", "unsure", "not_a_digit" or "several"
    digit: int  # the most likely digit, whatever the verdict
    candidates: list  # the digits it hesitates between (just ``digit`` when sure)
    probs: dict  # {"0": p0, …, "9": p9}, as ``predict`` returns them
    processed: np.ndarray = dataclasses.field(repr=False)  # the (28, 28) uint8 image the model read

    def headline(self) -> str:
        """Return the answer in a few words for people: "7", "Not sure — 4 or 9?", …"""
        if self.verdict == "digit":
            return str(self.digit)
        if self.verdict == "unsure":
            return "Not sure — " + " or ".join(str(d) for d in self.candidates) + "?"
        if self.verdict == "not_a_digit":
            return "That doesn't look like a digit"
        return "Looks like several digits"


# ---------------------------------------------------------------- layout: one digit or several


def count_parts(view: np.ndarray) -> int:
    """Return how many digit-sized parts side by side the drawing's layout view holds.

    Connected ink components (8-neighbours) are grouped when their horizontal extents overlap or nearly touch — a second stroke of the
    same digit lies above, below, across or just beside the first — and a group counts when it is tall enough and
    holds enough of the ink.
    """
    ink = view >= PART_INK
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), bool))
    if count < 2:
        return count
    rows = np.flatnonzero(ink.any(axis=1))
    height = rows[-1] - rows[0] + 1  # of the ink, so a zero-padded view reads the same
    boxes = ndimage.find_objects(labels)
    sizes = ndimage.sum_labels(ink, labels, np.arange(1, count + 1))
    spans = sorted((box[1].start, box[1].stop, box[0].start, box[0].stop, size) for box, size in zip(boxes, sizes))
    groups = []  # [left, right, top, bottom, ink]
    for left, right, top, bottom, size in spans:
        # overlapping the group on its left, or nearly touching it: the same digit
        if groups and left - groups[-1][1] < PART_GAP * height:
            group = groups[-1]
            group[1], group[2], group[3] = max(group[1], right), min(group[2], top), max(group[3], bottom)
            group[4] += size
        else:
            groups.append([left, right, top, bottom, size])
    total = float(sizes.sum())
    return sum((g[3] - g[2]) >= PART_MIN_HEIGHT * height and g[4] >= PART_MIN_SHARE * total for g in groups)


def digits_side_by_side(view: np.ndarray, model_id: str) -> int:
    """Return how many digits side by side a drawing's layout view holds, the model's reading settling two parts.

    ``count_parts`` sees the layout alone, and a 4 whose stem stands apart from its bar has
    two parts, as "12" has. Two parts are one digit when, read with the model, their union
    reads better than the two apart (``digitrec.number.reads_as_one``, scored as the number
    reader scores its pieces); only such a drawing costs a second model call.
    """
    parts = count_parts(view)
    if parts != 2:
        return parts
    from .number import TooManyMarksError, reads_as_one  # here: the number reader imports this module

    try:
        return 1 if reads_as_one(np.pad(np.asarray(view, np.float32), PART_PAD), model_id) else 2
    except TooManyMarksError:  # more marks than a number holds: several, whatever they are
        return parts


# ---------------------------------------------------------------- the fitted part: detector, temperature, thresholds


def softmax(z):
    """Return row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # tanh form: no overflow for large |z|


def calibrate(probs, temperature):
    """Return probabilities softened (T > 1) or sharpened by ``temperature``: softmax(log p / T)."""
    return softmax(np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / temperature)


@dataclasses.dataclass
class Verdicts:
    """A model's non-digit detector, temperature and thresholds, fitted on validation drawings.

    ``detector`` "output": p(not a digit) is the network's own 11th output, the last column of
    its features (``Model.features_and_proba``). ``detector`` "features": the detector reads
    standardised penultimate features, a = (features − mean) / scale, through ``layers``
    [(w, b), …] (w of shape (n_out, n_in)): ReLU between layers, and p(not a digit) = σ(z) of
    the last one's single output. One layer is a logistic regression.
    """

    model_id: str
    weights_sha256: str
    temperature: float
    reject_threshold: float  # "not_a_digit" when p(not a digit) is at least this
    unsure_threshold: float  # "unsure" when the top calibrated probability is below this
    mean: np.ndarray
    scale: np.ndarray
    layers: list
    description: dict = dataclasses.field(default_factory=dict)  # fitted on, metrics, …
    detector: str = "features"  # or "output": the network's own "not a digit" output
    views: tuple = (IDENTITY,)  # the model's test-time views the features were read at (digitrec/views.py)
    views_below: float | None = None  # and the gate below which the other views were read
    files: tuple = ()  # the verdict file and its arrays as loaded, so publishing copies exactly what was checked

    def non_digit_probability(self, features) -> np.ndarray:
        """Return p(not a digit) for each row of ``features`` (``Model.features_and_proba``)."""
        if self.detector == "output":
            return np.asarray(features, np.float64)[:, -1]
        a = (np.asarray(features, np.float64) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            z = a @ w.T + b
            a = np.maximum(z, 0) if i < len(self.layers) - 1 else sigmoid(z)
        return a[:, 0]

    def decide(self, probs, features, parts):
        """Return (verdicts, calibrated) for a batch: one verdict per row, and the calibrated probabilities."""
        calibrated = calibrate(probs, self.temperature)
        verdicts = np.full(len(calibrated), "digit", dtype=object)
        verdicts[calibrated.max(axis=1) < self.unsure_threshold] = "unsure"
        verdicts[self.non_digit_probability(features) >= self.reject_threshold] = "not_a_digit"
        verdicts[np.asarray(parts) >= 2] = "several"
        return verdicts, calibrated

    # -- storage: a JSON description beside the weights, and the detector's arrays in an .npz it names
    def save(self, path) -> Path:
        """Write ``path`` (JSON: format version, the weights it belongs to, settings, description, checksum) and its .npz."""
        path = Path(path)
        arrays = {"mean": self.mean, "scale": self.scale}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        params = path.with_name(path.name.replace(".json", "") + ".npz")
        partial = params.with_name(f".{params.name}.{os.getpid()}.tmp")
        with open(partial, "wb") as file:
            np.savez(file, **{name: np.asarray(a, np.float32) for name, a in arrays.items()})
        os.replace(partial, params)  # a reader never sees half a file
        document = {
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "temperature": float(self.temperature),
            "reject_threshold": float(self.reject_threshold),
            "unsure_threshold": float(self.unsure_threshold),
            "params_file": params.name,
            "params_sha256": sha256_of(params),
            "layers": len(self.layers),
            "detector": self.detector,
            **test_time_views.to_json(self.views, self.views_below),
            "description": self.description,
        }
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(partial, path)
        return path

    @classmethod
    def load(cls, path) -> "Verdicts":
        """Read a verdict file and its arrays, refusing another format version or arrays that do not match their checksum."""
        path = Path(path)
        document = json.loads(path.read_text())
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format version {document.get('format_version')!r}; this code reads {FORMAT_VERSION}.")
        params = path.parent / document["params_file"]
        if sha256_of(params) != document["params_sha256"]:
            raise ValueError(f"{params.name}: the detector's parameters do not match the checksum in {path.name}.")
        if document.get("detector", "features") not in ("features", "output"):
            raise ValueError(f"{path}: unknown detector {document['detector']!r}.")
        views, views_below = test_time_views.from_json(document)
        with np.load(params) as arrays:
            mean, scale = arrays["mean"].astype(np.float64), arrays["scale"].astype(np.float64)
            layers = [(arrays[f"w{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64))
                      for i in range(int(document["layers"]))]
        return cls(
            model_id=document["model_id"], weights_sha256=document["weights_sha256"],
            temperature=float(document["temperature"]), reject_threshold=float(document["reject_threshold"]),
            unsure_threshold=float(document["unsure_threshold"]), mean=mean, scale=scale, layers=layers,
            description=document.get("description", {}), detector=document.get("detector", "features"),
            views=views, views_below=views_below, files=(path, params),
        )


def verdict_path(directory, model_id: str) -> Path:
    """Return where a model's verdict file lives in a weights folder."""
    return Path(directory) / f"{model_id}.verdict.json"


_verdicts = {}


def verdicts_for(model_id: str, model=None) -> Verdicts | None:
    """Return the verdict file of the serving weights of ``model_id``, or None (logged once) when there is none that fits.

    The file that came with the weights (``model.verdict_file``: from the hub repo, or the
    bundled folder) is tried first, then the bundled one: each is used only if it was
    fitted on the serving weights, whose SHA-256 it records, read at the same test-time views.
    """
    if model_id in _verdicts:
        return _verdicts[model_id]
    model = model or get_model(model_id)
    weights = getattr(model, "manifest", {}).get("sha256")
    paths = dict.fromkeys(p for p in (getattr(model, "verdict_file", None), verdict_path(bundled_dir(), model_id)) if p)
    found, problems = None, []
    for path in paths:
        try:
            candidate = Verdicts.load(path)
        except (OSError, ValueError, KeyError) as error:
            problems.append(f"{Path(path).name}: {cut(error)}")
            continue
        if candidate.weights_sha256 != weights:
            problems.append(f"{Path(path).name} was fitted on weights {candidate.weights_sha256[:12]}…, "
                            f"not the serving {str(weights)[:12]}…")
        elif (candidate.views, candidate.views_below) != (model.views, model.views_below):
            problems.append(f"{Path(path).name} was fitted on test-time views {list(candidate.views)} "
                            f"read below {candidate.views_below}, not the serving {list(model.views)} "
                            f"read below {model.views_below}")
        else:
            found = candidate
            break
    if found is None:
        log.warning("%s: no verdict file fits (%s): reading digits without 'not a digit' or 'not sure'",
                    model_id, "; ".join(problems))
    _verdicts[model_id] = found
    return found


# ---------------------------------------------------------------- reading


def read(image, model_id="cnn") -> Reading:
    """Return the ``Reading`` of one drawing: its verdict, the most likely digit, candidates, probabilities, image.

    Raises like ``predict``: EmptyDrawingError, InvalidImageError, UnknownModelError. The
    drawing is read before the model is loaded, so bad input never costs a model load.
    """
    check_model_id(model_id)
    x, view = preprocess_with_view(image)
    return read_processed(x, model_id, digits_side_by_side(view, model_id))


def read_processed(x, model_id="cnn", parts=1) -> Reading:
    """Return the ``Reading`` of one preprocessed (28, 28) image whose layout holds ``parts`` marks side by side."""
    model = get_model(model_id)
    features, probs = model.features_and_proba(np.asarray(x, np.float32)[None])
    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    verdicts = verdicts_for(model_id, model)
    if verdicts is None:
        verdict, calibrated = ("several" if parts >= 2 else "digit"), probs
    else:
        decided, calibrated = verdicts.decide(probs, features, [parts])
        verdict = decided[0]
    order = np.argsort(-calibrated[0])
    digit = int(order[0])
    if verdict == "unsure":
        candidates = [int(d) for d in order[:3] if calibrated[0, d] >= CANDIDATE_SHARE] or [digit]
        candidates = candidates if len(candidates) > 1 else [digit, int(order[1])]
    else:
        candidates = [digit]
    return Reading(
        verdict=str(verdict), digit=digit, candidates=candidates,
        probs={str(d): float(probs[0, d]) for d in range(10)}, processed=to_uint8(np.asarray(x)),
    )
