"""Symbols as pen strokes, from the Hershey vector fonts: many kinds of "not a digit" to learn from.

Seven generated shape kinds teach the networks little about shapes they never met (the test's
circle with a cross, smiley and zigzag are rejected 41–65 %). The Hershey fonts hold a few
hundred single-line symbols — astrological, meteorological and musical signs, map markers,
maths, Japanese kana and kanji — drawn as pen strokes, so they render like the digits.

``SYMBOLS`` names the glyphs kept, by font and position in that font's sorted glyph table,
picked by eye from a contact sheet of every glyph: left out are digits and letters, anything a
fair reader could take for a digit (lines and arcs, ♃, ♋, $, ∂, ∫, ‖, §, フ, ノ, ラ, る …),
the kanji numerals, plain circles, whatever resembles a held-out test shape kind (⊕, ☉, ♒
and the zigzags), the C clefs, which render as a B, and ⊓, which a slant makes a 7. Since round
seven also circles with a stroke through, over or under them (☿, ♀, ♂, ♅, ☄, ♉) and hatched
and nested circles — taught as non-digits, they made the networks refuse struck and crossed
zeros (docs/verdicts.md) — as well as % and the boxy ∃, a flat-topped 3. Every fourth glyph is
kept for validation only (``part``).

Their strokes are stored in ``hershey_symbols.json`` (``python -m training.symbols`` wrote it
from PyPI ``Hershey-Fonts`` 2.1.0, MIT). The package is not a requirement: its wheel also
installs a top-level ``tests`` package, which would hide this project's own tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

SYMBOLS = {
    "astrology": (1, 11, 14, 15, 26, 27, 29, 30, 31, 32, 61, 63, 64, 91, 92, 93, 95),
    "markers": (34, 35, 36, 37, 38, 39, 40, 41, 43, 44, 45, 46, 47, 48),
    "mathlow": (1, 2, 3, 4, 6, 7, 10, 11, 14, 26, 27, 28, 29, 30, 31, 32, 62, 63, 66, 67, 68, 69, 70, 71, 72, 73,
                75, 78, 79, 87, 88, 90, 92, 95),
    "meteorology": (3, 4, 6, 7, 8, 9, 26, 32, 92),
    "music": (7, 11, 12, 14, 27, 30, 32, 62, 64, 95),
    "symbolic": (28, 30, 31, 32, 35, 37, 38, 39, 41, 42, 43, 44, 45, 46, 47, 49, 50, 51, 52, 53, 54, 55,
                 56, 57, 58, 59, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 74, 75, 77, 78, 79, 80, 85, 88, 89,
                 90, 91, 92, 94),
    "japanese": (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,  # kanji, not the numerals
                 33, 37, 38, 39, 41, 43, 46, 48, 53, 55, 56, 58, 60, 62, 63, 64, 65, 66, 67, 68, 70, 72, 76, 78,
                 81, 82, 83,  # hiragana
                 114, 116, 117, 118, 119, 121, 123, 124, 126, 128, 129, 130, 131, 133, 135, 136, 138, 139, 142, 144,
                 146, 147, 148, 150, 157, 159),  # katakana
}
GLYPH_FILE = Path(__file__).with_name("hershey_symbols.json")  # the kept glyphs' strokes, written by ``extract``
VALIDATION_EVERY = 4  # every fourth kept glyph is validation's, so validation asks about glyphs never trained on

_glyphs: dict[str, list[list[np.ndarray]]] = {}


def glyphs(part: str) -> list[list[np.ndarray]]:
    """Return the kept glyphs of ``part`` ("train" or "validation") as lists of strokes, y down."""
    if part not in ("train", "validation"):
        raise ValueError(f"part must be 'train' or 'validation', not {part!r}")
    if not _glyphs:
        with open(GLYPH_FILE) as file:
            stored = json.load(file)["glyphs"]
        kept = []
        for font_name, positions in SYMBOLS.items():
            for position in positions:
                strokes = [np.asarray(stroke, np.float32) for stroke in stored[font_name][str(position)]]
                kept.append([np.repeat(s, 2, axis=0) if len(s) == 1 else s for s in strokes])  # a dot is a stroke too
        _glyphs["train"] = [g for i, g in enumerate(kept) if i % VALIDATION_EVERY != VALIDATION_EVERY - 1]
        # Fonts repeat glyphs (the markers are in "symbolic" too): validation keeps only those unlike any trained on.
        trained = [_raster(g) for g in _glyphs["train"]]
        _glyphs["validation"] = []
        for glyph in kept[VALIDATION_EVERY - 1:: VALIDATION_EVERY]:
            raster = _raster(glyph)
            if max(_overlap(raster, seen) for seen in trained) < SAME_GLYPH:
                _glyphs["validation"].append(glyph)
                trained.append(raster)  # …and each once
    return _glyphs[part]


SAME_GLYPH = 0.9  # overlap of two glyphs' rasters above which they are one glyph twice (distinct glyphs reach 0.85)


def _raster(strokes, side=16):
    """Return the glyph as a ``side``² boolean raster of its box (aspect kept), a line a pixel wide and thickened."""
    points = np.concatenate(strokes)
    low, size = points.min(axis=0), max(float(np.ptp(points, axis=0).max()), 1e-6)
    image = np.zeros((side + 2, side + 2), bool)
    for stroke in strokes:
        for a, b in zip(stroke[:-1], stroke[1:]):
            for t in np.linspace(0, 1, 2 * side):
                x, y = ((a + t * (b - a)) - low) / size * (side - 1) + 1
                image[int(round(y)), int(round(x))] = True
    thick = image.copy()
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        thick |= np.roll(image, (dy, dx), axis=(0, 1))
    return thick


def _overlap(a, b):
    """Return the intersection over union of two rasters."""
    return (a & b).sum() / max((a | b).sum(), 1)


def symbol(rng: np.random.Generator, part: str = "train") -> list[np.ndarray]:
    """Return the strokes (y down) of one random glyph of ``part``, stretched and wobbled like the shapes."""
    strokes = glyphs(part)[int(rng.integers(len(glyphs(part))))]
    size = max(float(np.ptp(np.concatenate(strokes), axis=0).max()), 1e-6)
    aspect = np.exp(rng.normal(0, 0.15, 2))
    slant = np.array([[1.0, rng.normal(0, 0.1)], [0.0, 1.0]])  # a hand leans; a font does not
    wobble = 0.015 * size
    return [((s @ slant.T) * aspect + rng.normal(0, wobble, s.shape)).astype(np.float32) for s in strokes]


def symbols(count: int, seed: int, part: str = "train") -> list[list[np.ndarray]]:
    """Return ``count`` random glyphs of ``part`` (``symbol``), from ``seed``."""
    rng = np.random.default_rng(seed)
    return [symbol(rng, part) for _ in range(count)]


def glyphs_key() -> str:
    """Return a short key of this module's code and the stored strokes, for render cache names."""
    from .data import code_key

    return code_key(sys.modules[__name__]) + hashlib.sha256(GLYPH_FILE.read_bytes()).hexdigest()[:8]


