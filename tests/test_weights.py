"""Where weights come from: a hub repo (through a hand-built hub cache, no network), else the bundled folder.

The hub cache is built in tmp_path in huggingface_hub's own layout::

    models--org--name/refs/main                 the commit hash, no trailing newline
    models--org--name/snapshots/<hash>/numpy.json
    models--org--name/snapshots/<hash>/numpy.npz

huggingface_hub reads HF_HUB_OFFLINE, HF_HUB_CACHE and HF_ENDPOINT into
``huggingface_hub.constants`` when it is imported, so the tests patch those constants as
well as the environment.
"""

import logging
import shutil
import threading
import time

import huggingface_hub.constants
import numpy as np
import pytest

from digitrec.numpy_net import NumpyNet
from digitrec.weights import load_weights

REPO = "org/name"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: nothing listens there


@pytest.fixture(scope="module", autouse=True)
def abandoned_hub_downloads_finish():
    """Wait, after this module, for hub downloads the loader gave up on (huggingface_hub retries ~25 s).

    They are abandoned by design; left running, they log their retries after pytest has
    closed its streams, which prints a "Logging error" traceback at the end of the run.
    """
    yield
    deadline = time.monotonic() + 40
    for thread in threading.enumerate():
        if thread.name == "digitrec-hub":
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)


@pytest.fixture
def hub_model(tmp_path):
    """A tiny numpy model saved to a folder (what the hub repo holds)."""
    model = NumpyNet(sizes=(784, 16, 10), seed=1)
    model.save(tmp_path / "hub-upload")
    return model, tmp_path / "hub-upload"


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """A different tiny numpy model in the bundled folder (DIGITREC_WEIGHTS_DIR)."""
    model = NumpyNet(sizes=(784, 8, 10), seed=2)
    directory = tmp_path / "bundled"
    model.save(directory)
    monkeypatch.setenv("DIGITREC_WEIGHTS_DIR", str(directory))
    return model


@pytest.fixture
def cache(tmp_path, hub_model):
    """The hub cache holding ``org/name`` at COMMIT, with refs/main pointing to it."""
    root = tmp_path / "hub-cache"
    repo = root / "models--org--name"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)  # the hub writes no trailing newline
    for name in ("numpy.json", "numpy.npz"):
        shutil.copy(hub_model[1] / name, snapshot / name)
    return root


@pytest.fixture
def hub_env(monkeypatch, cache, bundled):
    """Offline hub with the hand-built cache and DIGITREC_HUB_REPO set; the bundled folder as fallback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("DIGITREC_HUB_REPO", REPO)
    monkeypatch.delenv("DIGITREC_HUB_REVISION", raising=False)
    monkeypatch.delenv("DIGITREC_HUB_TIMEOUT", raising=False)
    return cache


@pytest.fixture
def unreachable_hub(monkeypatch, hub_env):
    """Online mode, but the hub endpoint is a closed port on this machine."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", CLOSED_PORT)
    monkeypatch.setattr(
        huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", CLOSED_PORT + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setenv("DIGITREC_HUB_TIMEOUT", "1")
    return hub_env


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="digitrec")
    return caplog


def loaded_from(caplog):
    """Return the log lines saying where weights were loaded from."""
    return [r.getMessage() for r in caplog.records if "loaded weights from" in r.getMessage()]


def assert_same_model(loaded, expected, images):
    assert loaded.sizes == expected.sizes
    np.testing.assert_array_equal(loaded.predict_proba(images), expected.predict_proba(images))


def timed_load():
    started = time.monotonic()
    model = load_weights(NumpyNet)
    return model, time.monotonic() - started


# ---------------------------------------------------------------- no hub configured


def test_without_a_hub_repo_the_bundled_weights_load(monkeypatch, bundled, images, log):
    monkeypatch.delenv("DIGITREC_HUB_REPO", raising=False)
    model = load_weights(NumpyNet)
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)
    assert any("bundled" in line for line in loaded_from(log))


# ---------------------------------------------------------------- the hub cache


def test_hub_cache_is_used(hub_env, hub_model, images, log):
    model, seconds = timed_load()
    assert model.source.startswith("hub")
    assert REPO in model.source
    assert_same_model(model, hub_model[0], images)
    assert model.verdict_file is None  # this repo holds no verdict file: read falls back to the bundled one
    assert seconds < 2.0
    lines = loaded_from(log)
    assert lines and "hub" in lines[-1] and REPO in lines[-1]


