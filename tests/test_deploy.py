"""Deploying to a Space: what goes up, the README front matter it writes, and weights found in the preloaded cache.

No test reaches the Hub: the dry run must not open a socket, and the preloaded hub cache
is built by hand in huggingface_hub's layout (as tests/test_weights.py does).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import yaml

import digitrec
from digitrec.registry import model_class
from digitrec.weights import bundled_dir, load_weights
from training import deploy

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
WEIGHTS = "owner/digitrec-weights"
CORRECTIONS = "owner/digitrec-corrections"


@pytest.fixture
def no_network(monkeypatch):
    """Make every socket connection fail, and record the addresses tried."""
    tried = []

    def refuse(self, address, *args, **kwargs):
        tried.append(address)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


def listed(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.startswith("  ") and "bytes" in line
            and not line.strip().startswith("total")]


def test_dry_run_lists_what_a_space_needs_and_touches_no_network(no_network, capsys):
    deploy.main(["--space", "owner/digitrec", "--weights-repo", WEIGHTS, "--corrections-dataset", CORRECTIONS,
                 "--dry-run"])
    output = capsys.readouterr().out
    files = listed(output)
    root = deploy.ROOT
    expected = {"app.py", "requirements.txt", "README.md"}
    expected |= {f"digitrec/{path.name}" for path in (root / "digitrec").glob("*.py")}
    expected |= {f"weights/{path.name}" for path in (root / "weights").iterdir() if path.is_file()}
    expected |= {f"examples/{path.name}" for path in (root / "examples").glob("*.png")}
    assert set(files) == expected
    assert not any(name.startswith(("tests/", "training/", "bench/", "docs/", ".")) for name in files)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)
    assert f"DIGITREC_HUB_REPO={WEIGHTS}" in output and f"DIGITREC_CORRECTIONS_REPO={CORRECTIONS}" in output
    assert "HF_TOKEN" in output
    assert no_network == []


def test_the_patterns_leave_out_venv_caches_tests_artifacts_and_corrections(tmp_path):
    """A working tree with everything a developer's machine has: only the app's files are chosen."""
    keep = ["app.py", "requirements.txt", "README.md", "digitrec/api.py", "weights/cnn.json",
            "weights/cnn.weights.h5", "weights/numpy.npz", "weights/cnn_curves.png", "examples/drawn_3.png"]
    leave = [".venv/lib/python3.11/site-packages/gradio/app.py", ".venv/pyvenv.cfg", "tests/test_app.py",
             "tests/conftest.py", "digitrec/__pycache__/api.cpython-311.pyc", "__pycache__/app.cpython-311.pyc",
             ".pytest_cache/v/cache/lastfailed", "test-artifacts/phone.png", "feedback-data/corrections.db",
             "feedback-data/images/1.png", "training/.cache/pendigits.npz", "training/train.py",
             "docs/desktop.png", "bench/serve.py", ".git/HEAD", ".gitattributes", "weights/.cnn.weights.h5.tmp",
             "digitrec/.api.py.swp", ".ci/run"]
    for name in keep + leave:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert deploy.selected_files(tmp_path) == sorted(keep)


def test_front_matter_names_the_repos_and_preloads_the_weights_the_loader_reads(tmp_path):
    files = deploy.stage(tmp_path, WEIGHTS, CORRECTIONS)
    assert "README.md" in files
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---")[1])
    original = yaml.safe_load((deploy.ROOT / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert {key: header[key] for key in original} == original  # the Space's settings are kept
    assert header["models"] == [WEIGHTS]
    assert header["datasets"] == [CORRECTIONS]
    [spec] = header["preload_from_hub"]
    repo, names = spec.split()
    assert repo == WEIGHTS
    assert names.split(",") == deploy.weights_files()
    assert text.split("---", 2)[2] == (deploy.ROOT / "README.md").read_text(encoding="utf-8").split("---", 2)[2]


def test_front_matter_is_unchanged_without_repos_and_rewritten_not_doubled(tmp_path):
    readme = (deploy.ROOT / "README.md").read_text(encoding="utf-8")
    assert deploy.front_matter(readme) == readme
    once = deploy.front_matter(readme, WEIGHTS, CORRECTIONS, revision=COMMIT)
    twice = deploy.front_matter(once, WEIGHTS, CORRECTIONS, revision=COMMIT)
    assert twice == once
    assert yaml.safe_load(once.split("---")[1])["preload_from_hub"][0].endswith(" " + COMMIT)
    with pytest.raises(ValueError, match="front matter"):
        deploy.front_matter("# no header\n", WEIGHTS)


def preloaded_cache(root, spec):
    """Build the hub cache a Space's build leaves for one ``preload_from_hub`` entry: exactly its files."""
    repo, names, *revision = spec.split()
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in names.split(","):
        shutil.copy(bundled_dir() / name, snapshot / name)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    return root