SYMBOLS_PER_COPY = 3000  # as many as the shapes of one --non-digits copy


def training_symbols(copies: int, seed: int = 0, limit=None):
    """Return (x, y): ``copies`` × SYMBOLS_PER_COPY random renders of the training glyphs, y = 10 ("not a digit").

    Drawn from seeds apart from every other set's, distorted and rendered as the training digits
    are (``training.nondigits.render_set``); ``limit`` keeps a tenth of it as many.
    """
    from digitrec.base import NOT_A_DIGIT

    from .nondigits import render_set

    key = glyphs_key()
    count = SYMBOLS_PER_COPY if limit is None else max(1, limit // 10)
    parts = []
    for copy in range(copies):
        base = 5000 + 100 * seed + copy  # apart from every other set's seeds
        parts.append(render_set(f"model_symbols_copy{copy}_{key}", symbols(count, base), base)[0])
    x = np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.float32)
    return x, np.full(len(x), NOT_A_DIGIT, np.int64)


def extract(path=GLYPH_FILE):
    """Write the kept glyphs' strokes from the Hershey-Fonts package to ``path`` (once, in a scratch environment)."""
    from HersheyFonts import HersheyFonts

    glyphs_by_font = {}
    for font_name, positions in SYMBOLS.items():
        font = HersheyFonts()
        font.load_default_font(font_name)
        table = sorted(font.all_glyphs.items())
        glyphs_by_font[font_name] = {
            str(position): [[list(map(int, point)) for point in stroke] for stroke in table[position][1].strokes]
            for position in positions
        }
    source = ("Hershey vector fonts (NBS Special Publication 424), from PyPI Hershey-Fonts 2.1.0 (MIT, "
              "https://github.com/apshu/HersheyFonts): the glyphs training/symbols.py keeps, by font and position "
              "in the font's sorted glyph table; pen strokes, y down")
    with open(path, "w") as file:
        file.write(json.dumps({"source": source, "glyphs": glyphs_by_font}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    extract()
