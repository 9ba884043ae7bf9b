"""How fast digitrec answers: in-process, over HTTP (serial and concurrent), start-up and memory.

    python -m bench.serve            # prints the tables (a few minutes on 2 cores)
    python -m bench.serve --quick    # fewer requests, for a smoke run
    python -m bench.serve --spread   # only the models interleaved, across runs, thread pools and load
    DIGITREC_CONCURRENCY=4 python -m bench.serve --quick   # try another queue concurrency

Everything is measured in one run on this machine, medians and ratios first:
- in-process: ``digitrec.predict`` on 800×800 held-out drawings, p50/p99 per model;
- interleaved: the three models in turn on each drawing (as visitors switching models use
  them), in fresh processes run after run, with the libraries' own thread pools or one
  thread each, on an idle machine and beside a process keeping one core busy: the median
  p50 across runs and its spread (min–max);
- HTTP: the real app (``app.py``) on 127.0.0.1 through ``gradio_client``, serially and with
  8 and 32 concurrent clients (one Client per thread), next to ``/noop`` — an endpoint with
  the same Sketchpad input that does nothing — as the framework's floor, and ``/read_digit``
  — the same drawings sent as a base64 data URL, JSON back, no file upload or download;
- start-up: seconds from ``python app.py`` to the first answered ``/predict``;
- memory: the server's resident set after every 500 of 4,000 ``/predict`` requests.
The server runs in its own process (``--serve PORT``): the app plus the ``/noop`` endpoint.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import digitrec  # noqa: E402


def serve(port: int) -> None:
    """Serve the app with an extra ``/noop`` endpoint taking the same sketch input."""
    import gradio as gr

    import app

    with app.demo:
        noop_button = gr.Button(visible=False)
        noop_button.click(lambda sketch, model: None, [app.sketch, app.model_radio], None, api_name="noop")
    app.demo.launch(server_name="127.0.0.1", server_port=port)


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def drawings(count):
    """Return ``count`` held-out canvases (800×800 RGB) and their labels."""
    from training.strokes import HELD_OUT_WRITERS, Condition, load_pendigits, render

    digits, labels, writers = load_pendigits()
    index = np.flatnonzero(np.isin(writers, HELD_OUT_WRITERS))[:count]
    return [render(digits[i], Condition()) for i in index], labels[index]


def load_every_model(canvas):
    """Load and trace every model, as app.warm_up does, before anything is timed.

    The app never serves with one model loaded, and with one loaded the allocator's state
    (page faults in preprocessing) differs from what any visitor meets (docs/speed.md).
    """
    for model_id in digitrec.MODEL_IDS:
        digitrec.predict(canvas, model_id)


def in_process(canvases, repeats):
    load_every_model(canvases[0])
    rows = []
    for model_id in digitrec.MODEL_IDS:
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            digitrec.predict(canvases[i % len(canvases)], model_id)
            times.append(time.perf_counter() - started)
        rows.append((model_id, percentile(times, 50), percentile(times, 99)))
    from digitrec.preprocess import preprocess

    times = []
    for i in range(repeats):
        started = time.perf_counter()
        preprocess(canvases[i % len(canvases)])
        times.append(time.perf_counter() - started)
    rows.append(("(preprocessing alone)", percentile(times, 50), percentile(times, 99)))
    return rows


# The libraries' thread pools: TensorFlow's (intra- and inter-op) and OpenBLAS's (numpy's
# matrix products) each start one thread per core, and on two cores they compete.
# app.py serves with one thread each (its SERVING_THREADS); every run starts from none of them set.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
THREAD_SETTINGS = {
    "the libraries' own": {},
    "TensorFlow one thread": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
    "OpenBLAS one thread": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "one thread each (app.py)": {variable: "1" for variable in THREAD_VARIABLES},
}
HOG = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"  # one busy core, stops by itself


def interleaved(canvases, rounds):
    """Time every model in turn on each drawing; return {model: p50 ms}.

    Visitors switch models between drawings, so each call follows another model's: the
    caches and thread pools a model left warm are another's by the next call.
    """
    load_every_model(canvases[0])
    times = {model_id: [] for model_id in digitrec.MODEL_IDS}
    for i in range(rounds):
        for model_id in digitrec.MODEL_IDS:
            started = time.perf_counter()
            digitrec.predict(canvases[i % len(canvases)], model_id)
            times[model_id].append(time.perf_counter() - started)
    return {model_id: percentile(values, 50) for model_id, values in times.items()}


def environment(setting):
    """Return this process's environment with the thread variables replaced by ``setting``'s."""
    merged = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    return merged | setting


def spread(runs, rounds):
    """Run ``interleaved`` in ``runs`` fresh processes per thread setting, idle and beside a busy core."""
    rows = []
    for setting, env in THREAD_SETTINGS.items():
        for busy in (False, True):
            p50s = {model_id: [] for model_id in digitrec.MODEL_IDS}
            for _ in range(runs):
                hog = subprocess.Popen([sys.executable, "-c", HOG]) if busy else None
                try:
                    done = subprocess.run(
                        [sys.executable, "-m", "bench.serve", "--interleaved-run", str(rounds)], cwd=ROOT,
                        env=environment(env), capture_output=True, text=True, timeout=600, check=True,
                    )
                finally:
                    if hog:
                        hog.kill()
                        hog.wait()
                for model_id, p50 in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    p50s[model_id].append(p50)
            rows.append((setting, busy, p50s))
    return rows


def print_spread(rows, runs, rounds):
    print(f"## In-process, the models interleaved: p50 ms per run, {runs} fresh processes per row, {rounds} rounds each\n")
    print("median of the runs' p50s (min–max across runs)\n")
    print("| thread pools | other load | " + " | ".join(digitrec.MODEL_IDS) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in digitrec.MODEL_IDS) + " |")
    for setting, busy, p50s in rows:
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" for v in p50s.values()]
        print(f"| {setting} | {'one core busy' if busy else 'none'} | " + " | ".join(cells) + " |", flush=True)
    print()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    port = free_port()
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", "--serve", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", DIGITREC_CORRECTIONS_DIR=tempfile.mkdtemp()),
    )
    return process, f"http://127.0.0.1:{port}/", started


def wait_first_prediction(url, path, started, timeout=120):
    from gradio_client import Client

    while time.time() - started < timeout:
        try:
            urllib.request.urlopen(url + "gradio_api/info", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    client = Client(url, verbose=False)
    client.predict(sketch(path), "cnn", api_name="/predict")
    return time.time() - started


def sketch(path):
    from gradio_client import handle_file

    file = handle_file(str(path))
    return {"background": file, "layers": [], "composite": file}


_data_urls = {}


def drawing_input(api_name, path):
    """Return the drawing as ``api_name`` takes it: a sketch of uploaded files, or a data URL for /read_digit."""
    if api_name != "/read_digit":
        return sketch(path)
    if path not in _data_urls:  # encoded once, as a script holding the PNG in memory would
        _data_urls[path] = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return _data_urls[path]


def load(url, paths, api_name, clients, total):
    """Send ``total`` requests from ``clients`` threads; return (latencies, seconds, errors)."""
    from gradio_client import Client

    latencies, errors = [], []
    lock = threading.Lock()
    counter = iter(range(total))
    models = list(digitrec.MODEL_IDS)

    def worker():
        client = Client(url, verbose=False)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                drawing = drawing_input(api_name, paths[i % len(paths)])
                client.predict(drawing, models[i % len(models)], api_name=api_name)
            except Exception as error:  # counted and reported, never hidden
                with lock:
                    errors.append(repr(error)[:200])
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, errors


def rss_mb(pid):
    """Return the resident memory of the server process (not its children: it starts none), in MB."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, metavar="PORT", help="(internal) serve the app with /noop")
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--spread", action="store_true", help="only the interleaved in-process timings")
    parser.add_argument("--interleaved-run", type=int, metavar="ROUNDS", help="(internal) one interleaved run, as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return
    if args.interleaved_run:
        print(json.dumps(interleaved(drawings(20)[0], args.interleaved_run)))
        return
    runs, rounds = (2, 50) if args.quick else (5, 200)
    if args.spread:
        print_spread(spread(runs, rounds), runs, rounds)
        return
    serial_n, concurrent_n, memory_n = (30, 60, 400) if args.quick else (150, 300, 4000)

    canvases, _ = drawings(60)
    folder = Path(tempfile.mkdtemp(prefix="digitrec-bench-"))
    paths = []
    for i, canvas in enumerate(canvases):
        paths.append(folder / f"{i}.png")
        Image.fromarray(canvas).save(paths[-1])

    print("## In-process: digitrec.predict on an 800×800 drawing\n")
    print("| model | p50 ms | p99 ms |\n| --- | ---: | ---: |")
    for name, p50, p99 in in_process(canvases, 300 if not args.quick else 50):
        print(f"| {name} | {p50:.2f} | {p99:.2f} |")
    print()
    print_spread(spread(runs, rounds), runs, rounds)

    process, url, started = start_server()
    try:
        startup = wait_first_prediction(url, paths[0], started)
        print(f"\n## Start-up\n\n{startup:.1f} s from `python app.py` (+ /noop) to the first answered /predict\n")
        print(f"## HTTP through gradio_client (models mixed {'/'.join(digitrec.MODEL_IDS)})\n")
        print("| endpoint | clients | requests | p50 ms | p99 ms | requests/s | errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        results = {}
        for clients, total in ((1, serial_n), (8, concurrent_n), (32, concurrent_n)):
            for api_name in ("/noop", "/predict", "/read_digit"):
                latencies, seconds, errors = load(url, paths, api_name, clients, total)
                results[(api_name, clients)] = (statistics.median(latencies), total / seconds)
                print(
                    f"| {api_name} | {clients} | {total} | {percentile(latencies, 50):.1f} | "
                    f"{percentile(latencies, 99):.1f} | {total / seconds:.1f} | {len(errors)} |",
                    flush=True,
                )
        ratio = results[("/predict", 1)][0] / results[("/noop", 1)][0]
        print(f"\nserial /predict p50 ÷ /noop p50 = {ratio:.2f}×")
        print(f"/predict with 8 clients: {results[('/predict', 8)][1]:.1f} predictions/s")
        json_ratio = results[("/read_digit", 1)][0] / results[("/predict", 1)][0]
        json_speed = results[("/read_digit", 8)][1] / results[("/predict", 8)][1]
        print(f"serial /read_digit p50 ÷ /predict p50 = {json_ratio:.2f}×")
        print(
            f"/read_digit with 8 clients: {results[('/read_digit', 8)][1]:.1f} predictions/s "
            f"({json_speed:.2f}× /predict's)"
        )

        step = memory_n // 8
        readings = []
        for _ in range(8):
            load(url, paths, "/predict", 8, step)
            readings.append(rss_mb(process.pid))
        print(f"\n## Memory\n\nserver RSS (MB) after each {step:,} of {memory_n:,} more /predict requests (8 clients):")
        print(" ".join(f"{reading:.0f}" for reading in readings))
        print(
            f"first → last {readings[-1] - readings[0]:+.0f} MB; highest {max(readings):.0f} MB, "
            f"lowest after the first {min(readings[1:]):.0f} MB"
        )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
