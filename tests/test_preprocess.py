"""The preprocessing pipeline, step by step, on drawings constructed here with PIL.

Every accepted way of sending the same drawing (array shapes, PIL modes, PNG files and
bytes, sketchpad dicts, transparent backgrounds, white-on-black) must give the same 28×28
image; empty drawings raise EmptyDrawingError("Draw a digit first."); anything unreadable
raises InvalidImageError with a short message.
"""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

import digitrec
from conftest import png_bytes
from digitrec.preprocess import (
    BOX,
    SIZE,
    centre_by_mass,
    crop_to_ink,
    fit_box,
    preprocess,
    stroke_width,
    to_ink,
)

CANVAS = 800
PAPER = {"RGB": (255, 255, 255), "RGBA": (255, 255, 255, 0)}
INK = {"RGB": (0, 0, 0), "RGBA": (0, 0, 0, 255)}


# ---------------------------------------------------------------- drawing helpers


def ring(draw, ink):
    """A "0"-ish ring, small and in the top-left corner of the canvas."""
    draw.ellipse((40, 60, 200, 260), outline=ink, width=30)


def tail(draw, ink):
    """A stroke hanging off the ring, making a "9"-ish digit (drawn on its own layer below)."""
    draw.line([(190, 160), (185, 330)], fill=ink, width=30)


def bar(draw, ink):
    """A tall thin "1": a vertical bar 31 px wide and 501 px tall."""
    draw.rectangle((300, 150, 330, 650), fill=ink)


def paint(*strokes, mode="RGB", size=(CANVAS, CANVAS), paper=None):
    """Return a PIL image of ``mode`` with the strokes drawn in black on white (or transparent) paper."""
    image = Image.new(mode, size, paper if paper is not None else PAPER[mode])
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        stroke(draw, INK[mode])
    return image


def brush_path(brush, canvas=CANVAS):
    """A "2"-like path drawn large on the canvas with a round brush ``brush`` px wide."""
    points = [(230, 250), (300, 150), (450, 130), (560, 220), (540, 360), (250, 650), (600, 650)]
    image = Image.new("RGB", (canvas, canvas), PAPER["RGB"])
    draw = ImageDraw.Draw(image)
    draw.line(points, fill=INK["RGB"], width=brush, joint="curve")
    r = brush / 2
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=INK["RGB"])
    return np.asarray(image)


def with_png_size(data, width, height):
    """Return PNG ``data`` with its IHDR claiming another size (a decompression-bomb header)."""
    assert data[12:16] == b"IHDR"
    ihdr = data[16:29]
    ihdr = struct.pack(">II", width, height) + ihdr[8:]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[16 + 13 + 4 :]


def centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    return (rows * image).sum() / mass, (cols * image).sum() / mass


def ink_box(image, threshold=0.0):
    """Return (height, width) of the bounding box of pixels above ``threshold``."""
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.fixture(scope="module")
def drawing():
    """The reference drawing (ring + tail, white RGB) and its 28×28 output."""
    rgb = paint(ring, tail)
    return rgb, preprocess(rgb)


# ---------------------------------------------------------------- the output


@pytest.mark.parametrize("method", ["mnist", "plain", "legacy"])
def test_output_is_28x28_float_in_unit_range(drawing, method):
    out = preprocess(drawing[0], method=method)
    assert out.shape == (SIZE, SIZE)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() > 0.5  # the digit is there, ink = 1
    assert out[0].max() == 0 and out[-1].max() == 0 and out[:, 0].max() == 0 and out[:, -1].max() == 0


def test_unknown_method_raises_value_error(drawing):
    with pytest.raises(ValueError, match="bogus"):
        preprocess(drawing[0], method="bogus")


@pytest.mark.parametrize("method", ["mnist", "plain"])
@pytest.mark.parametrize(
    "strokes",
    [(ring,), (ring, tail), (bar,)],
    ids=["ring", "ring+tail", "bar"],
)
def test_off_centre_digit_is_centred_by_mass_and_boxed_to_20(strokes, method):
    out = preprocess(paint(*strokes), method=method)
    row, col = centre_of_mass(out)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert max(ink_box(out)) == BOX


