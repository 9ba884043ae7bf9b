"""The real app in a real browser: draw held-out pen trajectories on the sketchpad, read the label.

Headless Chromium (the system's, never a downloaded one) drives the app the way a visitor
does: select the brush, draw a digit stroke by stroke (mouse on a desktop, touch on a
phone), press Predict and read the label. The drawings are UCI pendigits trajectories by
the held-out writers the models never saw; the label each is checked against is the
dataset's own. Screenshots go to ``test-artifacts/`` and small copies to ``docs/`` for the
README.

No test waits politely between drawing and clicking: a visitor presses Predict the moment
the pen lifts, clicks an example after a drawing, clears and draws again.
"""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from playwright import sync_api  # noqa: E402

expect = sync_api.expect

from training.strokes import HELD_OUT_WRITERS, load_pendigits  # noqa: E402

import digitrec  # noqa: E402
from bench.browser import (  # noqa: E402
    CANVAS,
    CHROMIUM,
    CHROMIUM_ARGS,
    draw_with_mouse,
    draw_with_touch,
    drawing_area,
    on_screen,
)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
DOCS_MAX_BYTES = 150_000

SKETCH = "#sketch"
LABEL_VALUE = "#label [data-testid='label-output-value']"
PROCESSED_IMG = "#processed img"
HEATMAP_IMG = "#heatmap img"

# Which held-out drawings each model must read: (writer, digit class). The class only
# picks a drawing; the label asserted is the dataset's label of that drawing.
DESKTOP_PICKS = {
    "cnn": [(HELD_OUT_WRITERS[1], 3), (HELD_OUT_WRITERS[2], 7)],
    "dense": [(HELD_OUT_WRITERS[1], 0), (HELD_OUT_WRITERS[3], 4)],
    "numpy": [(HELD_OUT_WRITERS[2], 2), (HELD_OUT_WRITERS[4], 6)],
}
PHONE_PICK = (HELD_OUT_WRITERS[4], 5)
SCREENSHOT_PICK = (HELD_OUT_WRITERS[4], 4)

# A developer without Chromium skips these; CI (which installs it in .ci/run) never does.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"no Chromium at {CHROMIUM}"),
]


# --------------------------------------------------------------------------- drawings


@pytest.fixture(scope="module")
def pendigits():
    """Return (digits, labels, writers) of the held-out writers only."""
    digits, labels, writers = load_pendigits()
    keep = np.flatnonzero(np.isin(writers, HELD_OUT_WRITERS))
    return [digits[i] for i in keep], labels[keep], writers[keep]


def held_out_drawing(pendigits, writer, digit):
    """Return (strokes, label): the first drawing of ``digit`` by held-out ``writer``, and its dataset label."""
    digits, labels, writers = pendigits
    assert writer in HELD_OUT_WRITERS
    index = int(np.flatnonzero((writers == writer) & (labels == digit))[0])
    return digits[index], str(int(labels[index]))


