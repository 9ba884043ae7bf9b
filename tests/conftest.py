"""Shared fixtures: held-out drawn digits, and the real app served on 127.0.0.1."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.strokes import HELD_OUT_WRITERS, Condition, load_pendigits, render  # noqa: E402


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_bytes(image, format="PNG") -> bytes:
    """Return a PIL image encoded as a file's bytes (PNG unless ``format`` says otherwise)."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def held_out():
    """Return (digits, labels) of the first held-out writer: people the models never saw."""
    digits, labels, writers = load_pendigits()
    index = np.flatnonzero(writers == HELD_OUT_WRITERS[0])
    return [digits[i] for i in index], labels[index]


@pytest.fixture(scope="session")
def one_per_label(held_out):
    """Return {label: 800×800 RGB canvas} with the first held-out drawing of each digit."""
    digits, labels = held_out
    return {int(d): render(digits[int(np.flatnonzero(labels == d)[0])], Condition()) for d in range(10)}


def start_app(extra_env=None, timeout=120, cwd=ROOT):
    """Start ``python app.py`` (in ``cwd``) on a free loopback port; return (process, url, seconds to ready)."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), **(extra_env or {}))
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    started = time.time()
    # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="digitrec-app-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, "app.py"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log.name
    url = f"http://127.0.0.1:{port}/"
    while time.time() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError("app exited: " + Path(log.name).read_text()[-2000:])
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2) as response:
                if response.status == 200:
                    return process, url, time.time() - started
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"app did not answer within {timeout} s")


def stop_app(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def app_data_dir(tmp_path_factory):
    """The served app's corrections folder (DIGITREC_CORRECTIONS_DIR)."""
    return tmp_path_factory.mktemp("feedback-data")


@pytest.fixture(scope="session")
def app_url(app_data_dir):
    """Serve the real app for the whole session; yield its URL."""
    process, url, _ = start_app({"DIGITREC_CORRECTIONS_DIR": str(app_data_dir)})
    yield url
    stop_app(process)
