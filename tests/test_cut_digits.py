"""Touching pairs cut apart at the number reader's seam: each clean side is its digit, left-out writers give none."""

from __future__ import annotations

import numpy as np

import digitrec
from digitrec.preprocess import preprocess_ink
from training import cut_digits as cut_module
from training.strokes import load_pendigits


def writer_digits(writer):
    digits, labels, writers = load_pendigits()
    index = np.flatnonzero(writers == writer)
    return [digits[i] for i in index], labels[index]


def test_each_side_of_a_cut_pair_is_read_as_its_own_digit_by_the_shipped_cnn():
    """The sides kept are digits a person would name: the CNN, never taught them, reads almost all of them so."""
    digits, labels = writer_digits(3)
    rng = np.random.default_rng(0)
    sides, right, pairs_with_a_side = 0, 0, 0
    for k in range(40):
        a, b = rng.choice(len(digits), size=2, replace=False)
        found = cut_module.cut_pair(digits[a], digits[b], rng)
        pairs_with_a_side += bool(found)
        for ink, side in found:
            assert ink.ndim == 2 and side in (0, 1)
            label = int(labels[(a, b)[side]])
            probs, _ = digitrec.predict(preprocess_ink(ink)[0], "cnn")
            sides += 1
            right += max(probs, key=probs.get) == str(label)
    assert pairs_with_a_side >= 30  # touching pairs are mostly separable by one of the reader's seams
    assert right >= 0.85 * sides


def test_a_side_must_hold_most_of_its_digit_not_a_fragment():
    paper = np.ones((4, 10), np.float32)
    owner = np.zeros((4, 10), bool)
    owner[:, :5] = True
    left_part = np.zeros((4, 10), bool)
    left_part[:, :2] = True  # pure, but only two fifths of the digit
    assert cut_module._share(paper, left_part, owner) == 1.0
    assert cut_module._share(paper, owner, left_part) == 0.4


def test_writers_left_out_of_a_run_give_no_cut_digits(tmp_path, monkeypatch):
    sevens, _ = writer_digits(21)
    ones, _ = writer_digits(3)

    def two_writers(part, pendigits=None, unipen=None):
        digits = sevens[:10] + ones[:10]
        return digits, np.array([7] * 10 + [1] * 10), np.array(["pendigits/21"] * 10 + ["pendigits/3"] * 10)

    monkeypatch.setattr(cut_module, "writers_digits", two_writers)
    monkeypatch.setattr(cut_module, "CACHE", tmp_path)
    x, y = cut_module.cut_digits(1, seed=0, limit=20, exclude=(21,), processes=1)
    assert len(x) == len(y) > 0 and x.shape[1:] == (28, 28)
    assert set(y.tolist()) == {1}
    x_all, y_all = cut_module.cut_digits(1, seed=0, limit=20, processes=1)
    assert set(y_all.tolist()) == {1, 7}
    assert cut_module.cut_digits(0)[0].shape == (0, 28, 28)