def test_tall_thin_one_is_not_stretched_but_legacy_stretches_it():
    one = paint(bar)
    height, width = ink_box(preprocess(one))
    assert height == BOX
    assert width <= BOX // 4
    legacy_height, legacy_width = ink_box(preprocess(one, method="legacy"))
    assert legacy_height == BOX and legacy_width == BOX


def test_legacy_puts_any_drawing_in_the_central_20x20_box(drawing):
    out = preprocess(drawing[0], method="legacy")
    pad = (SIZE - BOX) // 2
    inside = out[pad : pad + BOX, pad : pad + BOX]
    assert out.sum() == pytest.approx(inside.sum())
    assert ink_box(out) == (BOX, BOX)


# ---------------------------------------------------------------- each step


def test_to_ink_reads_black_as_one_and_paper_as_zero():
    image = np.full((40, 50, 3), 255, np.uint8)
    image[10:20, 5:15] = 0
    image[30:35, 30:40] = 128
    ink = to_ink(image)
    assert ink.shape == (40, 50) and ink.dtype == np.float32
    assert np.allclose(ink[10:20, 5:15], 1.0)
    assert np.allclose(ink[30:35, 30:40], 1 - 128 / 255, atol=1e-6)
    assert np.allclose(ink[:5], 0.0, atol=1e-6)


def test_to_ink_honours_alpha():
    image = np.zeros((40, 40, 4), np.uint8)  # transparent black paper
    image[5:15, 5:15] = (0, 0, 0, 255)  # opaque black ink
    image[20:30, 20:30] = (0, 0, 0, 128)  # half-transparent black ink
    image[30:35, 5:10] = (255, 255, 255, 255)  # opaque white paint is paper
    ink = to_ink(image)
    assert np.allclose(ink[5:15, 5:15], 1.0)
    assert np.allclose(ink[20:30, 20:30], 128 / 255, atol=1e-6)
    assert np.allclose(ink[30:35, 5:10], 0.0, atol=1e-6)
    assert np.allclose(ink[:, 36:], 0.0)


def test_crop_to_ink_keeps_full_resolution_bounding_box():
    ink = np.zeros((100, 120), np.float32)
    ink[20:61, 30:45] = 1.0
    ink[70, 100] = 0.1  # faint noise below the threshold is not ink
    crop = crop_to_ink(ink)
    assert crop.shape == (41, 15)
    assert np.array_equal(crop, ink[20:61, 30:45])


@pytest.mark.parametrize("shape", [(300, 60), (60, 300), (7, 5), (100, 100)])
def test_fit_box_scales_the_longer_side_keeping_aspect_ratio(shape):
    crop = np.ones(shape, np.float32) * 0.7
    digit = fit_box(crop, BOX)
    assert max(digit.shape) == BOX
    assert digit.shape[0] / digit.shape[1] == pytest.approx(shape[0] / shape[1], rel=0.15)
    assert digit.max() == pytest.approx(1.0)  # full contrast
    assert digit.min() >= 0.0


@pytest.mark.parametrize("width", [3, 8, 15])
def test_stroke_width_of_a_bar_is_its_width(width):
    binary = np.zeros((200, 100), bool)
    binary[20:180, 40 : 40 + width] = True
    assert stroke_width(binary) == pytest.approx(width, rel=0.1)
    assert stroke_width(np.zeros((10, 10), bool)) == 0.0


@pytest.mark.parametrize("shape", [(20, 6), (20, 20), (9, 20)])
def test_centre_by_mass_puts_the_centre_of_mass_at_14(shape):
    rng = np.random.default_rng(0)
    digit = rng.random(shape).astype(np.float32)
    out = centre_by_mass(digit)
    assert out.shape == (SIZE, SIZE)
    assert out.sum() == pytest.approx(digit.sum(), rel=1e-5)  # nothing cut off
    row, col = centre_of_mass(out)
    assert abs(row - 14) <= 0.5 + 1e-6 and abs(col - 14) <= 0.5 + 1e-6


