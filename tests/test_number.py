"""Reading whole numbers: digitrec.read_number, the app's /read_number, and the Number tab in a browser.

Numbers are composed from held-out writers' pen trajectories (pendigits writers 25–30, the
same composition as bench.numbers). The trusted reference for each digit is how the model
reads that digit drawn ALONE (``digitrec.predict``): a number is read right when every digit
is found once and read as it would be on its own, so these tests check the segmentation,
not the classifier's accuracy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import digitrec
from bench.numbers import CONDITIONS, Layout, compose, numbers, single_digit_paper, usual_widths, writers_digits
from digitrec import number
from training.strokes import HELD_OUT_WRITERS, load_pendigits

ROOT = Path(__file__).resolve().parent.parent
GAPPED = CONDITIONS["generous gaps"]
# A 7 whose bar floats above its stem, drawn as a visitor might (points in pendigits' box,
# 0..500, y down); pendigits' own multi-stroke 7s touch once rendered.
SEVEN_WITH_BAR = [
    np.array([[40, 30], [400, 30]], np.float32),
    np.array([[380, 130], [300, 300], [200, 500]], np.float32),
]

# A 4 whose stem was drawn apart from its bar, a gap between them: two pieces side by side
# that share no columns (a UNIPEN test writer's 4 was read as "21" so).
FOUR_STEM_APART = [
    np.array([[90, 0], [0, 300], [300, 300]], np.float32),
    np.array([[380, 0], [380, 500]], np.float32),
]


@pytest.fixture(scope="module")
def pendigits():
    return load_pendigits()


@pytest.fixture(scope="module")
def pool():
    """The held-out writers' digits bench.numbers composes numbers from (pendigits first)."""
    return writers_digits("held-out")


def alone(inks, model):
    """Return how ``model`` reads each digit drawn alone: the reference for reading them in a number."""
    text = ""
    for ink in inks:
        probs, _ = digitrec.predict(single_digit_paper(ink), model)
        text += max(probs, key=probs.get)
    return text


def ink_pieces(canvas) -> int:
    """Count the separate marks on a canvas (specks included)."""
    return number.components(number.to_ink(canvas) >= number.INK_THRESHOLD)[4]


def composed(pool, length, seed, layout=GAPPED, extra=()):
    """Return (canvas, inks, labels) of one held-out pendigits writer's number; ``extra`` digits (stroke lists) are appended."""
    strokes, labels, _ = next(numbers(pool, 1, length, seed))
    canvas, inks = compose([*strokes, *extra], layout, np.random.default_rng(seed))
    return canvas, inks, labels


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_gapped_numbers_read_digit_by_digit(pool, model):
    for length, seed in [(1, 1), (2, 2), (4, 3), (4, 4), (6, 5)]:
        canvas, inks, labels = composed(pool, length, seed)
        reading = digitrec.read_number(canvas, model)
        assert reading.text == alone(inks, model), f"{labels} read as {reading.text}"
        assert len(reading.digits) == len(reading.boxes) == length
        xs = [box[0] for box in reading.boxes]
        assert xs == sorted(xs)
        for digit in reading.digits:
            assert digit.processed.shape == (28, 28) and digit.processed.dtype == np.uint8
            assert abs(sum(digit.probs.values()) - 1) < 1e-4
            assert str(digit.candidates[0]["digit"]) == max(digit.probs, key=digit.probs.get)


def test_a_digit_reads_as_predict_reads_it(pool):
    """One digit: the number's only digit is read as the single-digit pipeline reads it."""
    canvas, inks, _ = composed(pool, 1, 7)
    reading = digitrec.read_number(canvas, "cnn")
    probs, processed = digitrec.predict(single_digit_paper(inks[0]), "cnn")
    assert reading.text == max(probs, key=probs.get)
    # The canvas is read at half size, so the 28×28 images agree up to resampling, not bit for bit.
    correlation = np.corrcoef(reading.digits[0].processed.ravel(), processed.ravel())[0, 1]
    assert correlation > 0.9


