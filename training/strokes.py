"""Render pen trajectories (UCI pendigits) the way the app's sketchpad receives a drawing.

The sketchpad is an 800×800 canvas; the browser sends an opaque white background with
black ink, gradio 6's default brush draws strokes about 54 px wide, and API clients may
send transparent PNGs. People draw small or large, off-centre, slanted, with thin or fat
strokes: a ``Condition`` fixes those choices, ``random_condition`` draws them at random
for training, and ``BENCHMARK_CONDITIONS`` are the fixed ones the benchmark reports.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec import config

CANVAS = 800
DEFAULT_BRUSH = 54
# Training brushes are at most this × the digit's height: legible, yet the default brush on a
# digit a fifth of the canvas high (0.31) is taught as drawn (round eight, docs/training.md).
MAX_BRUSH_PER_HEIGHT = 0.4
HELD_OUT_WRITERS = (25, 26, 27, 28, 29, 30)  # never trained on; the benchmark reads only these


@dataclasses.dataclass(frozen=True)
class Condition:
    """How one digit is put on the canvas."""

    height: float = 0.6  # digit height as a fraction of the canvas
    brush: float = DEFAULT_BRUSH  # stroke width in canvas pixels
    centre: tuple = (0.5, 0.5)  # where the digit's box centre lands, as fractions (x, y)
    slant: float = 0.0  # horizontal shear, x += slant × (distance above the centre)
    rotation: float = 0.0  # degrees, counter-clockwise
    transparent: bool = False  # RGBA with a transparent background, as an API client might send


BENCHMARK_CONDITIONS = {
    "canvas default": Condition(),
    "small, off-centre": Condition(height=0.22, centre=(0.3, 0.3)),
    "large": Condition(height=0.92),
    "thin brush": Condition(brush=12),
    "fat brush": Condition(height=0.45, brush=90),
    "corner": Condition(height=0.35, centre=(0.78, 0.75)),
    "transparent PNG": Condition(height=0.5, transparent=True),
}


def data_path(name: str, path=None) -> Path:
    """Return the path of a data file: ``path`` if given, else $DIGITREC_DATA/name, else ../shared/data/name."""
    if path:
        return Path(path)
    root = config.text("DIGITREC_DATA")
    if root:
        return Path(root) / name
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / name


def load_pendigits(path=None):
    """Return (digits, labels, writers): each digit a list of strokes, each stroke an (n, 2) float array, y down."""
    with np.load(data_path("pendigits_train.npz", path)) as data:
        points, samples, labels, writers = read_pen_file(data)
    points[:, 1] = 500.0 - points[:, 1]  # the tablet's y points up; the canvas's points down
    return samples(points), labels, writers


def read_pen_file(data):
    """Return (points float32, samples, labels, writers) of an open pen file (pendigits' layout, README of the data).

    ``samples(points)`` splits the flat points — once the caller has flipped or scaled them —
    into one list of (n, 2) stroke arrays per sample.
    """
    points = data["points"].astype(np.float32)
    stroke_len, strokes_per_sample = data["stroke_len"], data["strokes_per_sample"]

    def samples(points):
        strokes = np.split(points, np.cumsum(stroke_len)[:-1])
        return [list(group) for group in np.split(np.array(strokes, dtype=object), np.cumsum(strokes_per_sample)[:-1])]

    return points, samples, data["labels"].astype(np.int64), data["writers"].astype(np.int64)


def random_condition(rng: np.random.Generator) -> Condition:
    """Draw a condition spanning what visitors do: size, brush, position, slant, rotation, alpha."""
    height = float(rng.uniform(0.15, 0.95))
    # Brush: mostly the default 54 px, sometimes changed, relative size capped so the digit stays legible.
    brush = DEFAULT_BRUSH if rng.random() < 0.4 else float(np.exp(rng.uniform(np.log(6), np.log(100))))
    brush = min(brush, MAX_BRUSH_PER_HEIGHT * height * CANVAS)
    margin = height / 2
    centre = (float(rng.uniform(margin * 0.8, 1 - margin * 0.8)), float(rng.uniform(margin, 1 - margin)))
    return Condition(
        height=height,
        brush=brush,
        centre=centre,
        slant=float(rng.normal(0, 0.15)),
        rotation=float(rng.normal(0, 6)),
        transparent=bool(rng.random() < 0.15),
    )


def distort_strokes(strokes, rng: np.random.Generator, proportion=0.2, shift=0.05, scale=0.08, rotation=5.0):
    """Return a copy of one digit's strokes as another writer might have drawn them.

    Twenty-four training writers are few styles; writers differ less in how they hold the
    pen than in proportions (a small or large loop on a 9, a long or short flag on a 1) and
    in where they put each stroke (the bar of a 4, 5 or 7). So the digit's box is warped by
    a monotone power law along each axis — which keeps the box but moves its middle — and
    each stroke of a multi-stroke digit is moved, scaled and turned a little on its own,
    before rendering. All amounts are normal with the given standard deviations, so most
    copies stay close to what the writer drew.
    """
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    size = np.maximum(high - low, 1.0)
    power = np.exp(rng.normal(0.0, proportion, 2)).astype(np.float32)
    out = []
    for stroke in strokes:
        unit = np.clip((stroke - low) / size, 0.0, 1.0) ** power
        if len(strokes) > 1:
            middle = unit.mean(axis=0)
            angle = np.deg2rad(rng.normal(0.0, rotation))
            turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
            zoom = np.float32(np.exp(rng.normal(0.0, scale)))
            unit = (unit - middle) @ turn.T * zoom + middle + rng.normal(0.0, shift, 2).astype(np.float32)
        out.append((unit * size + low).astype(np.float32))
    return out


def render(strokes, condition: Condition = Condition(), canvas: int = CANVAS) -> np.ndarray:
    """Draw one digit's strokes on a canvas; return (canvas, canvas, 3) RGB or (…, 4) RGBA uint8."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    middle = (low + high) / 2
    extent = max(float(high[1] - low[1]), float(high[0] - low[0]) * 0.75, 1.0)
    scale = condition.height * canvas / extent
    angle = np.deg2rad(condition.rotation)
    rotate = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]], dtype=np.float32)
    target = np.array(condition.centre, dtype=np.float32) * canvas
    mode = "RGBA" if condition.transparent else "RGB"
    image = Image.new(mode, (canvas, canvas), (255, 255, 255, 0) if condition.transparent else (255, 255, 255))
    draw = ImageDraw.Draw(image)
    ink = (0, 0, 0, 255) if condition.transparent else (0, 0, 0)
    radius = condition.brush / 2
    for stroke in strokes:
        xy = (stroke - middle) * scale
        xy[:, 0] -= condition.slant * xy[:, 1]
        xy = xy @ rotate.T + target
        coordinates = [tuple(p) for p in xy.tolist()]
        if len(coordinates) > 1:
            draw.line(coordinates, fill=ink, width=max(1, round(condition.brush)), joint="curve")
        for x, y in coordinates[:: max(1, len(coordinates) - 1)]:  # round caps at both ends
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
    return np.asarray(image)


def digit_ink(strokes, height: float, brush: float) -> np.ndarray:
    """Render one digit's strokes ``height`` px tall with a ``brush`` px pen; return its ink crop (1 = ink)."""
    side = int(height * 1.6 + brush * 2)
    canvas = render(strokes, Condition(height=height / side, brush=brush, centre=(0.5, 0.5)), canvas=side)
    ink = 1.0 - canvas[:, :, 0].astype(np.float32) / 255.0
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
