"""Each verdict in a real browser: draw, press Predict, read the headline; a screenshot of each.

The screenshots go to test-artifacts/; with DIGITREC_DOCS_SCREENSHOTS=1 small copies are
written to docs/verdict-<verdict>.png for the README (a plain run changes no tracked file).
The drawings for "unsure" are held-out digits, strongly distorted, that ``digitrec.read`` is
unsure of when rendered; drawn with the browser's brush one may be read otherwise, so they
are tried in turn until the page says "Not sure".
"""

from __future__ import annotations

import numpy as np
import pytest

import digitrec
from bench.browser import draw_with_mouse, drawing_area, on_screen
from test_browser import clear_canvas, open_page, predict, save_screenshots, select_brush  # noqa: F401
from test_browser import browser, pendigits, pytestmark  # noqa: F401  (slow, and skipped without Chromium)
from training.nondigits import shape
from training.strokes import Condition, distort_strokes, render
from training.verdict_sets import pair


def unsure_drawings(held, count=6):
    """Return held-out digits, strongly distorted (seeded), that ``digitrec.read`` is unsure of on the canvas."""
    digits, labels, _ = held
    found = []
    for n in range(800):
        index = int(np.flatnonzero(labels == (9, 5, 4, 7)[n % 4])[n // 4])
        strokes = distort_strokes(digits[index], np.random.default_rng(n), proportion=0.5, shift=0.15, scale=0.2,
                                  rotation=15)
        if digitrec.read(render(strokes, Condition()), "cnn").verdict == "unsure":
            found.append(strokes)
            if len(found) == count:
                break
    return found


def drawings(held, verdict):
    """Return [(strokes, fraction of the drawing area)] to try in turn for ``verdict``."""
    digits, labels, _ = held
    if verdict == "digit":
        return [(digits[int(np.flatnonzero(labels == 3)[0])], 0.6)]
    if verdict == "unsure":  # the browser's brush is not the renderer's: a doubtful drawing may turn sure, so several
        return [(strokes, 0.6) for strokes in unsure_drawings(held)]
    if verdict == "not_a_digit":
        return [(shape("star", np.random.default_rng(3)), 0.6)]
    return [(pair(digits[int(np.flatnonzero(labels == 4)[0])], digits[int(np.flatnonzero(labels == 7)[0])], 0.5), 0.85)]


HEADLINES = {"digit": "3", "unsure": "Not sure", "not_a_digit": "That doesn't look like a digit",
             "several": "Looks like several digits"}


@pytest.mark.parametrize("verdict", list(HEADLINES))
def test_each_verdict_on_the_page(open_page, pendigits, verdict):  # noqa: F811
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    tries = drawings(pendigits, verdict)
    assert tries, f"no drawing to try for {verdict}"
    for n, (strokes, fraction) in enumerate(tries):
        if n:
            clear_canvas(page)
        draw_with_mouse(page, on_screen(strokes, drawing_area(page), fraction=fraction))
        shown, _ = predict(page, heat_map=True)
        if shown.startswith(HEADLINES[verdict]):
            break
    page.mouse.move(0, 0)  # no brush cursor over the drawing
    save_screenshots(page, f"verdict-{verdict.replace('_', '-')}", panels=[(0, 760)], docs_scale=0.6)
    assert shown.startswith(HEADLINES[verdict]), f"{verdict}: the page said {shown!r}"
