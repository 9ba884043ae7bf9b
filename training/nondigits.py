"""Drawings that are not digits, and the digit sets they are measured against, rendered like canvas input.

A reader that can say "that is not a digit" has to see non-digits drawn the way visitors draw:
UNIPEN letters (split by whole institution, the same split as the UNIPEN digits in
``training/unipen.py``), and shapes and scribbles generated here as pen strokes. Everything
goes through the digits' renderer, stroke distortion and ``digitrec.preprocess``, so the only
difference a detector can learn is the drawing itself, not how it was put on the canvas.

Letters that look like digits (``DIGIT_LIKE``: O o Q D I l i j J L T t S s Z z B G g q b d y)
are not mistakes when read as digits, so they are in no set, for training or measuring;
``NON_DIGIT_LETTERS`` are the issue's letters that look like no digit. Some shape kinds are
only ever in the test set (``TEST_SHAPES``), so the test asks about shapes never trained on.
"""

from __future__ import annotations

import sys

import numpy as np

from digitrec.preprocess import WORK_SIDE, preprocess_with_view, to_uint8

from . import unipen as unipen_module  # keys the render caches; ``unipen`` below is a path
from .data import CACHE, _box, code_key, render_all, save_cache
from .strokes import BENCHMARK_CONDITIONS, data_path, distort_strokes, random_condition, read_pen_file, render
from .unipen import TEST_INSTITUTIONS, VALIDATION_INSTITUTIONS, scaled, writers_digits

NON_DIGIT_LETTERS = tuple("ACEFHKMNPRUVWXYacefhkmnpruvwx")
DIGIT_LIKE = tuple("OoQDIliJjLTtSsZzBGgqbdy")
TRAIN_SHAPES = ("star", "arrow", "heart", "triangle", "hash", "spiral", "square")
TEST_SHAPES = ("circle_cross", "smiley", "zigzag")  # held out: never in training or validation


def load_letters(path=None):
    """Return (letters, chars, institutions): strokes y down, each letter scaled so its longer side spans BOX.

    The same per-sample scaling as ``training.unipen.load_unipen``: tablets differ in resolution.
    """
    with np.load(data_path("unipen_letters.npz", path)) as data:
        points, samples, _, writers = read_pen_file(data)
        names = np.array([str(name) for name in data["writer_names"]])
        chars = np.array([str(c) for c in data["chars"]])
    institutions = np.array([name.split("/")[0] for name in names])[writers]
    return [scaled(group) for group in samples(points)], chars, institutions


def letter_indices(chars, institutions, part):
    """Return the indices of non-digit-like letters of one part ("train", "validation", "test") of the split."""
    held = TEST_INSTITUTIONS + VALIDATION_INSTITUTIONS
    where = {"test": np.isin(institutions, TEST_INSTITUTIONS), "validation": np.isin(institutions, VALIDATION_INSTITUTIONS),
             "train": ~np.isin(institutions, held)}
    if part not in where:
        raise ValueError(f"part must be 'train', 'validation' or 'test'; got {part!r}")
    return np.flatnonzero(where[part] & np.isin(chars, NON_DIGIT_LETTERS))


# ---------------------------------------------------------------- shapes and scribbles as pen strokes


def _circle(rng, centre=(0.0, 0.0), radius=1.0, turns=1.0, points=40):
    start = rng.uniform(0, 2 * np.pi)
    t = start + np.linspace(0, 2 * np.pi * turns, points)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], 1)


def _line(a, b, points=8):
    return np.linspace(a, b, points)


def _polyline(corners, points=8):
    corners = np.asarray(corners, dtype=np.float64)
    return np.concatenate([_line(corners[i], corners[i + 1], points) for i in range(len(corners) - 1)])