def test_all_three_models_load_from_the_preloaded_cache_offline_without_a_network_call(
    tmp_path, monkeypatch, no_network
):
    deploy.stage(tmp_path / "space", WEIGHTS, CORRECTIONS)
    header = yaml.safe_load((tmp_path / "space" / "README.md").read_text(encoding="utf-8").split("---")[1])
    cache = preloaded_cache(tmp_path / "hub-cache", header["preload_from_hub"][0])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    for key, value in deploy.space_variables(WEIGHTS, CORRECTIONS).items():  # as the Space's variables set them
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DIGITREC_HUB_REVISION", raising=False)
    images = np.random.default_rng(3).random((3, 28, 28)).astype(np.float32)
    for model_id in digitrec.MODEL_IDS:
        model = load_weights(model_class(model_id))
        assert model.source == f"hub {WEIGHTS}@main", (model_id, model.source)
        bundled = model_class(model_id).load(bundled_dir() / f"{model_id}.json")
        np.testing.assert_allclose(model.predict_proba(images), bundled.predict_proba(images), atol=1e-6)
    assert no_network == []


@pytest.mark.slow  # a subprocess
def test_gitattributes_stores_every_binary_the_space_needs_with_lfs():
    """For a push with git: each weights file and image that goes up is marked filter=lfs."""
    import subprocess

    binaries = [name for name in deploy.selected_files() if not name.endswith((".py", ".json", ".md", ".txt"))]
    assert any(name.endswith(".h5") for name in binaries) and any(name.endswith(".npz") for name in binaries)
    out = subprocess.run(["git", "check-attr", "filter", "--", *binaries], cwd=deploy.ROOT, capture_output=True,
                         text=True, check=True).stdout
    filters = dict(line.rsplit(": filter: ", 1) for line in out.splitlines())
    assert filters == {name: "lfs" for name in binaries}


@pytest.mark.slow  # starts the app
def test_the_uploaded_files_alone_serve_the_app_with_weights_from_the_preloaded_cache(tmp_path, one_per_label):
    """What a Space gets (the staged files, its preloaded hub cache, its variables), offline: served from that cache."""
    import base64

    from gradio_client import Client
    from PIL import Image

    from conftest import png_bytes, start_app, stop_app

    space = tmp_path / "space"
    deploy.stage(space, WEIGHTS, CORRECTIONS)
    header = yaml.safe_load((space / "README.md").read_text(encoding="utf-8").split("---")[1])
    cache = preloaded_cache(tmp_path / "hub-cache", header["preload_from_hub"][0])
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "DIGITREC_CORRECTIONS_DIR": str(tmp_path / "data"),
           **deploy.space_variables(WEIGHTS, CORRECTIONS)}
    process, url, _ = start_app(env, timeout=240, cwd=space)
    try:
        image = base64.b64encode(png_bytes(Image.fromarray(one_per_label[6]))).decode()
        answer = Client(url, verbose=False).predict(image, "cnn", api_name="/read_digit")
        assert answer["digit"] == 6
    finally:
        stop_app(process)
    log = Path(process.log_path).read_text()
    for model_id in digitrec.MODEL_IDS:
        assert f"{model_id}: loaded weights from hub" in log and WEIGHTS in log, log[-2000:]
    assert "loaded weights from bundled" not in log