def test_pinned_revision_equal_to_the_commit_works(hub_env, hub_model, monkeypatch, images, log):
    monkeypatch.setenv("DIGITREC_HUB_REVISION", COMMIT)
    model = load_weights(NumpyNet)
    assert model.source.startswith("hub")
    assert COMMIT in model.source
    assert_same_model(model, hub_model[0], images)
    assert any(COMMIT in line for line in loaded_from(log))


def test_pinned_revision_missing_from_the_cache_falls_back_to_bundled(hub_env, bundled, monkeypatch, images, log):
    monkeypatch.setenv("DIGITREC_HUB_REVISION", "f" * 40)
    model, seconds = timed_load()
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)
    assert seconds < 2.0


def test_tampered_hub_weights_are_refused(hub_env, bundled, images, log):
    with open(hub_env / "models--org--name" / "snapshots" / COMMIT / "numpy.npz", "ab") as file:
        file.write(b"\0")
    model = load_weights(NumpyNet)
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)
    assert any("refusing" in r.getMessage() and r.levelno == logging.WARNING for r in log.records)
    assert "bundled" in loaded_from(log)[-1]


def test_hub_manifest_of_another_format_is_skipped(hub_env, bundled, images, log):
    path = hub_env / "models--org--name" / "snapshots" / COMMIT / "numpy.json"
    path.write_text(path.read_text().replace('"format_version": 1', '"format_version": 99'))
    model = load_weights(NumpyNet)
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)


def test_repo_missing_from_the_cache_falls_back_to_bundled_quickly(hub_env, bundled, monkeypatch, images, log):
    monkeypatch.setenv("DIGITREC_HUB_REPO", "org/absent")
    model, seconds = timed_load()
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)
    assert seconds < 2.0
    assert any("org/absent" in r.getMessage() and r.levelno == logging.WARNING for r in log.records)
    assert "bundled" in loaded_from(log)[-1]


# ---------------------------------------------------------------- an unreachable hub (online mode)


def test_unreachable_hub_falls_back_to_bundled_within_the_timeout(unreachable_hub, bundled, monkeypatch, images, log):
    monkeypatch.setenv("DIGITREC_HUB_REPO", "org/absent")
    model, seconds = timed_load()
    assert seconds < 2.0
    assert model.source.startswith("bundled")
    assert_same_model(model, bundled, images)
    assert "bundled" in loaded_from(log)[-1]


def test_unreachable_hub_uses_the_cached_copy(unreachable_hub, hub_model, images, log):
    model, seconds = timed_load()
    assert seconds < 2.0
    assert model.source.startswith("hub")
    assert_same_model(model, hub_model[0], images)
    assert "hub" in loaded_from(log)[-1]


@pytest.mark.slow
def test_default_hub_timeout_is_one_second(monkeypatch):
    from digitrec.weights import hub_settings

    monkeypatch.setenv("DIGITREC_HUB_REPO", REPO)
    monkeypatch.delenv("DIGITREC_HUB_REVISION", raising=False)
    monkeypatch.delenv("DIGITREC_HUB_TIMEOUT", raising=False)
    assert hub_settings() == (REPO, "main", 1.0)


def wait_for_earlier_hub_calls(limit: float = 40.0) -> None:
    """Wait (bounded) until no earlier test's hub call still runs in its background thread.

    A hub call that missed its deadline keeps retrying in a daemon thread for ~20 s, through
    huggingface_hub's one shared HTTP client; once, under load in CI, such a leftover made the
    next test's connection fail at once ("Bad file descriptor") instead of hanging.
    """
    deadline = time.monotonic() + limit
    for thread in threading.enumerate():
        if thread.name == "digitrec-hub":
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def silent_hub(monkeypatch, hub_env):
    """Online mode, the hub endpoint a local socket that accepts connections and never answers (a hang)."""
    import socket

    wait_for_earlier_hub_calls()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setenv("DIGITREC_HUB_TIMEOUT", "1")
    yield endpoint
    server.close()


@pytest.mark.slow
def test_a_hub_that_hangs_costs_about_a_second(silent_hub, images, log):
    model, seconds = timed_load()
    assert seconds < 2.0, f"fallback took {seconds:.2f} s"
    assert "no answer from the hub" in log.text
    assert loaded_from(log), "the log must say where the weights came from"