# --------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, app_url):
    """Return a function opening the app in a fresh browser context; contexts close after the test."""
    contexts = []

    def open_(**context_options):
        context = browser.new_context(**context_options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        missing = []
        page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
        page.goto(app_url)
        try:
            page.locator(CANVAS).first.wait_for(state="visible", timeout=30_000)
        except sync_api.TimeoutError:
            custom = [url for url in missing if "/custom_component/" in url]
            hint = (
                " The page asked for a custom component's frontend, which gradio does for a component"
                " subclass whose get_block_name() is not a built-in one (a gr.Sketchpad subclass must"
                " return 'imageeditor')."
                if custom
                else ""
            )
            raise AssertionError(f"the sketchpad's canvas never appeared; failed requests: {missing}.{hint}") from None
        return page

    yield open_
    for context in contexts:
        context.close()


def select_brush(page, tap=False):
    sketch = page.locator(SKETCH)
    brush = sketch.get_by_role("button", name="Brush", exact=True)
    brush.tap() if tap else brush.click()
    # The brush's own options appear once it is the active tool.
    expect(sketch.get_by_role("button", name="Brush Size", exact=True)).to_be_visible()


def clear_canvas(page):
    """Press the toolbar's Clear canvas and check the app picks the brush up again by itself.

    Clear puts the brush down at once (the hint to select the draw tool shows); the hint
    going away again and the brush's options showing mean the brush is back in hand.
    """
    sketch = page.locator(SKETCH)
    sketch.get_by_role("button", name="Clear canvas", exact=True).click()
    expect(sketch.get_by_text("select the draw tool to start")).to_be_hidden()
    expect(sketch.get_by_role("button", name="Brush Size", exact=True)).to_be_visible()


def select_model(page, model_id):
    radio = page.locator("#model").get_by_label(digitrec.MODELS[model_id]["name"], exact=True)
    radio.check()
    expect(radio).to_be_checked()


def image_source(page, selector):
    images = page.locator(selector)
    return images.first.get_attribute("src") if images.count() else None


def wait_for_new_images(page, before, timeout=None):
    """Wait until each image selector in ``before`` shows a source other than the one recorded there."""
    page.wait_for_function(
        """(before) => Object.entries(before).every(([selector, source]) => {
            const image = document.querySelector(selector);
            return image && image.getAttribute("src") && image.getAttribute("src") !== source;
        })""",
        arg=before,
        timeout=timeout,
    )


def predict(page, tap=False, heat_map=False, timeout=15_000):
    """Press Predict at once; wait for the new answer; return its top label and the processed image's source.

    The label, the processed image and the heat map arrive together, and a new drawing
    gives a processed image with a new (content-hashed) name, so a changed image source
    marks a new answer.
    """
    selectors = [PROCESSED_IMG, HEATMAP_IMG] if heat_map else [PROCESSED_IMG]
    before = {selector: image_source(page, selector) for selector in selectors}
    button = page.locator("#predict")
    button.tap() if tap else button.click()
    try:
        wait_for_new_images(page, before, timeout=timeout)
    except sync_api.TimeoutError:
        errors = page.locator(".toast-body").all_inner_texts()
        raise AssertionError(f"no new answer after Predict; the page said {errors}") from None
    expect(page.get_by_text("Draw a digit first")).to_have_count(0)
    return page.locator(LABEL_VALUE).inner_text().strip(), image_source(page, PROCESSED_IMG)


def draw(page, pendigits, writer, digit, touch=False):
    """Draw one held-out drawing (mouse or finger); return its dataset label."""
    strokes, truth = held_out_drawing(pendigits, writer, digit)
    (draw_with_touch if touch else draw_with_mouse)(page, on_screen(strokes, drawing_area(page)))
    return truth


def draw_and_predict(page, pendigits, writer, digit, touch=False, heat_map=False):
    """Draw one held-out drawing and press Predict the moment the pen lifts; return (label shown, true label)."""
    truth = draw(page, pendigits, writer, digit, touch)
    return predict(page, tap=touch, heat_map=heat_map)[0], truth


def save_screenshots(page, name, panels, docs_scale):
    """Save a full-page screenshot to test-artifacts/<name>.png and a small copy beside it (<name>-small.png).

    The copy puts side by side the ``panels`` (top, height) of the page, in CSS pixels,
    scaled by ``docs_scale``, and keeps it a small palette PNG under DOCS_MAX_BYTES. The
    README's screenshots are these copies, put in docs/ by ``DIGITREC_DOCS_SCREENSHOTS=1
    python -m pytest tests/test_browser.py -k screenshot``; a plain test run writes only
    under test-artifacts/ (ignored by git).
    """
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    full = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(full), full_page=True)
    with Image.open(full) as image:
        image = image.convert("RGB")
    ratio = image.width / page.viewport_size["width"]  # device pixels per CSS pixel
    crops = []
    for top, height in panels:
        top = max(0, min(top, image.height / ratio - height))
        crop = image.crop((0, round(top * ratio), image.width, round(min(top + height, image.height / ratio) * ratio)))
        crops.append(crop.resize((round(crop.width * docs_scale / ratio), round(crop.height * docs_scale / ratio)), Image.LANCZOS))
    gap = 12
    small = Image.new("RGB", (sum(c.width for c in crops) + gap * (len(crops) - 1), max(c.height for c in crops)), "white")
    x = 0
    for crop in crops:
        small.paste(crop, (x, 0))
        x += crop.width + gap
    docs = DOCS / f"{name}.png" if os.environ.get("DIGITREC_DOCS_SCREENSHOTS") else ARTIFACTS / f"{name}-small.png"
    small.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(docs, optimize=True)
    size = docs.stat().st_size
    assert size < DOCS_MAX_BYTES, f"{docs.name} is {size} bytes"
    return full, docs