def _output_stroke_width(image, method):
    return stroke_width(preprocess(image, method=method) >= 0.5)


@pytest.mark.parametrize("thin, fat", [(12, 60), (12, 120)])
def test_stroke_width_is_normalised_across_brushes(thin, fat):
    thin, fat = brush_path(thin), brush_path(fat)
    plain_gap = abs(_output_stroke_width(fat, "plain") - _output_stroke_width(thin, "plain"))
    mnist_gap = abs(_output_stroke_width(fat, "mnist") - _output_stroke_width(thin, "mnist"))
    assert mnist_gap < plain_gap


def test_hairline_is_thickened_and_fat_brush_thinned():
    hairline, fat = brush_path(12), brush_path(120)
    assert _output_stroke_width(hairline, "mnist") > _output_stroke_width(hairline, "plain")
    assert _output_stroke_width(fat, "mnist") < _output_stroke_width(fat, "plain")


# ---------------------------------------------------------------- every input form gives the same image


def test_transparent_rgba_equals_white_rgb_exactly(drawing):
    rgb, expected = drawing
    rgba = paint(ring, tail, mode="RGBA")
    assert np.array_equal(preprocess(rgba), expected)
    assert np.array_equal(preprocess(np.asarray(rgba)), expected)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The reference drawing's pieces, built once: images, layers and a PNG file."""
    rgb = paint(ring, tail)
    path = tmp_path_factory.mktemp("forms") / "digit.png"
    rgb.save(path)
    return {
        "rgb": rgb,
        "rgba": paint(ring, tail, mode="RGBA"),
        "grey": np.asarray(rgb.convert("L")),
        "layer_ring": paint(ring, mode="RGBA"),
        "layer_tail": paint(tail, mode="RGBA"),
        "white": np.full((CANVAS, CANVAS, 4), 255, np.uint8),
        "path": path,
    }


FORMS = {  # name → function of the parts giving one accepted way of sending the drawing
    "array (H,W) uint8": lambda p: p["grey"],
    "array (H,W,1)": lambda p: p["grey"][:, :, None],
    "array (H,W,3)": lambda p: np.asarray(p["rgb"]),
    "array (H,W,4) opaque": lambda p: np.asarray(p["rgb"].convert("RGBA")),
    "array (H,W,4) transparent white paper": lambda p: np.asarray(p["rgba"]),
    "array (H,W,4) transparent black paper": lambda p: np.asarray(paint(ring, tail, mode="RGBA", paper=(0, 0, 0, 0))),
    "array (H,W,3) non-contiguous": lambda p: np.asarray(p["rgb"])[:, :, ::-1],
    "array (H,W) float [0,1]": lambda p: p["grey"] / 255.0,
    "array (H,W) float [0,255]": lambda p: p["grey"].astype(np.float64),
    "array (H,W,3) float32 [0,1]": lambda p: np.asarray(p["rgb"], np.float32) / 255,
    "array (H,W) uint16": lambda p: p["grey"].astype(np.uint16) * 257,
    "array (H,W) bool, True = paper": lambda p: p["grey"] > 127,
    "PIL L": lambda p: p["rgb"].convert("L"),
    "PIL RGB": lambda p: p["rgb"],
    "PIL RGBA transparent": lambda p: p["rgba"],
    "PIL P": lambda p: p["rgb"].convert("P"),
    "PIL I;16": lambda p: Image.fromarray(p["grey"].astype(np.uint16) * 257),
    "PIL LA": lambda p: p["rgb"].convert("LA"),
    "PIL 1": lambda p: p["rgb"].convert("1"),
    "PIL CMYK": lambda p: p["rgb"].convert("CMYK"),
    "PNG path str": lambda p: str(p["path"]),
    "PNG path Path": lambda p: p["path"],
    "PNG bytes": lambda p: png_bytes(p["rgb"]),
    "PNG bytes, transparent": lambda p: bytearray(png_bytes(p["rgba"])),
    "sketch with composite": lambda p: {
        "background": p["white"],
        "layers": [np.asarray(p["rgba"])],
        "composite": np.asarray(p["rgb"].convert("RGBA")),
    },
    "sketch with PIL composite and id": lambda p: {"id": "x", "background": None, "layers": [], "composite": p["rgb"]},
    "sketch with composite path": lambda p: {"background": None, "layers": [], "composite": str(p["path"])},
    "sketch, composite None, one layer": lambda p: {
        "background": p["white"],
        "layers": [np.asarray(p["rgba"])],
        "composite": None,
    },
    "sketch, composite None, two layers": lambda p: {
        "background": p["white"],
        "layers": [np.asarray(p["layer_ring"]), np.asarray(p["layer_tail"])],
        "composite": None,
    },
    "sketch, composite None, no background": lambda p: {
        "background": None,
        "layers": [np.asarray(p["layer_ring"]), np.asarray(p["layer_tail"])],
        "composite": None,
    },
    "sketch, composite None, PIL parts": lambda p: {
        "background": Image.new("RGB", (CANVAS, CANVAS), "white"),
        "layers": (p["layer_ring"], p["layer_tail"]),
        "composite": None,
    },
    "white on black (H,W)": lambda p: 255 - p["grey"],
    "white on black (H,W,3)": lambda p: 255 - np.asarray(p["rgb"]),
}


