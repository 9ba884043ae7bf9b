"""Manifests have one owner (digitrec/manifest.py): its names, writes and updates."""

from __future__ import annotations

import json

import pytest

from digitrec import manifest as manifests


def test_heldout_metrics_use_the_names_every_manifest_uses():
    metrics = manifests.heldout_metrics("drawn_heldout", {"a": 0.9, "b": 0.8}, 20, writers=(25, 26))
    assert metrics == {
        "drawn_heldout_mean": pytest.approx(0.85),
        "drawn_heldout_worst": 0.8,
        "drawn_heldout_by_condition": {"a": 0.9, "b": 0.8},
        "drawn_heldout_digits": 20,
        "drawn_heldout_writers": [25, 26],
    }


def test_update_keeps_everything_else_and_refuses_other_versions(tmp_path):
    path = manifests.write(tmp_path / "m.json", {"model_id": "x", "sha256": "abc", "metrics": {"old": 1, "kept": 2}})
    manifests.update_metrics(path, {"old": 3, "new": 4})
    manifest = manifests.read(path)
    assert manifest["sha256"] == "abc" and manifest["metrics"] == {"old": 3, "kept": 2, "new": 4}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        manifests.read(path)
