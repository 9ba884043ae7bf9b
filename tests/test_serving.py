"""Many visitors at once, and visitors with garbage: the server answers each, and keeps serving."""

from __future__ import annotations

import io
import random
import threading
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import digitrec
from conftest import png_bytes

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not

GENERIC = "has not enabled verbose error reporting"


def sketch_of(path):
    file = handle_file(str(path))
    return {"background": file, "layers": [], "composite": file}


def run_threads(count, work, timeout=240):
    """Run ``work(i)`` in ``count`` threads at once; return the results and errors."""
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def target(i):
        try:
            barrier.wait(timeout=60)
            results[i] = work(i)
        except Exception as error:  # collected, then asserted empty
            errors.append(f"{i}: {error!r}"[:300])

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "requests hung"
    return results, errors


def test_32_concurrent_clients_get_their_own_answers(app_url, held_out, tmp_path):
    """Mixed models and drawings at once: every answer equals the answer to the same input alone."""
    digits, labels = held_out
    from training.strokes import Condition, render

    jobs = []
    for i in range(32):
        canvas = render(digits[i], Condition(height=0.4 + 0.015 * i, brush=30 + i))
        path = tmp_path / f"{i}.png"
        Image.fromarray(canvas).save(path)
        model = digitrec.MODEL_IDS[i % 3]
        expected, processed = digitrec.predict(canvas, model)
        jobs.append((path, model, expected, processed))

    def work(i):
        path, model, _, _ = jobs[i]
        client = Client(app_url, verbose=False)
        return [client.predict(sketch_of(path), model, api_name="/predict") for _ in range(2)]

    results, errors = run_threads(32, work)
    assert errors == []
    for (path, model, expected, processed), answers in zip(jobs, results):
        for label, image_path in answers:
            got = {c["label"]: c["confidence"] for c in label["confidences"]}
            assert got.keys() == expected.keys()
            assert max(abs(got[k] - expected[k]) for k in got) < 1e-4, (path.name, model)
            shown = np.asarray(Image.open(image_path).convert("L"))
            assert np.array_equal(shown[5::10, 5::10], processed), (path.name, model)


def test_identical_outputs_served_whole_under_concurrency(app_url, one_per_label, tmp_path):
    """32 visitors drawing the same digit get the same processed image at once: each file arrives whole."""
    path = tmp_path / "same.png"
    Image.fromarray(one_per_label[4]).save(path)
    _, processed = digitrec.predict(one_per_label[4], "cnn")

    def work(i):
        client = Client(app_url, verbose=False)
        outputs = []
        for _ in range(3):
            _, image_path = client.predict(sketch_of(path), "cnn", api_name="/predict")
            with open(image_path, "rb") as file:
                outputs.append(file.read())
        return outputs

    results, errors = run_threads(32, work)
    assert errors == []
    for outputs in results:
        for data in outputs:
            shown = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
            assert np.array_equal(shown[5::10, 5::10], processed)


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def payload_files(tmp_path_factory, one_per_label):
    """Return {name: (path, expected)}: "same" for odd-but-valid images of the held-out 2, "error" or "any"."""
    folder = tmp_path_factory.mktemp("payloads")
    canvas = one_per_label[2]
    grey = Image.fromarray(canvas).convert("L")
    files = {}

    def add(name, data, expected):
        path = folder / name
        path.write_bytes(data)
        files[name] = (path, expected)

    full = png_bytes(Image.fromarray(canvas))
    add("truncated.png", full[: len(full) // 2], "error")
    add("header_only.png", full[:40], "error")
    add("one_pixel_white.png", png_bytes(Image.new("RGB", (1, 1), "white")), "error")
    add("one_pixel_black.png", png_bytes(Image.new("RGB", (1, 1), "black")), "any")
    add("huge.png", png_bytes(Image.new("L", (10000, 10000), 255)), "error")
    add("wide.png", png_bytes(Image.new("L", (5000, 10), 255)), "error")
    add("grey16.png", png_bytes(Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)), "same")
    add("palette.png", png_bytes(grey.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)), "same")
    add("cmyk.jpg", png_bytes(grey.convert("CMYK"), "JPEG"), "same")
    add("grey.png", png_bytes(grey), "same")
    add("float_nan.tiff", png_bytes(Image.fromarray(np.full((50, 50), np.nan, np.float32), "F"), "TIFF"), "any")
    for seed in range(5):
        add(f"random{seed}.png", random.Random(seed).randbytes(1000 * (seed + 1)), "error")
    return files