@pytest.mark.parametrize("name", list(FORMS))
def test_every_input_form_gives_the_same_image(drawing, parts, name):
    np.testing.assert_allclose(preprocess(FORMS[name](parts)), drawing[1], atol=1e-5)


def test_the_forms_cover_every_pil_mode(parts):
    modes = {value.mode for value in (f(parts) for f in FORMS.values()) if isinstance(value, Image.Image)}
    assert {"L", "RGB", "RGBA", "P", "I;16", "LA", "1", "CMYK"} <= modes


def test_anti_aliased_transparent_drawing_equals_its_composite_on_white():
    """A browser canvas anti-aliases: edge pixels are black with partial alpha."""
    big = Image.new("RGBA", (4 * CANVAS, 4 * CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.ellipse((160, 240, 800, 1040), outline=(0, 0, 0, 255), width=120)
    layer = big.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)  # premultiplied: edges get partial alpha
    alpha = np.asarray(layer)[:, :, 3]
    assert ((alpha > 0) & (alpha < 255)).any()
    on_white = Image.alpha_composite(Image.new("RGBA", layer.size, (255, 255, 255, 255)), layer).convert("RGB")
    np.testing.assert_allclose(preprocess(layer), preprocess(on_white), atol=0.02)


def test_white_on_black_equals_its_inverted_twin():
    grey = np.asarray(paint(bar, ring).convert("L"))
    np.testing.assert_allclose(preprocess(255 - grey), preprocess(grey), atol=1e-6)
    # a small MNIST-like image: white digit on black, 28×28
    small = np.zeros((28, 28), np.uint8)
    small[6:22, 12:16] = 255
    np.testing.assert_allclose(preprocess(small), preprocess(255 - small), atol=1e-6)


def test_image_size_does_not_matter():
    """The same drawing on an 800×800 and on a 300×200 canvas reads alike (same box, same centre)."""
    big = paint(ring, tail)
    small = preprocess(big.resize((300, 200), Image.Resampling.LANCZOS))
    assert max(ink_box(small, 0.5)) == pytest.approx(max(ink_box(preprocess(big), 0.5)), abs=1)
    assert np.abs(np.array(centre_of_mass(small)) - 14).max() <= 1


# ---------------------------------------------------------------- empty drawings


def _empty_inputs():
    white = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    return {
        "None": None,
        "empty sketch": {"background": None, "layers": [], "composite": None},
        "sketch, white background, empty layer": {
            "background": np.full((CANVAS, CANVAS, 4), 255, np.uint8),
            "layers": [np.zeros((CANVAS, CANVAS, 4), np.uint8)],
            "composite": None,
        },
        "sketch, white composite": {"background": None, "layers": [], "composite": white},
        "all-white RGB": white,
        "all-white grey": np.full((100, 100), 255, np.uint8),
        "all-white PIL": Image.new("RGB", (200, 200), "white"),
        "all-white PNG bytes": png_bytes(Image.new("L", (50, 50), 255)),
        "all-transparent black": np.zeros((CANVAS, CANVAS, 4), np.uint8),
        "all-transparent white": np.full((64, 64, 4), (255, 255, 255, 0), np.uint8),
        "all-transparent PIL": Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
        "all-white uint16": np.full((64, 64), 65535, np.uint16),
        "all-white PIL I;16": Image.fromarray(np.full((64, 64), 65535, np.uint16)),
        "all-white float": np.ones((64, 64), np.float32),
        "all-black (white on black, nothing drawn)": np.zeros((64, 64), np.uint8),
        "faint smudge": np.full((64, 64), 250, np.uint8),
    }


@pytest.mark.parametrize("name", list(_empty_inputs()))
@pytest.mark.parametrize("method", ["mnist", "legacy"])
def test_empty_drawing_raises_empty_drawing_error(name, method):
    value = _empty_inputs()[name]
    with pytest.raises(digitrec.EmptyDrawingError) as info:
        preprocess(value, method=method)
    assert str(info.value) == "Draw a digit first."
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, digitrec.InvalidImageError)