def page_top(page, selector):
    """Return the top of an element in page (not viewport) CSS pixels."""
    return page.evaluate(
        "(selector) => document.querySelector(selector).getBoundingClientRect().top + window.scrollY", selector
    )


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("model", list(DESKTOP_PICKS))
def test_desktop_draw_and_predict(open_page, pendigits, model):
    page = open_page(viewport={"width": 1280, "height": 900})
    select_model(page, model)
    select_brush(page)
    misread = []
    for n, (writer, digit) in enumerate(DESKTOP_PICKS[model]):
        if n:
            clear_canvas(page)
        shown, truth = draw_and_predict(page, pendigits, writer, digit)
        if shown != truth:
            misread.append(f"writer {writer}'s {truth} read as {shown}")
    assert not misread, f"{model}: " + "; ".join(misread)


def test_desktop_screenshot(open_page, pendigits):
    """Draw one more held-out digit with the default model; save the page with its answer and heat map."""
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    writer, digit = SCREENSHOT_PICK
    shown, truth = draw_and_predict(page, pendigits, writer, digit, heat_map=True)
    page.mouse.move(0, 0)  # no brush cursor over the drawing
    save_screenshots(page, "desktop", panels=[(0, 1000)], docs_scale=0.75)
    assert shown == truth, f"cnn read writer {writer}'s {truth} as {shown}"


def test_empty_canvas_says_draw_first(open_page):
    """Predict and Compare on an empty canvas say so where the answer goes, and show no reading."""
    page = open_page(viewport={"width": 1280, "height": 900})
    for button in ("#predict", "#compare"):
        page.locator(button).click()
        expect(page.locator(LABEL_VALUE)).to_have_text("Draw a digit first.")
        expect(page.locator("#label .confidence-set, #label [data-testid='label-output-confidences']")).to_have_count(0)
        expect(page.locator(PROCESSED_IMG)).to_have_count(0)


