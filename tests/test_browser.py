"""The real app in a real browser: draw held-out pen trajectories on the sketchpad, read the label.

Headless Chromium (the system's, never a downloaded one) drives the app the way a visitor
does: select the brush, draw a digit stroke by stroke (mouse on a desktop, touch on a
phone), press Predict and read the label. The drawings are UCI pendigits trajectories by
the held-out writers the models never saw; the label each is checked against is the
dataset's own. Screenshots go to ``test-artifacts/`` and small copies to ``docs/`` for the
README.

The sketchpad hands its drawing to the server about a second after the pen lifts (longer
on a loaded machine); a Predict pressed before that reads the previous drawing. So after
the last stroke the test waits for that hand-over (the sketch's change event reaching
the server, then quiet) before pressing Predict.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from playwright import sync_api  # noqa: E402

expect = sync_api.expect

from training.strokes import HELD_OUT_WRITERS, load_pendigits  # noqa: E402

import digitrec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("DIGITREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_MAX_BYTES = 150_000
# Strokes are simplified to within this many CSS pixels of the pen's path: far under the
# brush's ~19 px and the ~10 px a pixel of the 28×28 image covers, and it halves the
# pointer events, each of which costs ~0.1-0.3 s under software rendering on a busy machine.
TOLERANCE = 3.0

SKETCH = "#sketch"
CANVAS = "#sketch .pixi-target canvas"
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
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"no Chromium at {CHROMIUM}"
)


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


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer–Douglas–Peucker: drop points within ``tolerance`` of the polyline through the rest.

    The brush joins successive pointer positions with straight segments, so this draws
    the same ink with fewer (slow, under software rendering) pointer events.
    """
    if len(points) < 3:
        return points
    start, end = points[0], points[-1]
    dx, dy = end - start
    length = np.hypot(dx, dy)
    if length == 0:
        distance = np.hypot(*(points - start).T)
    else:
        distance = np.abs(dx * (points[:, 1] - start[1]) - dy * (points[:, 0] - start[0])) / length
    worst = int(np.argmax(distance))
    if distance[worst] <= tolerance:
        return np.array([start, end])
    return np.concatenate([simplify(points[: worst + 1], tolerance)[:-1], simplify(points[worst:], tolerance)])


def drawing_area(page):
    """Return (x, y, side) of the 800×800 drawing surface on screen, in CSS pixels.

    The pixi canvas element fills the whole editor; the drawing surface is a square in its
    middle, shown at the zoom the toolbar displays ("36%").
    """
    box = page.locator(CANVAS).first.bounding_box()
    zoom_text = page.locator(f"{SKETCH} .zoom-number").inner_text()
    zoom = float(re.search(r"([\d.]+)\s*%", zoom_text).group(1)) / 100
    side = 800 * zoom
    assert side <= box["width"] + 1 and side <= box["height"] + 1, (side, box)
    return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side


def on_screen(strokes, area, fraction=0.6):
    """Map a drawing's strokes (0..500 box, y down) into the middle ``fraction`` of the drawing area."""
    x0, y0, side = area
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = fraction * side / max(float((high - low).max()), 1.0)
    middle = (low + high) / 2
    centre = np.array([x0 + side / 2, y0 + side / 2])
    return [simplify((np.asarray(s, np.float64) - middle) * scale + centre, tolerance=TOLERANCE) for s in strokes]


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


