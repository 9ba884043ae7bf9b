"""Hershey symbols as "not a digit" drawings (training/symbols.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training import symbols


def _key(strokes):
    return b"".join(np.asarray(s, np.float32).tobytes() for s in strokes)


def test_validation_glyphs_are_never_trained_on():
    train, validation = symbols.glyphs("train"), symbols.glyphs("validation")
    assert len(validation) >= 35 and len(train) >= 3 * len(validation) - 3
    assert not {_key(g) for g in train} & {_key(g) for g in validation}
    # Fonts repeat glyphs at other sizes: none of validation's is a training glyph redrawn, or another of its own.
    rasters = [symbols._raster(g) for g in train + validation]
    for i in range(len(train), len(rasters)):
        assert max(symbols._overlap(rasters[i], other) for other in rasters[:i]) < symbols.SAME_GLYPH
    square = [np.array([[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], np.float32)]
    assert symbols._overlap(symbols._raster(square), symbols._raster([s * 3 + 1 for s in square])) > symbols.SAME_GLYPH
    with pytest.raises(ValueError, match="train"):
        symbols.glyphs("test")  # the test set keeps its own held-out shape kinds


def test_every_kept_glyph_is_pen_strokes_with_ink():
    for strokes in symbols.glyphs("train") + symbols.glyphs("validation"):
        assert strokes and all(s.ndim == 2 and s.shape[1] == 2 and len(s) >= 2 for s in strokes)
        assert np.ptp(np.concatenate(strokes), axis=0).max() > 0


def test_a_symbol_is_a_random_glyph_redrawn_by_a_hand_and_reproducible():
    first = symbols.symbols(30, seed=4)
    again = symbols.symbols(30, seed=4)
    assert all(_key(a) == _key(b) for a, b in zip(first, again))
    assert len({len(d) for d in first}) > 1  # not one glyph over and over
    glyph_keys = {_key(g) for g in symbols.glyphs("train")}
    assert not any(_key(d) in glyph_keys for d in first)  # stretched, slanted and wobbled, never the font's own
    assert all(d[0].dtype == np.float32 for d in first)


def test_training_symbols_are_rendered_like_digits_and_labelled_not_a_digit():
    from digitrec.base import NOT_A_DIGIT

    x, y = symbols.training_symbols(1, seed=0, limit=40)
    assert x.shape == (4, 28, 28) and x.dtype == np.float32
    assert (y == NOT_A_DIGIT).all()
    assert (x.reshape(len(x), -1).max(axis=1) > 0.5).all()  # ink, centred by the one preprocessing
    empty_x, empty_y = symbols.training_symbols(0)
    assert empty_x.shape == (0, 28, 28) and len(empty_y) == 0