def two_piece_five(pendigits):
    """Return a held-out writer's 5 whose flag, drawn apart, is a separate piece of ink."""
    from training.strokes import digit_ink

    digits, labels, writers = pendigits
    for i in np.flatnonzero(np.isin(writers, HELD_OUT_WRITERS) & (labels == 5)):
        if len(digits[i]) > 1 and number.components(digit_ink(digits[i], 300, 24) >= number.INK_THRESHOLD)[4] == 2:
            return digits[i]
    raise AssertionError("no held-out 5 in two pieces")


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
@pytest.mark.parametrize("piece", ["two-stroke 5", "7 with a bar", "4 with its stem apart"])
def test_pieces_of_one_digit_are_one_digit(pendigits, model, piece, pool):
    strokes = {"two-stroke 5": two_piece_five(pendigits), "7 with a bar": SEVEN_WITH_BAR,
               "4 with its stem apart": FOUR_STEM_APART}[piece]
    thin = Layout(gap=GAPPED.gap, brush=(0.08, 0.08))  # a pen fine enough to leave the pieces apart
    canvas, inks, labels = composed(pool, 2, 11, layout=thin, extra=[strokes])
    assert ink_pieces(canvas) >= 4, "the test drawing must have the digit in two pieces"
    reading = digitrec.read_number(canvas, model)
    assert reading.text == alone(inks, model)
    assert len(reading.digits) == 3


def test_a_hook_cut_off_a_digit_is_not_a_digit_of_its_own():
    """A UNIPEN training writer's wide 5 whose tail hook a seam can cut off reads "5", not "15".

    The hook read alone looks like a 1, but it is a third of the digit's height: a stretch that
    short is a broken-off stroke, not a digit (``SHORT_PENALTY``).
    """
    from training.unipen import load_unipen_writers

    digits, labels, writers = load_unipen_writers()
    five = [digits[i] for i in np.flatnonzero((writers == "apb/Patricia_Peek") & (labels == 5))][1]
    canvas, inks = compose([five], GAPPED, np.random.default_rng(0))
    assert alone(inks, "cnn") == "5"
    assert digitrec.read_number(canvas, "cnn").text == "5"


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_specks_and_dots_are_ignored(pool, model):
    canvas, inks, _ = composed(pool, 3, 12)
    speckled = canvas.copy()
    speckled[40:52, 700:712] = 0  # a dot above the number
    speckled[560:566, 100:104] = 0  # a speck near the bottom
    assert ink_pieces(speckled) == ink_pieces(canvas) + 2
    assert digitrec.read_number(speckled, model).text == digitrec.read_number(canvas, model).text == alone(inks, model)


def test_touching_pair_is_split(pendigits):
    """The issue's example: a 1 and a 2 drawn touching are "12", not a 2."""
    digits, labels, writers = pendigits
    writer = HELD_OUT_WRITERS[0]
    one, two = (digits[int(np.flatnonzero((writers == writer) & (labels == d))[0])] for d in (1, 2))
    canvas, inks = compose([one, two], Layout(gap=(-0.04, -0.04)), np.random.default_rng(0))
    assert ink_pieces(canvas) == 1, "the test drawing must be one piece of ink"
    assert alone(inks, "cnn") == "12"
    assert digitrec.read_number(canvas, "cnn").text == "12"


def touching_canvas(strokes, truth):
    """Return a canvas of one writer's digits overlapping a little: one piece of ink, each digit read right alone."""
    canvas, inks = compose(strokes, Layout(gap=(-0.06, -0.06)), np.random.default_rng(0))
    assert ink_pieces(canvas) == 1, "the test drawing must be one piece of ink"
    assert alone(inks, "cnn") == truth
    return canvas


