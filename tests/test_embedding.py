"""The app used from elsewhere: inside an <iframe> of a plain page, and by another Gradio app.

The iframe test serves a plain HTML page on 127.0.0.1 (another port: another origin) whose
only content is the app in an <iframe>; the browser draws a held-out digit inside the
frame and presses Predict there. The app-to-app test starts a second Gradio app on
127.0.0.1 whose function calls this one's ``/read_digit`` through gradio_client.
"""

from __future__ import annotations

import base64
import http.server
import threading
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from bench.browser import CANVAS, CHROMIUM, draw_with_mouse, drawing_area, on_screen
from conftest import free_port, png_bytes
from test_browser import LABEL_VALUE, browser, held_out_drawing, pendigits, predict, select_brush  # noqa: F401
from training.strokes import HELD_OUT_WRITERS

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not

FRAME_SIZE = {"width": 1240, "height": 1500}
HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>A page that embeds digitrec</title></head>
<body style="margin: 0">
<h1 style="font: 16px sans-serif; margin: 8px">Someone else's page</h1>
<iframe id="digitrec" src="{url}" width="{width}" height="{height}" style="border: 0"></iframe>
</body></html>
"""


@pytest.fixture(scope="module")
def host_page(app_url):
    """Serve the plain page embedding the app on 127.0.0.1; yield its URL."""
    body = HOST_PAGE.format(url=app_url, **FRAME_SIZE).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: pytest's output stays readable
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
@pytest.mark.parametrize("writer, digit", [(HELD_OUT_WRITERS[3], 3), (HELD_OUT_WRITERS[5], 8)])
def test_draw_and_predict_inside_an_iframe(browser, host_page, app_url, pendigits, writer, digit):  # noqa: F811
    context = browser.new_context(viewport={"width": FRAME_SIZE["width"] + 20, "height": FRAME_SIZE["height"] + 60})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(host_page)
        frame = page.locator("#digitrec").element_handle().content_frame()
        assert frame.url == app_url
        frame.locator(CANVAS).first.wait_for(state="visible", timeout=60_000)
        select_brush(frame)
        strokes, truth = held_out_drawing(pendigits, writer, digit)
        # The frame's boxes are in the page's coordinates, where the mouse moves.
        draw_with_mouse(page, on_screen(strokes, drawing_area(frame)))
        label, processed = predict(frame, timeout=30_000)
        assert label == truth
        assert processed
    finally:
        context.close()


def test_another_gradio_app_uses_this_one(app_url, one_per_label, tmp_path):
    """A second app's function asks this one to read a drawing; its caller gets this app's answer."""
    def read_with_digitrec(image_path: str) -> str:
        """Read the digit in a file by asking the digitrec app."""
        text = base64.b64encode(Path(image_path).read_bytes()).decode("ascii")
        answer = Client(app_url, verbose=False).predict(text, "cnn", api_name="/read_digit")
        return f"digitrec reads a {answer['digit']} ({answer['confidence']:.0%})"

    with gr.Blocks() as other:
        image = gr.Image(type="filepath")
        verdict = gr.Textbox()
        image.upload(read_with_digitrec, image, verdict, api_name="read")
    other.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        for digit in (1, 4, 7):
            path = tmp_path / f"{digit}.png"
            path.write_bytes(png_bytes(Image.fromarray(one_per_label[digit])))
            said = Client(other.local_url, verbose=False).predict(handle_file(str(path)), api_name="/read")
            assert said.startswith(f"digitrec reads a {digit} ("), said
    finally:
        other.close()