def shape(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Return the pen strokes (y down) of one shape of ``kind``, with random proportions and wobble."""
    if kind == "star":
        spikes = int(rng.integers(5, 8))
        step = 2 if spikes in (5, 7) else 3
        angles = -np.pi / 2 + 2 * np.pi * step * np.arange(spikes + 1) / spikes
        strokes = [_polyline(np.stack([np.cos(angles), np.sin(angles)], 1))]
    elif kind == "arrow":
        tail, tip = np.array([-1.0, 0.0]), np.array([1.0, 0.0])
        head = [tip + [-0.5, -0.4], tip, tip + [-0.5, 0.4]]
        strokes = [_line(tail, tip, 16), _polyline(head)]
        angle = rng.uniform(0, 2 * np.pi)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        strokes = [s @ turn.T for s in strokes]
    elif kind == "heart":
        t = np.linspace(0, 2 * np.pi, 50)
        strokes = [np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)]
    elif kind == "triangle":
        corners = rng.uniform(-1, 1, (3, 2)) * 0.3 + [[0, -1], [-1, 0.8], [1, 0.8]]
        strokes = [_polyline(np.vstack([corners, corners[:1]]))]
    elif kind == "hash":
        strokes = [_line([-0.4, -1], [-0.6, 1]), _line([0.6, -1], [0.4, 1]), _line([-1, -0.4], [1, -0.4]),
                   _line([-1, 0.4], [1, 0.4])]
    elif kind == "spiral":
        t = np.linspace(0, 2 * np.pi * rng.uniform(2.0, 3.5), 80)
        strokes = [np.stack([t * np.cos(t), t * np.sin(t)], 1) * (1 if rng.random() < 0.5 else [-1, 1])]
    elif kind == "square":
        w = rng.uniform(0.6, 1.0)
        box = [[-w, -1], [w, -1], [w, 1], [-w, 1], [-w, -1]]
        strokes = [_polyline(box)] + ([_line([-w, -1], [w, 1])] if rng.random() < 0.5 else [])
    elif kind == "circle_cross":
        strokes = [_circle(rng), _line([-0.9, -0.9], [0.9, 0.9]), _line([0.9, -0.9], [-0.9, 0.9])]
    elif kind == "smiley":
        mouth = np.linspace(0.2 * np.pi, 0.8 * np.pi, 12)
        strokes = [_circle(rng), _circle(rng, (-0.35, -0.3), 0.08, points=8), _circle(rng, (0.35, -0.3), 0.08, points=8),
                   np.stack([0.55 * np.cos(mouth), 0.55 * np.sin(mouth) + 0.05], 1)]
    elif kind == "zigzag":
        teeth = int(rng.integers(4, 7))
        x = np.linspace(-1, 1, teeth + 1)
        y = np.where(np.arange(teeth + 1) % 2 == 0, -0.5, 0.5)
        strokes = [_polyline(np.stack([x, y], 1))]
    else:
        raise ValueError(f"Unknown shape kind {kind!r}")
    size = max(float(np.ptp(np.concatenate(strokes), axis=0).max()), 1e-6)
    aspect = np.exp(rng.normal(0, 0.15, 2))
    wobble = 0.015 * size
    return [((s * aspect) + rng.normal(0, wobble, s.shape)).astype(np.float32) for s in strokes]


def scribble(rng: np.random.Generator) -> list[np.ndarray]:
    """Return 1–3 strokes of a random walk with momentum: what a visitor draws to test the reader."""
    strokes = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        steps = int(rng.integers(25, 70))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.6, steps))
        step = np.stack([np.cos(heading), np.sin(heading)], 1)
        strokes.append((np.cumsum(step, axis=0) + rng.normal(0, 3, 2)).astype(np.float32))
    return strokes


def synthetic(kind: str, count: int, seed: int) -> list[list[np.ndarray]]:
    """Return ``count`` drawings: scribbles (kind "scribble") or shapes cycling through the kinds in ``kind`` (comma list)."""
    rng = np.random.default_rng(seed)
    kinds = kind.split(",")
    return [scribble(rng) if kinds[i % len(kinds)] == "scribble" else shape(kinds[i % len(kinds)], rng)
            for i in range(count)]


PAIR_OVERLAP = (-0.15, 0.02)  # space between a pair's boxes, in digit heights: overlapping to just touching once inked
PAIR_HIDDEN = 0.3  # …but never overlapping more than this share of the narrower digit's width


def touching_pair(first, second, rng: np.random.Generator) -> list[np.ndarray]:
    """Return one drawing of two digits side by side whose ink touches or overlaps: strokes, y down.

    Two digits run together are no single digit, and a network that reads them as one
    confidently (a touching "41" as a 4 at 99 %) leaves the number reader no reason to cut
    them apart. Each digit is scaled to the same height (±10 %) and set on a common
    baseline (±5 % of the height), the second starting PAIR_OVERLAP of a height after the
    first ends (never hiding a third of the narrower one: two ones on top of each other are one 1).
    """
    boxes = [_box(first), _box(second)]
    heights = rng.uniform(0.9, 1.1, 2)
    widths = [size[0] * height / size[1] for (_, size), height in zip(boxes, heights)]
    # A 1 may not sink into its neighbour: overlapping more than a third of the narrower digit hides it.
    gap = max(rng.uniform(*PAIR_OVERLAP), -PAIR_HIDDEN * min(widths))
    placed = []
    for strokes, (low, size), height, x in zip((first, second), boxes, heights, (0.0, widths[0] + gap)):
        shift = np.array([x, 1.0 - height + rng.normal(0.0, 0.05)])
        placed += [((stroke - low) * (height / size[1]) + shift).astype(np.float32) for stroke in strokes]
    return placed


def touching_pairs(count: int, seed: int, pendigits=None, unipen=None) -> list[list[np.ndarray]]:
    """Return ``count`` touching pairs (``touching_pair``), each from two digits of one training writer."""
    digits, _, writers = writers_digits("training", pendigits, unipen)
    rng = np.random.default_rng(seed)
    names = np.unique(writers)
    by_writer = {name: np.flatnonzero(writers == name) for name in names}
    pairs = []
    for _ in range(count):
        own = by_writer[names[int(rng.integers(len(names)))]]
        first, second = rng.choice(own, size=2, replace=len(own) < 2)
        pairs.append(touching_pair(digits[first], digits[second], rng))
    return pairs


# ---------------------------------------------------------------- rendering, cached


def _render_job(job):
    strokes, seed, condition, distort = job
    rng = np.random.default_rng(seed)
    if distort:
        strokes = distort_strokes(strokes, rng)
    x, view = preprocess_with_view(render(strokes, condition if condition is not None else random_condition(rng)))
    padded = np.zeros((WORK_SIDE, WORK_SIDE), np.uint8)
    padded[: view.shape[0], : view.shape[1]] = to_uint8(view)
    return x, padded


def render_set(name: str, drawings, seed: int, conditions="random", distort=True, processes=None):
    """Return (x, views): renders of ``drawings`` under random or benchmark conditions, and their layout views, cached.

    ``x`` is (N, 28, 28) float32, what a model reads; ``views`` (N, WORK_SIDE, WORK_SIDE) uint8 the
    drawings' layout views (``digitrec.preprocess.preprocess_with_view``, zero-padded), which
    ``digitrec.read.count_parts`` reads. ``conditions="benchmark"`` cycles through
    BENCHMARK_CONDITIONS, so a held-out set covers every condition the digit benchmark reports;
    "random" draws each as training does; a list gives each drawing its own. Held-out digits are not distorted (``distort=False``).
    """
    kind = conditions if isinstance(conditions, str) else "given"
    distorted = "_distort" if distort else ""
    cache = CACHE / f"verdicts_{name}_n{len(drawings)}_seed{seed}_{kind}{distorted}_{code_key(sys.modules[__name__], unipen_module)}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["x"], data["views"]
    fixed = list(BENCHMARK_CONDITIONS.values()) if conditions == "benchmark" else conditions
    jobs = [(d, (seed, i, 7), None if conditions == "random" else fixed[i % len(fixed)], distort)
            for i, d in enumerate(drawings)]
    rendered = render_all(_render_job, jobs, processes)
    x = np.stack([r[0] for r in rendered]).astype(np.float32)
    views = np.stack([r[1] for r in rendered])
    save_cache(cache, x=x, views=views)
    return x, views


# ---------------------------------------------------------------- the models' "not a digit" class


SYNTHETIC_PER_COPY = 3000  # shapes, and as many scribbles, per copy: together about a quarter of the letters
PAIRS_PER_COPY = 6000  # touching pairs per copy: as many as shapes and scribbles together


def training_non_digits(copies=1, seed=0, path=None, limit=None, pair_copies=0, pendigits=None, unipen=None):
    """Return (x, y): ``copies`` random renders of the training institutions' letters, shapes and scribbles, y = 10.

    The models' 11th output ("not a digit", ``digitrec.base.NOT_A_DIGIT``) learns from these:
    letters that look like no digit of the training institutions only (the validation and test
    institutions' letters never), the training shape kinds (never ``TEST_SHAPES``) and
    scribbles, drawn from seeds apart from the verdict sets', distorted and rendered as the
    training digits are; and ``pair_copies`` × PAIRS_PER_COPY pairs of training writers'
    digits touching (``touching_pairs``). ``limit`` keeps that many letters and a tenth as
    many of each synthetic kind.
    """
    from digitrec.base import NOT_A_DIGIT

    if copies <= 0:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
    letters, chars, institutions = load_letters(path)
    index = letter_indices(chars, institutions, "train")[:limit]
    synthetic_count = SYNTHETIC_PER_COPY if limit is None else max(1, limit // 10)
    parts = []
    for copy in range(copies):
        base = 1000 + 100 * seed + copy  # the verdict sets use seeds 11–13 and 111–113
        parts.append(render_set(f"model_letters_copy{copy}", [letters[i] for i in index], base)[0])
        parts.append(render_set(f"model_shapes_copy{copy}", synthetic(",".join(TRAIN_SHAPES), synthetic_count, base),
                                base)[0])
        parts.append(render_set(f"model_scribbles_copy{copy}", synthetic("scribble", synthetic_count, base + 50),
                                base)[0])
    pair_count = PAIRS_PER_COPY if limit is None else max(1, limit // 10)
    for copy in range(pair_copies):
        base = 3000 + 100 * seed + copy
        parts.append(render_set(f"model_pairs_copy{copy}", touching_pairs(pair_count, base, pendigits, unipen), base)[0])
    x = np.concatenate(parts)
    return x, np.full(len(x), NOT_A_DIGIT, np.int64)