def touching_pair(pendigits, writer, pair):
    """Return a canvas of one held-out writer's two digits overlapping a little (``touching_canvas``)."""
    digits, labels, writers = pendigits
    strokes = [digits[int(np.flatnonzero((writers == writer) & (labels == int(d)))[0])] for d in pair]
    return touching_canvas(strokes, pair)


# Touching pairs whose digits overlap or share columns, so no vertical cut separates them
# (held-out writers' digits, each read right alone): the cut must bend around the overhang.
OVERLAPPING_PAIRS = [(26, "06"), (29, "36"), (25, "49"), (28, "74"), (29, "56"), (30, "21")]


@pytest.mark.parametrize("writer, pair", OVERLAPPING_PAIRS, ids=[f"{w}-{p}" for w, p in OVERLAPPING_PAIRS])
def test_overlapping_touching_pair_is_split_into_its_two_digits(pendigits, writer, pair):
    canvas = touching_pair(pendigits, writer, pair)
    reading = digitrec.read_number(canvas, "cnn")
    assert reading.text == pair
    (left, _, left_end, _), (right, _, right_end, _) = reading.boxes
    assert left < right and left_end < right_end


# Touching pairs no wider than one digit (a 1 beside its neighbour) and two zeros run
# together (held-out writers' digits, each read right alone): the old reader never tried
# to cut a piece narrower than 0.95 × its height and took "00" for one wide 0.
NARROW_PAIRS = [(29, "14"), (29, "17"), (30, "17"), (30, "11"), (29, "00")]


@pytest.mark.parametrize("writer, pair", NARROW_PAIRS, ids=[f"{w}-{p}" for w, p in NARROW_PAIRS])
def test_a_touching_pair_as_narrow_as_one_digit_is_cut_into_its_two_digits(pendigits, writer, pair):
    assert digitrec.read_number(touching_pair(pendigits, writer, pair), "cnn").text == pair


# Digits by one writer, each (digit, which of the writer's drawings of it): run together they
# read whole as "not a digit", being as wide as three digits; the old reader left them one "?"
# (held-out writers: "694") or, judging widths by pendigits' alone, cut them wrong ("222" as "2262").
# The cut is the reader's; how sure a classifier is of a cut stretch is the weights': in "694" the
# 4's arm touches the 9 along its top and no seam keeps all of it with the 4, which round six's
# CNN read as 4 and rounds eight and nine's as "not a digit" ("69?"). So a digit may show as "?", never as
# another digit.
RUNS_OF_THREE = [("pendigits/26", [(6, 8), (9, 14), (4, 22)]), ("pendigits/25", [(2, 4), (2, 10), (2, 25)])]


def writer_drawings(pool, writer, picks):
    """Return the strokes and labels of ``writer``'s drawings: each pick is (digit, index among their drawings of it)."""
    chosen = [np.flatnonzero((pool.writers == writer) & (pool.labels == d))[k] for d, k in picks]
    return [pool.digits[i] for i in chosen], "".join(str(pool.labels[i]) for i in chosen)


@pytest.mark.parametrize("writer, picks", RUNS_OF_THREE, ids=[w for w, _ in RUNS_OF_THREE])
def test_three_touching_digits_read_whole_as_not_a_digit_are_cut_into_digits(pool, writer, picks):
    strokes, truth = writer_drawings(pool, writer, picks)
    text = digitrec.read_number(touching_canvas(strokes, truth), "cnn").text
    assert len(text) == len(truth) and text.count("?") <= 1, text
    assert all(shown in (digit, "?") for shown, digit in zip(text, truth)), text


@pytest.fixture(scope="module")
def training_pool():
    """The training writers' digits (pendigits 1–24, UNIPEN's training institutions)."""
    return writers_digits("training")


