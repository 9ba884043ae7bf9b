"""The sketchpad's store of uploaded drawings: readable by every event, never piling up."""

from __future__ import annotations

import time

from digitrec.canvas import RecentDrawings


def test_a_read_drawing_stays_readable_until_it_expires():
    drawings = RecentDrawings(keep=0.2, limit=10)
    drawings["a"] = "drawing a"
    assert drawings.pop("a") == "drawing a"  # what gradio calls after the first event read it
    assert drawings.get("a") == "drawing a"  # a second event (Predict after live) still reads it
    assert drawings.pop("a") == "drawing a"  # a second read does not push the expiry back
    time.sleep(0.3)
    drawings["b"] = "drawing b"
    assert "a" not in drawings and drawings.get("b") == "drawing b"


def test_unread_drawings_beyond_the_limit_drop_the_oldest():
    drawings = RecentDrawings(keep=60, limit=3)
    for n in range(5):
        drawings[str(n)] = n
    assert list(drawings) == ["2", "3", "4"]


def test_an_updated_drawing_moves_to_the_newest_and_is_fresh_again():
    drawings = RecentDrawings(keep=0.2, limit=2)
    drawings["a"] = 1
    drawings["b"] = 2
    drawings.pop("a")
    drawings["a"] = 3  # the browser uploads another layer under the same id
    time.sleep(0.3)
    drawings["c"] = 4
    assert list(drawings) == ["a", "c"]


def test_kept_drawings_stay_under_their_byte_cap_oldest_first():
    from gradio.components.image_editor import EditorDataBlobs

    drawings = RecentDrawings(keep=60, limit=100, max_bytes=250)
    for n in range(5):
        drawings[str(n)] = EditorDataBlobs(background=None, layers=[], composite=bytes(100))
    assert list(drawings) == ["3", "4"] and drawings.bytes == 200
    drawings["4"] = EditorDataBlobs(background=bytes(100), layers=[], composite=bytes(100))  # grown: the oldest goes
    assert list(drawings) == ["4"] and drawings.bytes == 200


def test_upload_checks_refuse_oversized_files_and_images_before_decoding():
    from PIL import Image

    from conftest import png_bytes
    from digitrec import canvas

    assert canvas._problem(png_bytes(Image.new("L", (800, 800), 255))) is None
    status, message = canvas._problem(png_bytes(Image.new("L", (4096, 4096), 255)))
    assert status == 413 and "too large" in message  # within MAX_SIDE, but over MAX_PIXELS
    status, message = canvas._problem(b"\0" * (canvas.MAX_FILE_BYTES + 1))
    assert status == 413 and "too large" in message
    status, message = canvas._problem(b"not an image")
    assert status == 400 and "not a PNG" in message
