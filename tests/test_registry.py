"""A fourth model is one module plus one registry line: everything else picks it up.

``tests/toy_model.py`` is that module; each test adds its one line to ``REGISTRY`` and
checks a place that must list or use the model without any other edit: ``MODELS``,
``digitrec.predict``, the training entry, fine-tuning, ``bench.serve`` and the app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import digitrec
from digitrec import registry
from tests.toy_model import ToyModel

ROOT = Path(__file__).resolve().parent.parent
TOY_LINE = "tests.toy_model:ToyModel"


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A weights folder holding the shipped weights (linked) and a trained toy model; served from there."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in (ROOT / "weights").iterdir():
        (folder / path.name).symlink_to(path)
    rng = np.random.default_rng(0)
    toy = ToyModel.fresh(0)
    toy.fit(rng.random((64, 28, 28), dtype=np.float32), rng.integers(0, 10, 64), epochs=1)
    toy.save(folder)
    monkeypatch.setenv("DIGITREC_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def toy(weights_dir, monkeypatch):
    """Register the toy model (the one line) for this test only."""
    monkeypatch.setitem(registry.REGISTRY, "toy", TOY_LINE)
    yield "toy"
    registry._loaded.pop("toy", None)


def test_one_line_adds_the_model_to_models_and_predict(toy, one_per_label):
    assert tuple(digitrec.MODEL_IDS)[-1] == "toy" and "toy" in digitrec.MODEL_IDS
    assert digitrec.MODELS["toy"]["name"] == "Toy linear model"
    assert digitrec.MODELS["toy"]["architecture"] == "784 → 10, one linear layer, softmax"
    probs, processed = digitrec.predict(one_per_label[3], "toy")
    assert set(probs) == {str(d) for d in range(10)} and abs(sum(probs.values()) - 1) < 1e-5
    assert processed.shape == (28, 28)
    assert digitrec.get_model("toy").source == f"bundled {os.environ['DIGITREC_WEIGHTS_DIR']}"


def test_models_describe_the_weights_that_serve(toy, weights_dir):
    """After loading, MODELS reads the loaded weights' manifest (hub or bundled), not a file beside the code."""
    model = digitrec.get_model("toy")
    model.manifest = {**model.manifest, "architecture": "as served"}
    assert digitrec.MODELS["toy"]["architecture"] == "as served"
    assert digitrec.MODELS["toy"]["source"] == model.source


def test_unknown_model_lists_the_registered_ones(toy):
    with pytest.raises(ValueError, match="valid models: cnn, dense, numpy, toy"):
        digitrec.get_model("nope")


def test_training_entry_trains_and_saves_it(toy, tmp_path):
    from training import train

    assert train.parse_args(["--model", "toy"]).model == "toy"
    out = tmp_path / "trained"
    with pytest.raises(ValueError, match="--non-digits 0"):  # it has no widened(): ten outputs only
        train.main(["--model", "toy", "--limit", "200", "--copies", "1", "--seed", "1", "--out", str(out)])
    train.main(["--model", "toy", "--limit", "200", "--copies", "1", "--seed", "1", "--non-digits", "0", "--out", str(out)])
    manifest = digitrec.manifest.read(out / "toy.json")
    assert manifest["training"]["epochs"] == ToyModel.training_defaults["epochs"]
    assert manifest["training"]["learning_rate"] == ToyModel.training_defaults["learning_rate"]
    assert 0.0 <= manifest["metrics"]["mnist_test_accuracy"] <= 1.0
    assert (out / "toy_curves.png").exists()


def test_finetuning_uses_its_fit(toy):
    from training import finetune

    assert finetune.parse_args(["--model", "toy"]).model == "toy"
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 28, 28), dtype=np.float32), rng.integers(0, 10, 40)
    evaluation = {"mnist": (x, y), "drawn": {"plain": (x, y)}}
    model, before, after = finetune.finetune(
        "toy", x[:5], y[:5], epochs=2, mix=20, pool=(x, y), evaluation=evaluation, verbose=False
    )
    assert isinstance(model, ToyModel) and model is not digitrec.get_model("toy")  # the served copy is untouched
    assert [row["epoch"] for row in after["settings"]["history"]] == [1, 2]


def test_serving_benchmark_times_it(toy, one_per_label):
    from bench import serve

    rows = serve.in_process([one_per_label[1], one_per_label[7]], repeats=2)
    assert [row[0] for row in rows[:-1]] == list(digitrec.MODEL_IDS)


@pytest.mark.slow
def test_app_offers_and_compares_it(weights_dir, tmp_path):
    """The app, built with the line added, offers the model and compares it with the others."""
    script = (
        "import json, sys; from digitrec import registry; "
        f"registry.REGISTRY['toy'] = {TOY_LINE!r}; import app; "
        "out = app.compare(sys.argv[1]); "
        "print(json.dumps({'choices': [v for _, v in app.model_radio.choices], "
        "'panels': [c.elem_id for c in app.compare_labels], 'button': app.compare_button.value, "
        "'compared': len(out) - 1, 'details': app.model_details('toy')[0].splitlines()[0]}))"
    )
    example = sorted((ROOT / "examples").glob("*.png"))[0]
    env = dict(os.environ, DIGITREC_WEIGHTS_DIR=str(weights_dir), DIGITREC_CORRECTIONS_DIR=str(tmp_path / "corrections"),
               GRADIO_ANALYTICS_ENABLED="False")
    result = subprocess.run([sys.executable, "-c", script, str(example)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["choices"] == ["cnn", "dense", "numpy", "toy"]
    assert seen["panels"] == ["compare-cnn", "compare-dense", "compare-numpy", "compare-toy"]
    assert seen["button"] == "Compare all 4" and seen["compared"] == 4
    assert seen["details"] == "### Toy linear model"
