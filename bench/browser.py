"""How right and how fast the page answers a hurried visitor, in a real browser.

    python -m bench.browser               # 20 tries per delay, the app beside the floor (~40 min on 2 cores)
    python -m bench.browser --tries 2     # a smoke run
    python -m bench.browser --capture-check   # accuracy at full size vs the page's half-size copy (no browser)

Headless Chromium (Debian's, through Playwright) draws held-out writers' digits (UCI
pendigits writers the models never saw) stroke by stroke with the mouse, and presses
Predict 0, 100, 300 and 1500 ms after the pen lifts. The same drawing, the same delay, on
two pages in one run, try by try: the app (``app.py``) and the floor (``bench/floor_app.py``:
a stock ``gr.Sketchpad`` and a Predict button with a no-op model). Times are read in the
page (``performance.now()``): click → label, click → heat map, and where the time goes (the
canvas's export and upload, the server's answer, the image download, the render). Then, in
live mode ("Predict as I draw"), pen-up → label. Right answers: the label shown is the
dataset's label (for the floor, the CNN's reading of the 28×28 image the floor answered with).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from digitrec import config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = config.text("DIGITREC_CHROMIUM")
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
# Strokes are simplified to within this many CSS pixels of the pen's path: far under the
# brush's ~19 px and the ~10 px a pixel of the 28×28 image covers, and it halves the
# pointer events, each of which costs ~0.1-0.3 s under software rendering on a busy machine.
TOLERANCE = 5.0
CANVAS = "#sketch .pixi-target canvas"
DELAYS_MS = (0, 100, 300, 1500)

# Installed in every page before its own scripts: records pen-ups, Predict clicks and every
# change of the answer panels, with the page's clock.
PROBE_JS = """
window.__probe = {ups: [], clicks: [], answers: []};
document.addEventListener('pointerup', () => window.__probe.ups.push(performance.now()), true);
document.addEventListener('click', (event) => {
  if (event.target.closest && event.target.closest('#predict')) window.__probe.clicks.push(performance.now());
}, true);
const snapshot = () => {
  const label = document.querySelector('#label [data-testid="label-output-value"]');
  const source = (selector) => document.querySelector(selector)?.getAttribute('src') || null;
  const toast = document.querySelector('.toast-body');
  const refused = label && label.textContent.includes('Draw a digit') ? label.textContent.trim() : null;
  return {label: label ? label.textContent.trim() : null, processed: source('#processed img'),
          heat: source('#heatmap img'), error: toast ? toast.textContent.trim() : refused};
};
let last = {};
const observe = () => new MutationObserver(() => {
  const now = snapshot();
  if (now.label !== last.label || now.processed !== last.processed || now.heat !== last.heat || now.error !== last.error) {
    window.__probe.answers.push({t: performance.now(), ...now});
    last = now;
  }
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
observe();
"""


# --------------------------------------------------------------------------- drawing like a person


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
    """Return (x, y, side) of the square drawing surface on screen, in CSS pixels.

    The pixi canvas element fills the whole editor; the drawing surface is a square in its
    middle, the page's ``canvas_size`` shown at the zoom the toolbar displays ("36%").
    """
    import re

    box = page.locator(CANVAS).first.bounding_box()
    zoom_text = page.locator("#sketch .zoom-number").inner_text()
    zoom = float(re.search(r"([\d.]+)\s*%", zoom_text).group(1)) / 100
    canvas = page.evaluate(
        "window.gradio_config.components.find(c => c.props && c.props.elem_id === 'sketch').props.canvas_size[0]"
    )
    side = canvas * zoom
    if side > box["width"] + 1 or side > box["height"] + 1:
        raise RuntimeError(f"the drawing surface ({side:.0f} px) is larger than its canvas {box}")
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


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# --------------------------------------------------------------------------- the two servers


def start(module_args, extra_env=None, timeout=180):
    """Start ``python <module_args>`` serving on a free loopback port; return (process, url)."""
    from bench.serve import free_port

    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", **(extra_env or {}))
    log = tempfile.NamedTemporaryFile(prefix="digitrec-bench-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, *module_args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    started = time.time()
    while time.time() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{module_args} exited: " + Path(log.name).read_text()[-2000:])
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{module_args} did not answer within {timeout} s")


def open_page(browser, url, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    context.add_init_script(PROBE_JS)
    page = context.new_page()
    page.goto(url)
    page.locator(CANVAS).first.wait_for(state="visible", timeout=60_000)
    brush = page.locator("#sketch").get_by_role("button", name="Brush", exact=True)
    brush.click()
    page.locator("#sketch").get_by_role("button", name="Brush Size", exact=True).wait_for(state="visible")
    return page


def clear(page):
    """Clear the canvas and let the page settle before the next try (not timed)."""
    page.locator("#sketch").get_by_role("button", name="Clear canvas", exact=True).click()
    page.evaluate("async () => { await window.digitrec?.settled(); }")
    brush_size = page.locator("#sketch").get_by_role("button", name="Brush Size", exact=True)
    if not brush_size.is_visible():
        page.locator("#sketch").get_by_role("button", name="Brush", exact=True).click()
    page.wait_for_timeout(1000)


# --------------------------------------------------------------------------- one try


def answer_after(page, since, previous_processed, field="processed", timeout=20.0):
    """Wait for the first answer recorded after ``since`` whose ``field`` is new; return it (or None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for answer in page.evaluate("window.__probe.answers"):
            if answer["t"] > since and (answer["error"] and "digit" in (answer["error"] or "")):
                return answer
            if answer["t"] > since and answer[field] and answer[field] != previous_processed and answer["label"]:
                return answer
        page.wait_for_timeout(20)
    return None


def steps_after(page, click):
    """Return (ms after the click) when the canvas upload, the answer and its image download ended."""
    entries = page.evaluate(
        "(click) => performance.getEntriesByType('resource').filter(e => e.startTime >= click - 1)"
        ".map(e => ({name: e.name, start: e.startTime, end: e.responseEnd}))",
        click,
    )
    uploads = [e["end"] for e in entries if "/upload" in e["name"]]
    files = [e for e in entries if "/file=" in e["name"]]
    answers = [e["end"] for e in entries if "/run/" in e["name"]]
    return {
        "uploaded": (max(uploads) - click) if uploads else 0.0,
        "answered": (min(e["start"] for e in files) - click) if files else ((min(answers) - click) if answers else None),
        "downloaded": (max(e["end"] for e in files) - click) if files else None,
    }


def one_try(page, strokes, delay_ms, is_app):
    """Draw, wait ``delay_ms`` after the pen lifts, press Predict; return what the page showed and when."""
    before = page.evaluate("window.__probe.answers.at(-1)?.processed ?? null")
    heat_before = page.evaluate("window.__probe.answers.at(-1)?.heat ?? null")
    page.evaluate("performance.clearResourceTimings()")
    draw_with_mouse(page, on_screen(strokes, drawing_area(page)))
    up = page.evaluate("window.__probe.ups.at(-1)")  # the pen's, before the click adds its own pointerup
    if delay_ms:
        page.wait_for_timeout(delay_ms)
    page.locator("#predict").click()
    click = page.evaluate("window.__probe.clicks.at(-1)")
    answer = answer_after(page, click, before)
    result = {"delay": click - up, "label": None, "processed": None, "click_label": None, "click_heat": None}
    if answer is None or answer.get("error") and not answer.get("label"):
        return result
    result.update(label=answer["label"], processed=answer["processed"], click_label=answer["t"] - click)
    if is_app:
        heat = answer_after(page, click, heat_before, field="heat", timeout=10.0)
        result["click_heat"] = heat["t"] - click if heat else None
        result["waited"] = page.evaluate("window.digitrec?.last_wait ?? null")
        result["copied"] = page.evaluate("window.digitrec?.copy_ms ?? null")
        taken_at = page.evaluate("window.digitrec?.taken_at ?? null")
        result["taken"] = taken_at - up if taken_at is not None and taken_at > up else None
    page.wait_for_timeout(300)  # let the downloads finish before reading their timings
    result.update(steps_after(page, click))
    return result


def live_try(page, strokes):
    """In live mode, draw and wait: return pen-up → label (ms) and the label."""
    before = page.evaluate("window.__probe.answers.at(-1)?.processed ?? null")
    draw_with_mouse(page, on_screen(strokes, drawing_area(page)))
    up = page.evaluate("window.__probe.ups.at(-1)")
    answer = answer_after(page, up, before)
    return (answer["t"] - up, answer["label"]) if answer else (None, None)


def floor_reading(url_or_path):
    """Return the CNN's reading of the 28×28 image the floor answered with (its input, preprocessed)."""
    import io

    from PIL import Image

    import digitrec

    with urllib.request.urlopen(url_or_path, timeout=10) as response:
        image = np.asarray(Image.open(io.BytesIO(response.read())).convert("L"), np.float32) / 255.0
    probs = digitrec.registry.classify(image, "cnn")
    return max(probs, key=probs.get)


# --------------------------------------------------------------------------- the run


def held_out_drawings(count, seed):
    """Return ``count`` (strokes, label) drawn by held-out writers, shuffled with ``seed``."""
    from training.strokes import HELD_OUT_WRITERS, load_pendigits

    digits, labels, writers = load_pendigits()
    index = np.flatnonzero(np.isin(writers, HELD_OUT_WRITERS))
    index = np.random.default_rng(seed).permutation(index)[:count]
    return [(digits[i], str(int(labels[i]))) for i in index]


def ms(values, q):
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else float("nan")


CHECKED_CONDITIONS = ("small, off-centre", "corner", "thin brush")  # where half size could lose detail


def capture_check(per_writer=150):
    """Print each model's accuracy on held-out drawings read at full size and at the page's copy size.

    The page sends the canvas copied at CAPTURE_SCALE; this shows what that costs, on the
    conditions where detail is scarcest, through the one preprocessing pipeline.
    """
    from PIL import Image

    import digitrec
    from digitrec.canvas import CAPTURE_SCALE
    from digitrec.preprocess import preprocess
    from training.heldout import held_out_digits
    from training.strokes import BENCHMARK_CONDITIONS, render

    digits, labels = held_out_digits(limit=per_writer)
    print(f"{len(digits)} held-out drawings per condition; accuracy (%) read at full size → at {CAPTURE_SCALE:g}×")
    print("| condition | " + " | ".join(digitrec.MODEL_IDS) + " |")
    print("| --- |" + " ---: |" * len(digitrec.MODEL_IDS))
    for name in CHECKED_CONDITIONS:
        canvases = [render(strokes, BENCHMARK_CONDITIONS[name]) for strokes in digits]
        side = round(canvases[0].shape[1] * CAPTURE_SCALE)
        full = np.stack([preprocess(canvas) for canvas in canvases])
        copied = np.stack([preprocess(np.asarray(Image.fromarray(canvas).resize((side, side), Image.BILINEAR)))
                           for canvas in canvases])
        cells = []
        for model_id in digitrec.MODEL_IDS:
            model = digitrec.get_model(model_id)
            before, after = (100 * float(np.mean(model.predict_proba(x).argmax(axis=1) == labels)) for x in (full, copied))
            cells.append(f"{before:.2f} → {after:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20, help="tries per delay (and in live mode)")
    parser.add_argument("--seed", type=int, default=0, help="which held-out drawings, in which order")
    parser.add_argument("--out", type=Path, help="also write the tables (Markdown) to this file")
    parser.add_argument("--capture-check", action="store_true",
                        help="only compare the models' accuracy at full size and at the page's copy size (no browser)")
    args = parser.parse_args(argv)
    if args.tries < 1:
        raise ValueError("--tries must be at least 1")
    if args.capture_check:
        capture_check()
        return

    from playwright import sync_api

    drawings = held_out_drawings(args.tries * (len(DELAYS_MS) + 1), args.seed)
    app, app_url = start(["app.py"], {"DIGITREC_CORRECTIONS_DIR": tempfile.mkdtemp(prefix="digitrec-bench-")})
    floor, floor_url = start(["-m", "bench.floor_app"])
    results = {("app", d): [] for d in DELAYS_MS} | {("floor", d): [] for d in DELAYS_MS}
    live = []
    started = time.time()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = launch(playwright)
            pages = {"app": open_page(browser, app_url), "floor": open_page(browser, floor_url)}
            n = 0
            for attempt in range(args.tries):
                for delay in DELAYS_MS:
                    strokes, truth = drawings[n]
                    n += 1
                    for name, page in pages.items():
                        result = one_try(page, strokes, delay, is_app=name == "app")
                        if name == "floor" and result["processed"]:
                            result["label"] = floor_reading(result["processed"])
                        result["right"] = result["label"] == truth
                        results[(name, delay)].append(result)
                        clear(page)
                    print(f"try {attempt + 1}/{args.tries}, {delay} ms: app {results[('app', delay)][-1]['label']}"
                          f" floor {results[('floor', delay)][-1]['label']} (truth {truth}), "
                          f"{time.time() - started:.0f} s", file=sys.stderr, flush=True)
            page = pages["app"]
            page.locator("#live input").check()
            for attempt in range(args.tries):
                strokes, truth = drawings[n]
                n += 1
                seconds, label = live_try(page, strokes)
                live.append({"pen_up_label": seconds, "right": label == truth})
                clear(page)
            browser.close()
    finally:
        for process in (app, floor):
            process.terminate()
            process.wait(10)
    report = format_report(results, live, args)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


def format_report(results, live, args):
    floor_p50 = ms([r["click_label"] for d in DELAYS_MS for r in results[("floor", d)]], 50)
    lines = [
        f"Held-out drawings drawn with the mouse in headless Chromium, {args.tries} tries per delay "
        f"(seed {args.seed}); times in ms, p50 / p90, read in the page.",
        "",
        "| Predict pressed after pen-up | pen-up → click, measured (p50) | app right | floor right "
        "| app click → label | floor click → label | app ÷ floor (p50) | app click → heat map |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for delay in DELAYS_MS:
        app, floor = results[("app", delay)], results[("floor", delay)]
        a = [r["click_label"] for r in app]
        f = [r["click_label"] for r in floor]
        lines.append(
            f"| {delay} ms | {ms([r['delay'] for r in app + floor], 50):.0f} ms | {sum(r['right'] for r in app)}/{len(app)} | {sum(r['right'] for r in floor)}/{len(floor)} "
            f"| {ms(a, 50):.0f} / {ms(a, 90):.0f} | {ms(f, 50):.0f} / {ms(f, 90):.0f} | {ms(a, 50) / ms(f, 50):.2f} "
            f"| {ms([r['click_heat'] for r in app], 50):.0f} / {ms([r['click_heat'] for r in app], 90):.0f} |"
        )
    every_app = [r for d in DELAYS_MS for r in results[("app", d)]]
    every_floor = [r for d in DELAYS_MS for r in results[("floor", d)]]
    a = [r["click_label"] for r in every_app]
    lines.append(
        f"| **all delays** | {ms([r['delay'] for r in every_app + every_floor], 50):.0f} ms "
        f"| {sum(r['right'] for r in every_app)}/{len(every_app)} "
        f"| {sum(r['right'] for r in every_floor)}/{len(every_floor)} | {ms(a, 50):.0f} / {ms(a, 90):.0f} "
        f"| {floor_p50:.0f} / {ms([r['click_label'] for r in every_floor], 90):.0f} | {ms(a, 50) / floor_p50:.2f} "
        f"| {ms([r['click_heat'] for r in every_app], 50):.0f} / {ms([r['click_heat'] for r in every_app], 90):.0f} |"
    )
    up = [r["pen_up_label"] for r in live]
    lines += [
        "",
        f"Live mode (\"Predict as I draw\"), app only: pen-up → label {ms(up, 50):.0f} / {ms(up, 90):.0f} ms, "
        f"{sum(r['right'] for r in live)}/{len(live)} right; the floor's click → label p50 is {floor_p50:.0f} ms.",
        "",
        "Where a click's time goes (ms after the click, p50 over all delays; the app's first step is the wait "
        "for the drawing taken at pen-up):",
        "",
        "| step | app | floor |",
        "| --- | ---: | ---: |",
        f"| waited for the drawing to be taken | {ms([r.get('waited') for r in every_app], 50):.0f} | — |",
        f"| canvas exported and uploaded | {ms([r['uploaded'] for r in every_app], 50):.0f} "
        f"| {ms([r['uploaded'] for r in every_floor], 50):.0f} |",
        f"| answer received (queue or request, model) | {ms([r['answered'] for r in every_app], 50):.0f} "
        f"| {ms([r['answered'] for r in every_floor], 50):.0f} |",
        f"| 28×28 image downloaded | {ms([r['downloaded'] for r in every_app], 50):.0f} "
        f"| {ms([r['downloaded'] for r in every_floor], 50):.0f} |",
        f"| label shown | {ms(a, 50):.0f} | {floor_p50:.0f} |",
        "",
        "Between pen-up and click (app, p50): the drawing was copied out of the canvas in "
        f"{ms([r.get('copied') for r in every_app], 50):.0f} ms and was in the session "
        f"{ms([r.get('taken') for r in every_app], 50):.0f} ms after the last pen-up "
        "(when that came before the click: a click that comes first waits for it, the first step above).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