# ---------------------------------------------------------------- unreadable input


def _nan_image():
    image = np.full((50, 50), 0.5, np.float32)
    image[10, 10] = np.nan
    return image


def _inf_image():
    image = np.ones((50, 50, 3))
    image[0, 0, 0] = np.inf
    return image


def _truncated_png():
    data = png_bytes(paint(ring))
    return data[: len(data) // 2]


BAD_INPUTS = {  # name → factory, so the large ones are only built by their own test
    "NaN float": _nan_image,
    "inf float": _inf_image,
    "shape (5,)": lambda: np.zeros(5, np.uint8),
    "shape (2,2,2,2)": lambda: np.zeros((2, 2, 2, 2), np.uint8),
    "shape (10,10,2)": lambda: np.zeros((10, 10, 2), np.uint8),
    "shape (0,0)": lambda: np.zeros((0, 0), np.uint8),
    "scalar array": lambda: np.array(3.0),
    "10000×10000 array": lambda: np.zeros((10000, 10000), np.uint8),
    "10000×10000 PIL": lambda: Image.new("L", (10000, 10000)),
    "PNG claiming 10000×10000": lambda: with_png_size(png_bytes(Image.new("L", (16, 16), 255)), 10000, 10000),
    "negative values": lambda: np.full((20, 20), -1.0),
    "values above 255": lambda: np.full((20, 20), 300.0),
    "complex array": lambda: np.zeros((20, 20), np.complex64),
    "object array": lambda: np.full((20, 20), None, dtype=object),
    "random bytes": lambda: np.random.default_rng(0).bytes(500),
    "empty bytes": lambda: b"",
    "truncated PNG": _truncated_png,
    "missing file": lambda: "/nonexistent/digit.png",
    "dict with unexpected keys": lambda: {"image": np.zeros((10, 10), np.uint8)},
    "sketch with layers not a list": lambda: {"background": None, "layers": "abc", "composite": None},
    "sketch with layers of different sizes": lambda: {
        "background": np.asarray(paint(ring, size=(300, 300))),
        "layers": [np.asarray(paint(tail, mode="RGBA"))],
        "composite": None,
    },
    "int": lambda: 3,
    "list": lambda: [[0, 255], [255, 0]],
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_invalid_image_error_with_short_message(name):
    value = BAD_INPUTS[name]()
    with pytest.raises(digitrec.InvalidImageError) as info:
        preprocess(value)
    message = str(info.value)
    assert 0 < len(message) < 200
    assert "Traceback" not in message
    assert isinstance(info.value, ValueError)