def test_a_wide_digit_of_a_writer_who_draws_wide_is_not_cut(training_pool):
    """A UNIPEN training writer's wide 3 beside a 1: pendigits' usual width for a 3 read it "37"."""
    strokes, truth = writer_drawings(training_pool, "apb/Cyndi_Iwata", [(3, 5), (1, 6)])
    canvas, inks = compose(strokes, GAPPED, np.random.default_rng(0))
    assert inks[0].shape[1] > 1.3 * inks[0].shape[0], "the test 3 must be far wider than pendigits' usual 3"
    assert alone(inks, "cnn") == truth
    assert digitrec.read_number(canvas, "cnn").text == truth


@pytest.mark.slow
def test_the_usual_widths_are_those_measured_on_the_training_writers(training_pool):
    """digitrec/number.py's usual widths are what ``python -m bench.numbers --usual-widths`` measures, not typed by hand."""
    mean, spread = usual_widths(training_pool)
    np.testing.assert_allclose(number.ASPECT_LOG_MEAN, mean, atol=1e-9)
    np.testing.assert_allclose(number.ASPECT_LOG_SPREAD, spread, atol=1e-9)


def test_a_flag_reaching_past_its_digit_stays_with_it(pool):
    """A 5 whose flag, drawn apart, sticks out past the digit's columns is one digit, not a 5 and a 7 or a 1."""
    five = [
        np.array([[100, 40], [80, 230]], np.float32),
        np.array([[80, 230], [260, 200], [340, 330], [260, 480], [40, 440]], np.float32),
        np.array([[280, 20], [520, 20]], np.float32),  # the flag: mostly right of the body
    ]
    canvas, inks, labels = composed(pool, 2, 11, extra=[five])
    assert ink_pieces(canvas) == 4, "the test drawing must have the 5's flag apart"
    reading = digitrec.read_number(canvas, "cnn")
    assert len(reading.digits) == 3
    assert reading.text == alone(inks, "cnn")


def test_a_gapped_number_with_a_wide_digit_is_read_in_one_model_call(pool, monkeypatch):
    """A sure, wide 2 is not cut into candidate stretches: the number costs one call of the model."""
    canvas, inks, labels = composed(pool, 4, 21)
    model = digitrec.get_model("cnn")
    calls = []
    predict = model.features_and_proba  # what the segmenter calls: every output and the verdicts' features
    monkeypatch.setattr(model, "features_and_proba", lambda x: calls.append(len(x)) or predict(x))
    reading = digitrec.read_number(canvas, "cnn")
    assert calls == [4]
    wide = [x1 - x0 > number.SPLIT_ASPECT * (y1 - y0) for x0, y0, x1, y1 in reading.boxes]
    assert any(wide), "the test number must have a digit wide enough to be two"
    assert reading.text == alone(inks, "cnn")


def test_boxes_are_where_the_digits_are(pool):
    canvas, _, _ = composed(pool, 3, 13)
    reading = digitrec.read_number(canvas, "cnn")
    dark = canvas[:, :, 0] < 128
    for x0, y0, x1, y1 in reading.boxes:
        assert dark[y0:y1, x0:x1].any()
    inside = np.zeros_like(dark)
    for x0, y0, x1, y1 in reading.boxes:
        inside[y0:y1, x0:x1] = True
    assert not (dark & ~inside).any(), "ink outside every box"


def test_a_transparent_png_reads_like_a_white_canvas(pool):
    canvas, _, _ = composed(pool, 4, 14)
    rgba = np.zeros(canvas.shape[:2] + (4,), np.uint8)
    rgba[canvas[:, :, 0] < 128] = (0, 0, 0, 255)
    assert digitrec.read_number(rgba, "cnn").text == digitrec.read_number(canvas, "cnn").text