class SketchHandOver:
    """Watch the requests by which the sketchpad hands its drawing to the server.

    About a second after a stroke the sketchpad posts its layers to ``component_server``
    and then fires its change event (a ``queue/join`` for the dependency listening to the
    sketch's ``change``). ``wait(since)`` returns once layers were posted after ``since``,
    a change event followed, and both have then been quiet for ``quiet`` seconds (a stroke
    finished while an earlier hand-over was in flight is handed over right after it).
    Clearing the canvas fires a change without posting layers, so it does not count.
    """

    def __init__(self, page, quiet=0.6):
        self.page, self.quiet = page, quiet
        self.change_fns = set(
            page.evaluate(
                """() => {
                    const config = window.gradio_config;
                    const sketch = config.components.find(c => c.props && c.props.elem_id === "sketch");
                    return config.dependencies
                        .filter(d => d.targets.some(([id, event]) => id === sketch.id && event === "change"))
                        .map(d => d.id);
                }"""
            )
        )
        self.layers, self.changes = [], []
        page.on("request", self._seen)

    def _seen(self, request):
        if request.method != "POST":
            return
        if "/component_server" in request.url:
            self.layers.append(time.monotonic())
        elif "/queue/join" in request.url and (request.post_data_json or {}).get("fn_index") in self.change_fns:
            self.changes.append(time.monotonic())

    def _handed_over(self, since):
        posted = [t for t in self.layers if t > since]
        if not posted:
            return False
        if not self.change_fns:  # nothing listens to the sketch's change: the posted layers are the sign
            return time.monotonic() - max(posted) > self.quiet
        changed = [t for t in self.changes if t > posted[0]]
        return bool(changed) and time.monotonic() - max(changed + posted) > self.quiet

    def wait(self, since, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._handed_over(since):
                self.page.remove_listener("request", self._seen)
                return
            self.page.wait_for_timeout(100)  # lets playwright deliver the request events
        raise AssertionError(f"the sketchpad did not hand its drawing to the server within {timeout} s")


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


def draw_with_mouse(page, strokes):
    """Draw each stroke as press, drag through its points, release; return when the pen last lifted."""
    for stroke in strokes:
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x, y)
        if len(stroke) == 1:
            page.mouse.move(stroke[0][0] + 1, stroke[0][1] + 1)
        page.mouse.up()
    return time.monotonic()


def draw_with_touch(page, strokes):
    """Draw each stroke with one finger through CDP touch events; return when the finger last lifted."""
    client = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = list(stroke) if len(stroke) > 1 else [stroke[0], stroke[0] + 1]
        x, y = points[0]
        client.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for x, y in points[1:]:
            client.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        client.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    client.detach()
    return time.monotonic()


def image_source(page, selector):
    images = page.locator(selector)
    return images.first.get_attribute("src") if images.count() else None


def wait_for_new_images(page, before):
    """Wait until each image selector in ``before`` shows a source other than the one recorded there."""
    page.wait_for_function(
        """(before) => Object.entries(before).every(([selector, source]) => {
            const image = document.querySelector(selector);
            return image && image.getAttribute("src") && image.getAttribute("src") !== source;
        })""",
        arg=before,
    )


def predict(page, tap=False, heat_map=False):
    """Press Predict; wait for the new label and processed image (and heat map if asked); return the top label.

    The label and the processed image arrive together, and a new drawing gives a processed
    image with a new (content-hashed) name, so a changed image source marks a new result.
    """
    selectors = [PROCESSED_IMG, HEATMAP_IMG] if heat_map else [PROCESSED_IMG]
    before = {selector: image_source(page, selector) for selector in selectors}
    button = page.locator("#predict")
    button.tap() if tap else button.click()
    wait_for_new_images(page, before)
    expect(page.get_by_text("Draw a digit first")).to_have_count(0)
    return page.locator(LABEL_VALUE).inner_text().strip()


def draw_and_predict(page, pendigits, writer, digit, touch=False, heat_map=False):
    """Draw one held-out drawing, press Predict; return (label shown, true label)."""
    strokes, truth = held_out_drawing(pendigits, writer, digit)
    hand_over = SketchHandOver(page)
    lifted = (draw_with_touch if touch else draw_with_mouse)(page, on_screen(strokes, drawing_area(page)))
    hand_over.wait(since=lifted)
    return predict(page, tap=touch, heat_map=heat_map), truth


def save_screenshots(page, name, panels, docs_scale):
    """Save a full-page screenshot to test-artifacts/<name>.png and a small copy to docs/<name>.png.

    The copy puts side by side the ``panels`` (top, height) of the page, in CSS pixels,
    scaled by ``docs_scale``, and keeps it a small palette PNG under DOCS_MAX_BYTES.
    """
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    DOCS.mkdir(exist_ok=True)
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
    docs = DOCS / f"{name}.png"
    small.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(docs, optimize=True)
    size = docs.stat().st_size
    assert size < DOCS_MAX_BYTES, f"docs/{name}.png is {size} bytes"
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
    page = open_page(viewport={"width": 1280, "height": 900})
    page.locator("#predict").click()
    expect(page.get_by_text("Draw a digit first")).to_be_visible()
    expect(page.locator(LABEL_VALUE)).to_have_count(0)


def test_phone_touch_draw_and_predict(open_page, pendigits):
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
