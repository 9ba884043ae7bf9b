"""Publishing: the folder and model card that would be uploaded, and that the app can download it."""

from __future__ import annotations

import importlib
import json
import shutil

import huggingface_hub.constants
import pytest
from huggingface_hub import ModelCard

import digitrec
from digitrec.base import ChecksumError
from digitrec.manifest import read as read_manifest, sha256_of
from digitrec.numpy_net import NumpyNet
from digitrec.read import Verdicts, verdict_path
from digitrec.views import from_json
from digitrec.weights import bundled_dir, load_weights
from training.publish import build_folder

read_module = importlib.import_module("digitrec.read")  # the module: ``digitrec.read`` is the function

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def test_folder_holds_verified_weights_and_a_model_card(tmp_path):
    folder = build_folder(bundled_dir(), tmp_path / "upload")
    for model_id in digitrec.MODEL_IDS:
        manifest = read_manifest(folder / f"{model_id}.json")
        assert sha256_of(folder / manifest["weights_file"]) == manifest["sha256"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "mit"
    assert "mnist" in card.data.datasets
    for model_id, description in digitrec.MODELS.items():
        assert description["name"] in card.text
        assert f"{description['metrics']['mnist_test_accuracy']:.2%}" in card.text
    assert "Pen-Based Recognition of Handwritten Digits" in card.text
    assert "UNIPEN" in card.text
    assert "test_time_views" in card.text and "test_time_views_below" in card.text


def test_folder_holds_each_models_verdict_file_and_refuses_one_fitted_on_other_weights(tmp_path):
    folder = build_folder(bundled_dir(), tmp_path / "upload")
    for model_id in digitrec.MODEL_IDS:
        verdicts = Verdicts.load(verdict_path(folder, model_id))  # its arrays came along, checksum and all
        assert verdicts.weights_sha256 == read_manifest(folder / f"{model_id}.json")["sha256"]
    stale = tmp_path / "stale"
    shutil.copytree(bundled_dir(), stale)
    document = json.loads(verdict_path(stale, "dense").read_text())
    verdict_path(stale, "dense").write_text(json.dumps({**document, "weights_sha256": "0" * 64}))
    with pytest.raises(ChecksumError, match="dense.verdict.json was fitted on other weights"):
        build_folder(stale, tmp_path / "upload-stale")


def test_app_downloads_exactly_the_published_layout(tmp_path, monkeypatch):
    folder = build_folder(bundled_dir(), tmp_path / "upload")
    snapshot = tmp_path / "cache" / "models--owner--weights" / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIGITREC_HUB_REPO", "owner/weights")
    shipped = bundled_dir()
    monkeypatch.setenv("DIGITREC_WEIGHTS_DIR", str(tmp_path / "nothing-bundled"))  # a Space that ships no weights
    model = load_weights(NumpyNet)
    assert model.source.startswith("hub")
    assert model.manifest["sha256"] == read_manifest(shipped / "numpy.json")["sha256"]
    # it reads each drawing the ways the bundled manifest says (the shipped numpy network: several views)
    assert (model.views, model.views_below) == from_json(read_manifest(shipped / "numpy.json"))
    # the verdict file ("not a digit", "not sure") came with the weights, from the hub cache
    monkeypatch.setattr(read_module, "_verdicts", {})
    verdicts = read_module.verdicts_for("numpy", model)
    assert verdicts is not None and verdicts.weights_sha256 == model.manifest["sha256"]
    assert (verdicts.views, verdicts.views_below) == (model.views, model.views_below)
    assert str(model.verdict_file).startswith(str(tmp_path / "cache"))