@pytest.mark.parametrize(
    "image, error, message",
    [
        (None, digitrec.EmptyDrawingError, "Draw a number first"),
        (np.full((600, 1600, 3), 255, np.uint8), digitrec.EmptyDrawingError, "Draw a number first"),
        (np.where(np.random.default_rng(0).random((600, 1600)) < 0.01, 0, 255).astype(np.uint8),
         digitrec.TooManyMarksError, "separate marks"),
        ("no-such-file.png", digitrec.InvalidImageError, "Could not read"),
        (b"not an image", digitrec.InvalidImageError, "Could not read"),
    ],
    ids=["None", "white", "noise", "missing file", "bytes"],
)
def test_empty_and_garbage_input_is_refused_shortly(image, error, message):
    with pytest.raises(error, match=message) as raised:
        digitrec.read_number(image, "cnn")
    assert len(str(raised.value)) < 160


def test_unknown_model_is_refused(pool):
    canvas, _, _ = composed(pool, 2, 15)
    with pytest.raises(digitrec.UnknownModelError, match="cnn"):
        digitrec.read_number(canvas, "bogus")


@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_a_shape_among_digits_is_read_as_not_a_digit_and_shown_as_a_question_mark(pool, model):
    """"2♥6": each piece gets the verdict ``digitrec.read`` gives it drawn alone, and the heart shows as "?"."""
    from training.nondigits import shape

    strokes, labels, _ = next(numbers(pool, 1, 2, 16))
    heart = shape("heart", np.random.default_rng(0))
    canvas, inks = compose([strokes[0], heart, strokes[1]], GAPPED, np.random.default_rng(16))
    alone_readings = [digitrec.read(single_digit_paper(ink), model) for ink in inks]
    assert alone_readings[1].verdict == "not_a_digit", "the test heart must be one the model rejects alone"
    reading = digitrec.read_number(canvas, model)
    assert [d.verdict for d in reading.digits] == [r.verdict for r in alone_readings]
    assert reading.text == "".join("?" if r.verdict == "not_a_digit" else str(r.digit) for r in alone_readings)
    assert reading.text[1] == "?" and reading.digits[1].digit is None


def test_not_a_digit_shows_as_a_question_mark():
    """When a reading says a piece is not a digit (issue 15's verdicts), the text shows "?" there."""
    reading = number.reading(np.eye(10)[2], np.zeros((28, 28), np.uint8))
    assert reading.symbol == "2"
    for verdict in ("not_a_digit", "several"):
        assert number.DigitReading(verdict, None, [], {}, reading.processed).symbol == "?"
    assert number.reading(np.array([0.45, 0.4] + [0.15 / 8] * 8), reading.processed).verdict == "unsure"


# --------------------------------------------------------------------------- the served app


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def sketch_of(path):
    from gradio_client import handle_file

    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}


@pytest.mark.slow
@pytest.mark.parametrize("model", digitrec.MODEL_IDS)
def test_read_number_through_the_api(client, pool, tmp_path, model):
    canvas, inks, _ = composed(pool, 4, 3)
    path = tmp_path / "number.png"
    Image.fromarray(canvas).save(path)
    text, details, strip = client.predict(sketch_of(path), model, api_name="/read_number")
    assert text == digitrec.read_number(canvas, model).text == alone(inks, model)
    assert [d["digit"] for d in details] == list(text)
    assert all(len(d["box"]) == 4 and d["candidates"][0]["digit"] == int(d["digit"]) for d in details)
    height, width = np.asarray(Image.open(strip)).shape[:2]
    assert height == 280 and width > 4 * 280


@pytest.mark.slow
def test_read_number_refuses_shortly_and_keeps_serving(client, pool, tmp_path):
    from gradio_client.exceptions import AppError

    white = tmp_path / "white.png"
    Image.new("RGB", (1600, 600), "white").save(white)
    with pytest.raises(AppError, match="Draw a number first"):
        client.predict(sketch_of(white), "cnn", api_name="/read_number")
    canvas, _, _ = composed(pool, 2, 2)
    path = tmp_path / "number.png"
    Image.fromarray(canvas).save(path)
    with pytest.raises(AppError, match="Unknown model"):
        client.predict(sketch_of(path), "bogus", api_name="/read_number")
    assert client.predict(sketch_of(path), "cnn", api_name="/read_number")[0] == digitrec.read_number(canvas).text


