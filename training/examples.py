"""Write the app's example drawings: held-out writers' digits rendered as the sketchpad sends them.

    python -m training.examples
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.strokes import HELD_OUT_WRITERS, Condition, load_pendigits, render  # noqa: E402

DIGITS = (3, 5, 7, 9)


def main():
    digits, labels, writers = load_pendigits()
    folder = ROOT / "examples"
    folder.mkdir(exist_ok=True)
    for digit in DIGITS:
        index = int(np.flatnonzero((labels == digit) & (writers == HELD_OUT_WRITERS[0]))[0])
        canvas = render(digits[index], Condition(height=0.55))
        Image.fromarray(canvas).convert("L").save(folder / f"drawn_{digit}.png", optimize=True)
        print(folder / f"drawn_{digit}.png")


if __name__ == "__main__":
    main()