def bad_requests(files):
    """Yield (payload, model, expected) cycling through every kind of bad or odd request."""
    good = sketch_of(files["grey.png"][0])
    fixed = [
        ({}, "cnn", "error"),
        ({"background": None, "layers": []}, "dense", "error"),
        ({"layers": []}, "numpy", "error"),
        ("hello", "cnn", "error"),
        (12345, "cnn", "error"),
        ([1, 2, 3], "cnn", "error"),
        ({"composite": "not a file"}, "cnn", "error"),
        (None, "cnn", "error"),
        (good, "bogus", "error"),
        (good, -1, "error"),
        (good, 10**30, "error"),
        (good, None, "error"),
        (good, "", "error"),
        (good, 3.5, "error"),
    ]
    index = 0
    while True:
        for payload, model, expected in fixed:
            yield payload, model, expected
        for name, (path, expected) in files.items():
            yield sketch_of(path), digitrec.MODEL_IDS[index % 3], expected
            index += 1


def test_thousand_bad_requests_then_still_serving(app_url, payload_files, one_per_label, tmp_path):
    """Every bad request gets a short clear error (never a traceback or a hang); then a valid one works."""
    total, deadline = 1000, time.time() + 300
    same = {}  # each model's answer for the plain RGB drawing the odd formats encode
    for model in digitrec.MODEL_IDS:
        probs, _ = digitrec.predict(one_per_label[2], model)
        same[model] = max(probs, key=probs.get)
    requests = bad_requests(payload_files)
    lock = threading.Lock()
    outcomes, problems = [], []

    def worker():
        client = Client(app_url, verbose=False)
        while time.time() < deadline:
            with lock:
                if len(outcomes) >= total:
                    return
                payload, model, expected = next(requests)
            try:
                result = client.predict(payload, model, api_name="/predict")
                outcome = ("answer", result[0]["label"])
            except AppError as error:
                outcome = ("error", str(error))
            except Exception as error:  # anything else (timeouts, protocol errors) is a failure
                outcome = ("broken", repr(error)[:200])
            with lock:
                outcomes.append(outcome)
                kind, value = outcome
                if kind == "broken":
                    problems.append(f"{payload!r:.80} {model!r}: {value}")
                elif expected == "error" and kind != "error":
                    problems.append(f"{payload!r:.80} {model!r}: answered {value} instead of an error")
                elif kind == "error" and (GENERIC in value or "Traceback" in value or len(value) > 200):
                    problems.append(f"{payload!r:.80} {model!r}: unclear error {value!r}")
                elif expected == "same" and (kind != "answer" or value != same[model]):
                    problems.append(f"{payload!r:.80} {model!r}: expected {same[model]}, got {value}")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(330)
    assert len(outcomes) >= total, f"only {len(outcomes)} requests in the time allowed"
    assert problems == [], problems[:10]

    path = tmp_path / "seven.png"
    Image.fromarray(one_per_label[7]).save(path)
    label, _ = Client(app_url, verbose=False).predict(sketch_of(path), "cnn", api_name="/predict")
    assert label["label"] == "7"


THREADS_PROBE = """
import ctypes, glob, json, os, sys
import app  # sets the thread variables before numpy and TensorFlow load
import numpy
libraries = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*"))
blas = None
for library in libraries:
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
        function = getattr(ctypes.CDLL(library), name, None)
        if function is not None:
            blas = function()
print(json.dumps({"variables": {name: os.environ.get(name) for name in app.SERVING_THREADS}, "openblas": blas}))
"""


@pytest.mark.parametrize("deployer", [None, "2"])
def test_the_app_serves_one_thread_per_call_unless_the_deployer_says_otherwise(deployer):
    """The served process runs TensorFlow and OpenBLAS on one thread each (their pools competed for two cores,
    docs/speed.md); a value the deployer set is kept."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if deployer:
        environment["OPENBLAS_NUM_THREADS"] = deployer
    done = subprocess.run([sys.executable, "-c", THREADS_PROBE], cwd=root, env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    expected = deployer or "1"
    assert seen["variables"]["OPENBLAS_NUM_THREADS"] == expected
    assert seen["variables"]["TF_NUM_INTRAOP_THREADS"] == seen["variables"]["TF_NUM_INTEROP_THREADS"] == "1"
    if seen["openblas"] is not None:  # numpy's own OpenBLAS (the pinned wheels bundle it)
        assert seen["openblas"] == int(expected)