@pytest.mark.slow
def test_one_digit_correction_is_stored(client, pool, tmp_path, app_data_dir):
    """A visitor fixes the second digit: that digit's drawing, alone, is stored with the label given."""
    import sqlite3

    from gradio_client.exceptions import AppError

    canvas, inks, _ = composed(pool, 3, 16)
    path = tmp_path / "number.png"
    Image.fromarray(canvas).save(path)
    thanks = client.predict(sketch_of(path), "cnn", 1, "7", api_name="/feedback_digit")
    assert "stored as a 7" in thanks
    databases = list(Path(app_data_dir).rglob("*.sqlite*")) + list(Path(app_data_dir).rglob("*.db"))
    assert databases, "no corrections store"
    with sqlite3.connect(databases[0]) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(corrections)")]
        row = dict(zip(columns, db.execute("SELECT * FROM corrections ORDER BY rowid DESC LIMIT 1").fetchone()))
    assert row["label"] == 7
    with pytest.raises(AppError, match="pick 0 to 2"):
        client.predict(sketch_of(path), "cnn", 5, "7", api_name="/feedback_digit")
    with pytest.raises(AppError, match="Label must be"):
        client.predict(sketch_of(path), "cnn", 0, "x", api_name="/feedback_digit")


# --------------------------------------------------------------------------- the browser


def number_area(page):
    """Return (x, y, zoom) of the Number canvas's drawing surface on screen: canvas pixel × zoom = CSS pixels."""
    box = page.locator("#number-sketch .pixi-target canvas").first.bounding_box()
    zoom_text = page.locator("#number-sketch .zoom-number").inner_text()
    zoom = float(re.search(r"([\d.]+)\s*%", zoom_text).group(1)) / 100
    width, height = 1600 * zoom, 600 * zoom
    return box["x"] + (box["width"] - width) / 2, box["y"] + (box["height"] - height) / 2, zoom


def number_on_screen(digit_strokes, area, height=280, gap=0.4):
    """Lay a number's digits (pendigits strokes) side by side on the 1600×600 canvas; return screen strokes."""
    from bench.browser import TOLERANCE, simplify

    x0, y0, zoom = area
    placed, x = [], 0.0
    for strokes in digit_strokes:
        points = np.concatenate(strokes)
        low, high = points.min(axis=0), points.max(axis=0)
        scale = height / max(float(high[1] - low[1]), 1.0)
        placed.append([(s - low) * scale + [x, 0] for s in strokes])
        x += float(high[0] - low[0]) * scale + gap * height
    left = (1600 - (x - gap * height)) / 2
    top = (600 - height) / 2
    return [
        simplify((s + [left, top]) * zoom + [x0, y0], TOLERANCE)
        for digit in placed
        for s in digit
    ]


@pytest.mark.slow
def test_browser_draw_2026_and_read_it(app_url, pendigits):
    """A visitor opens the Number tab, draws 2026 with the mouse and reads 2026 (screenshot in docs/ on request)."""
    from playwright import sync_api

    from bench.browser import CHROMIUM, CHROMIUM_ARGS, draw_with_mouse

    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    digits, labels, writers = pendigits
    writer = HELD_OUT_WRITERS[1]
    strokes = [digits[int(np.flatnonzero((writers == writer) & (labels == d))[0])] for d in (2, 0, 2, 6)]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(90_000)  # a loaded 2-core machine: clicks wait for the page to settle
            page.goto(app_url)
            tab = page.get_by_role("tab", name="Number")
            if tab.is_visible():  # gradio hides the tab bar while Number is the only tab
                tab.click()
            sketch = page.locator("#number-sketch")
            sketch.scroll_into_view_if_needed()
            sketch.get_by_role("button", name="Brush", exact=True).click()
            sync_api.expect(sketch.get_by_role("button", name="Brush Size", exact=True)).to_be_visible()
            draw_with_mouse(page, number_on_screen(strokes, number_area(page)))
            page.locator("#read-number").click()
            text = page.locator("#number-text textarea")
            try:
                sync_api.expect(text).not_to_have_value("", timeout=90_000)
            except AssertionError:
                raise AssertionError(f"no number; the page said {page.locator('.toast-body').all_inner_texts()}")
            sync_api.expect(page.locator("#number-digits img")).to_have_count(4)
            sync_api.expect(page.locator("#number-boxes img")).to_have_count(1)
            assert text.input_value() == "2026"
            save_number_screenshot(page)
        finally:
            browser.close()