def test_phone_touch_draw_predict_and_screenshot(open_page, pendigits):
    width = 390
    page = open_page(viewport={"width": width, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    canvas = page.locator(CANVAS).first.bounding_box()
    assert canvas["x"] >= 0 and canvas["x"] + canvas["width"] <= width, canvas
    predict_box = page.locator("#predict").bounding_box()
    assert predict_box["x"] >= 0 and predict_box["x"] + predict_box["width"] <= width, predict_box
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"

    select_brush(page, tap=True)
    writer, digit = PHONE_PICK
    shown, truth = draw_and_predict(page, pendigits, writer, digit, touch=True, heat_map=True)
    # Two phone screens side by side: the drawing, and the answer with what the model saw.
    screen = page.viewport_size["height"]
    save_screenshots(page, "phone", panels=[(0, screen), (page_top(page, "#label") - 16, screen)], docs_scale=1)
    assert shown == truth, f"cnn read writer {writer}'s {truth} as {shown} on a phone"


# --------------------------------------------------------------------------- hurried visitors
# Visitors do not wait for the sketchpad to hand its drawing over: each of these presses a
# button the moment the pen lifts (or the example is clicked), as people do.

HURRIED_PICKS = [(HELD_OUT_WRITERS[0], 7), (HELD_OUT_WRITERS[5], 4)]
EXAMPLE_LABEL = re.compile(r"drawn_(\d)\.png$")


def shown_answer(page, selector=LABEL_VALUE, timeout=15_000):
    """Wait until a label is shown (no spinner, no error) and return its top class."""
    expect(page.locator(selector)).to_have_count(1, timeout=timeout)
    return page.locator(selector).first.inner_text().strip()


def test_predict_right_after_pen_up(open_page, pendigits):
    """Draw, press Predict the moment the pen lifts, twice (the second after Clear): both read right."""
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    misread = []
    for n, (writer, digit) in enumerate(HURRIED_PICKS):
        if n:
            clear_canvas(page)
        truth = draw(page, pendigits, writer, digit)
        shown, _ = predict(page)
        if shown != truth:
            misread.append(f"writer {writer}'s {truth} read as {shown}")
    assert not misread, "; ".join(misread)


def test_example_after_a_drawing_is_what_predict_reads(open_page, pendigits):
    """Draw and read a digit, then click an example and press Predict at once: the example is read."""
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    writer, digit = HURRIED_PICKS[0]
    truth = draw(page, pendigits, writer, digit)
    shown, drawn_source = predict(page)
    assert shown == truth
    example = next(path for path in sorted((ROOT / "examples").glob("*.png")) if EXAMPLE_LABEL.search(path.name).group(1) != truth)
    example_truth = EXAMPLE_LABEL.search(example.name).group(1)
    row = sorted((ROOT / "examples").glob("*.png")).index(example)
    page.locator("#examples .gallery-item, #examples [data-testid^='dataset-cell-'][data-testid$='-0']").nth(row).click()
    shown, example_source = predict(page)
    assert shown == example_truth, f"after clicking the example {example.name}, Predict read {shown}"
    assert example_source != drawn_source


def test_clear_empties_every_panel_then_a_new_drawing_is_read(open_page, pendigits):
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    first, second = HURRIED_PICKS
    truth = draw(page, pendigits, *first)
    page.locator("#compare").click()
    assert shown_answer(page, "#compare-cnn [data-testid='label-output-value']") == truth
    clear_canvas(page)
    for selector in (LABEL_VALUE, "#compare-cnn [data-testid='label-output-value']", PROCESSED_IMG, HEATMAP_IMG):
        expect(page.locator(selector)).to_have_count(0)
    truth = draw(page, pendigits, *second)
    shown, _ = predict(page)
    assert shown == truth


def test_compare_after_a_new_drawing_never_contradicts_the_answer(open_page, pendigits):
    """Predict one drawing, draw another and press Compare at once: all panels show the new drawing."""
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    first, second = HURRIED_PICKS
    truth = draw(page, pendigits, *first)
    shown, first_source = predict(page)
    assert shown == truth
    clear_canvas(page)
    truth = draw(page, pendigits, *second)
    page.locator("#compare").click()
    answers = {model: shown_answer(page, f"#compare-{model} [data-testid='label-output-value']") for model in digitrec.MODEL_IDS}
    assert answers["cnn"] == truth, answers
    page.wait_for_function("(source) => document.querySelector('#processed img')?.getAttribute('src') !== source", arg=first_source)
    main = page.locator(LABEL_VALUE)
    assert main.count() == 0 or main.inner_text().strip() == answers["cnn"], (
        f"the main answer says {main.inner_text().strip()} beside the comparison's {answers['cnn']}"
    )


def test_yes_stores_the_shown_answer(open_page, pendigits, app_data_dir):
    import sqlite3

    def confirmed_rows():
        databases = list(app_data_dir.rglob("*.sqlite3"))
        if not databases:
            return []
        with sqlite3.connect(databases[0]) as db:
            return db.execute("SELECT label, predicted, model FROM corrections WHERE label = predicted").fetchall()

    before = len(confirmed_rows())
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    truth = draw(page, pendigits, *HURRIED_PICKS[1])
    shown, _ = predict(page)
    assert shown == truth
    page.locator("#confirm").click()
    expect(page.get_by_text(f"stored as a {shown} (confirmed)")).to_be_visible()
    rows = confirmed_rows()
    assert len(rows) == before + 1 and rows[-1] == (int(shown), int(shown), "cnn"), rows


def test_phone_answer_is_on_screen_after_predict(open_page, pendigits):
    """On a phone the drawing square takes the width, uncovered; tap Predict at once: the answer is in view."""
    width, height = 390, 844
    page = open_page(viewport={"width": width, "height": height}, device_scale_factor=2, is_mobile=True, has_touch=True)
    x, y, side = drawing_area(page)
    assert side >= 0.75 * width, f"the drawing square is {side:.0f} px wide on a {width} px screen"
    palette = page.locator(f"{SKETCH} .toolbar-wrap").first.bounding_box()
    overlaps = palette["x"] < x + side and x < palette["x"] + palette["width"] and palette["y"] < y + side and y < palette["y"] + palette["height"]
    assert not overlaps, f"the tool palette {palette} covers the drawing square {(x, y, side)}"
    select_brush(page, tap=True)
    truth = draw(page, pendigits, *PHONE_PICK, touch=True)
    shown, _ = predict(page, tap=True)
    assert shown == truth
    page.wait_for_timeout(800)  # any scrolling the page does by itself has finished
    box = page.locator(LABEL_VALUE).bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, (
        f"the answer is at y={box and box['y']:.0f}..{box and box['y'] + box['height']:.0f}, outside the {height}px screen"
    )


def canvas_uploads(page):
    """Return the requests that carried the canvas to the server (gradio's export: upload or blob routes)."""
    return page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/upload') || n.includes('component_server'))"
    )


def test_predict_reads_the_page_copy_without_uploading_the_canvas(open_page, pendigits):
    """Draw two digits (Clear between), Predict the moment the pen lifts: both right, and the canvas is never exported.

    The page copies the drawing out of the canvas itself (one small PNG) instead of
    gradio's export of three full-size PNGs and their upload, which is what a click waited for.
    """
    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    page.evaluate("performance.clearResourceTimings()")
    for n, (writer, digit) in enumerate(HURRIED_PICKS):
        if n:
            clear_canvas(page)
        truth = draw(page, pendigits, writer, digit)
        shown, _ = predict(page, heat_map=True)
        assert shown == truth, f"writer {writer}'s {truth} read as {shown}"
    assert canvas_uploads(page) == [], "the canvas was exported and uploaded"


def test_without_the_page_copy_the_canvas_export_answers(open_page, pendigits):
    """Where the page cannot copy the canvas (another gradio, another editor), Predict still reads the drawing."""
    page = open_page(viewport={"width": 1280, "height": 900})
    page.evaluate("window.__digitrec_apps = []")  # no pixi application to copy from
    select_brush(page)
    writer, digit = HURRIED_PICKS[1]
    truth = draw(page, pendigits, writer, digit)
    shown, _ = predict(page)
    assert shown == truth
    assert canvas_uploads(page), "the page did not fall back to gradio's export"


# Counts the editor's repaints of its on-screen canvas (pixi's Application.render draws the
# stage with no target; the editor's own renders into textures carry one).
COUNT_REPAINTS = """() => {
  const app = window.digitrec.app(), renderer = app.renderer, render = renderer.render.bind(renderer);
  window.__repaints = [];
  document.addEventListener('pointerup', () => { window.__pen_up = performance.now(); }, true);
  renderer.render = (options, ...rest) => {
    if (options && options.container === app.stage && !options.target && !rest.length) window.__repaints.push(performance.now());
    return render(options, ...rest);
  };
}"""


def ink_box(mask):
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([columns[0], rows[0], columns[-1], rows[-1]], np.float64)


def test_the_editor_rests_after_each_stroke_and_the_drawing_stays_on_screen(open_page, pendigits):
    """Draw a held-out digit stroke by stroke: after the pen lifts, the editor repaints at most twice, the ink on screen
    is the drawing the page copied, and Predict reads it.

    Without a GPU each repaint of the editor's canvas holds the page for ~0.1 s, and the
    editor repaints every frame for half a second after each pointer event: that, not the
    model, was most of the time between the pen lifting and a live answer (docs/browser.md).
    """
    import io

    from PIL import Image

    page = open_page(viewport={"width": 1280, "height": 900})
    select_brush(page)
    page.evaluate(COUNT_REPAINTS)
    writer, digit = HURRIED_PICKS[0]
    strokes, truth = held_out_drawing(pendigits, writer, digit)
    assert len(strokes) >= 2, "pick a drawing of several strokes: the editor must wake up again for each"
    area = drawing_area(page)
    draw_with_mouse(page, on_screen(strokes, area))
    page.wait_for_timeout(1500)
    repaints = page.evaluate("window.__repaints.filter((t) => t >= window.__pen_up).length")
    assert repaints <= 2, f"the editor repainted {repaints} times after the pen lifted"

    x, y, side = area
    shot = Image.open(io.BytesIO(page.screenshot(clip={"x": x, "y": y, "width": side, "height": side}))).convert("L")
    on_screen_ink = np.asarray(shot) < 128
    copied = page.evaluate("window.digitrec.png")
    with urllib.request.urlopen(copied) as response:  # a data: URL, the page's copy of the drawing
        copy = Image.open(io.BytesIO(response.read())).convert("RGBA")
    paper = Image.new("RGBA", copy.size, "white")
    copy_ink = np.asarray(Image.alpha_composite(paper, copy).convert("L").resize(shot.size)) < 128
    assert on_screen_ink.sum() > 0.5 * copy_ink.sum(), "the last strokes are not on screen"
    assert np.abs(ink_box(on_screen_ink) - ink_box(copy_ink)).max() < 0.05 * side
    shown, _ = predict(page)
    assert shown == truth