def save_number_screenshot(page):
    """Save the Number tab to test-artifacts/number.png, or to docs/number.png with DIGITREC_DOCS_SCREENSHOTS=1."""
    folder = ROOT / "docs" if os.environ.get("DIGITREC_DOCS_SCREENSHOTS") else ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    full = ROOT / "test-artifacts" / "number-full.png"
    full.parent.mkdir(exist_ok=True)
    page.locator("#number-tab").screenshot(path=str(full))
    with Image.open(full) as image:
        small = image.convert("RGB")
        small.thumbnail((900, 900), Image.LANCZOS)
    small.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        folder / "number.png", optimize=True
    )


def test_the_report_gives_each_cell_its_wilson_interval():
    """Every whole-number cell of bench.numbers' report comes with the 95 % Wilson interval of its own counts."""
    from types import SimpleNamespace

    from scipy.stats import binomtest

    from bench.numbers import format_table

    cell = dict(numbers=60, right=53, digits=240, digits_right=230, single=240, single_right=236, single_read_right=235,
                miscounted=1, by_source={"pendigits": dict(numbers=30, right=28), "UNIPEN": dict(numbers=30, right=25)})
    results = {"cnn": {(name, 4): dict(cell, right=53 - k) for k, name in enumerate(CONDITIONS)}}
    args = SimpleNamespace(command="", per_length=60, writer_text="writers", seed=0, lengths=[4])
    report = format_table(results, {"cnn": np.array([20.0, 21.0])}, args)
    for k, name in enumerate(CONDITIONS):
        interval = binomtest(53 - k, 60).proportion_ci(confidence_level=0.95, method="wilson")
        assert f"| {name} | {100 * interval.low:.1f}–{100 * interval.high:.1f} % |" in report


def test_a_larger_benchmark_run_extends_the_smaller_one(pool):
    """The first numbers of a run with more per length are the numbers of a run with fewer: a larger run refines, not replaces."""
    few = [labels for _, labels, _ in numbers(pool, 5, 4, 1234)]
    more = [labels for _, labels, _ in numbers(pool, 50, 4, 1234)]
    assert more[:5] == few


def test_each_benchmark_command_writes_only_its_own_block(tmp_path):
    """``--write`` fills the block of the command that ran; another command's block and the prose stay as they were."""
    from bench.numbers import markers, write_report

    page = tmp_path / "numbers.md"
    default, larger = markers(), markers(" --models cnn --lengths 4 --per-length 600")
    page.write_text(f"intro\n{default[0]}\nold table\n{default[1]}\nprose\n{larger[0]}\nold larger\n{larger[1]}\nend\n")
    write_report("new larger", " --models cnn --lengths 4 --per-length 600", paths=(page,))
    assert page.read_text() == f"intro\n{default[0]}\nold table\n{default[1]}\nprose\n{larger[0]}\nnew larger\n{larger[1]}\nend\n"
    with pytest.raises(ValueError, match="no <!-- bench.numbers --seed 3: begin -->"):
        write_report("table", " --seed 3", paths=(page,))
