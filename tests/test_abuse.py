"""Issue 12: a Space is open to scripts. Each attack replayed against the real app, with its bound.

One server (``python app.py`` on 127.0.0.1, its own data folder, gradio cache and temp
folder) takes every attack in file order; each test prints its figure (server RSS, disk,
victim latency) and asserts the bound. Every loop is bounded in count and time; the whole
module runs in about a minute. ``python -m pytest tests/test_abuse.py -s`` prints the figures
(docs/abuse.md records them before and after the fix).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import png_bytes, start_app, stop_app

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not

PER_MINUTE, PER_DAY = 3, 5  # the per-visitor quota the server runs with here
FIGURES: dict[str, str] = {}


def figure(name, text):
    FIGURES[name] = text
    print(f"\n[abuse] {name}: {text}")


# ---------------------------------------------------------------- the server and its measures


@pytest.fixture(scope="module")
def server(tmp_path_factory, one_per_label):
    root = tmp_path_factory.mktemp("abuse")
    folders = {name: root / name for name in ("data", "gradio", "tmp")}
    for folder in folders.values():
        folder.mkdir()
    env = {
        "DIGITREC_CORRECTIONS_DIR": str(folders["data"]),
        "GRADIO_TEMP_DIR": str(folders["gradio"]),
        "TMPDIR": str(folders["tmp"]),
        "DIGITREC_CORRECTIONS_PER_MINUTE": str(PER_MINUTE),
        "DIGITREC_CORRECTIONS_PER_DAY": str(PER_DAY),
        "DIGITREC_CORRECTIONS_ADDRESS_PER_MINUTE": "6",
        "DIGITREC_CORRECTIONS_ADDRESS_PER_DAY": "10",
        "DIGITREC_CACHE_SECONDS": "3",
    }
    process, url, _ = start_app(env)
    state = dict(process=process, url=url, **folders, sketch_id=_sketch_id(url))
    state["good"] = png_bytes(Image.fromarray(one_per_label[7]))
    for _ in range(3):  # warm: the first requests allocate what every later one reuses
        assert call(url, "predict", [sketch_file(upload(url, state["good"])), "cnn"])[0] == "ok"
    state["rss0"] = rss(process.pid)
    yield state
    stop_app(process)
    state["log"] = Path(process.log_path).read_text(errors="replace")
    if FIGURES:
        print("\n[abuse] summary\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items()))


def _status(pid, key) -> float:
    """Return a /proc/<pid>/status field in MB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def rss(pid) -> float:
    return _status(pid, "VmRSS")


def reset_peak(pid) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS


def peak(pid) -> float:
    return _status(pid, "VmHWM")


def du(folder: Path) -> tuple[int, int]:
    """Return (bytes, inodes) under a folder, skipping what the server deletes while we walk it."""
    size = count = 0
    for directory, folders, files in os.walk(folder):  # os.walk ignores folders that vanish mid-walk
        count += len(folders)
        for name in files:
            try:
                size += os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # the server's cache pruning runs concurrently with this walk
                continue
            count += 1
    return size, count


# ---------------------------------------------------------------- raw HTTP, as a script sends it


def _sketch_id(url):
    with urllib.request.urlopen(f"{url}config", timeout=10) as response:
        config = json.load(response)
    return next(c["id"] for c in config["components"] if c["type"] == "imageeditor")


def _multipart(fields, files):
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    for name, filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def http(url, data=None, content_type="application/json", headers=None, timeout=30):
    """POST (or GET without data); return (status, body text), never raising on an HTTP error."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except urllib.error.URLError as error:  # a server refusing a large body may close before reading it all
        if isinstance(error.reason, ConnectionError):
            return 0, f"connection closed: {error.reason}"
        raise


def send_blob(state, drawing_id, data, part="composite", index="null"):
    """Upload one part of a drawing the way the browser's sketchpad does; return (status, body)."""
    fields = {"component_id": str(state["sketch_id"]), "session_hash": uuid.uuid4().hex, "fn_name": "accept_blobs",
              "id": drawing_id, "type": part, "index": index}
    body, content_type = _multipart(fields, [("file", f"{part}.png", data)])
    return http(f"{state['url']}gradio_api/component_server", body, content_type)


def upload(url, data, count=1):
    """Upload files to gradio's upload route; return the server path of the first (or the error)."""
    body, content_type = _multipart({}, [("files", f"d{i}.png", data) for i in range(count)])
    status, text = http(f"{url}gradio_api/upload", body, content_type)
    return json.loads(text)[0] if status == 200 else (status, text)


def sketch_file(path):
    file = {"path": path, "meta": {"_type": "gradio.FileData"}}
    return {"background": None, "layers": [], "composite": file}


def sketch_id(drawing_id):
    return {"background": None, "layers": [], "composite": None, "id": drawing_id}


def call(url, api, data, session=None, address=None, timeout=30):
    """Call an endpoint through /gradio_api/call; return ("ok", value) or ("error", message)."""
    headers = {"X-Forwarded-For": address} if address else {}
    body = json.dumps({"data": data, "session_hash": session or uuid.uuid4().hex}).encode()
    status, text = http(f"{url}gradio_api/call/{api}", body, headers=headers, timeout=timeout)
    assert status == 200, (status, text[:300])
    event = json.loads(text)["event_id"]
    status, text = http(f"{url}gradio_api/call/{api}/{event}", headers=headers, timeout=timeout)
    kind = None
    for line in text.splitlines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind in ("complete", "error"):
            value = json.loads(line[5:]) if line[5:].strip() not in ("", "null") else None
            if kind == "complete":
                return "ok", value
            message = value.get("error") if isinstance(value, dict) else value
            return "error", str(message)
    raise AssertionError(f"no answer: {text[:300]}")


# ---------------------------------------------------------------- images an attacker sends


def png_header_only(width, height) -> bytes:
    """A PNG whose header claims width×height, with one tiny (truncated) data chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def big_drawing(side, seed=0) -> bytes:
    """A side×side drawing: a thick 7 on white, and faint speckle (what makes a stored copy big)."""
    image = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(side * 0.25, side * 0.2), (side * 0.75, side * 0.2), (side * 0.4, side * 0.85)], fill=0,
             width=side // 14)
    speckle = np.random.default_rng(seed).random((side, side)) < 0.02
    array = np.asarray(image).copy()
    array[speckle] = 200
    return png_bytes(Image.fromarray(array).convert("RGB"))


# ---------------------------------------------------------------- the attacks, in order


def test_uploads_by_id_are_capped_in_memory(server):
    """Twice 226 MB of drawings uploaded to the sketchpad's route and never read: RSS stays bounded.

    Kept drawings are capped at 64 MB; what the allocator keeps of the refused and evicted
    request buffers varies from run to run and creeps up slowly (five rounds, two runs: +67,
    +120, +149, +115, +150 MB and +67, +84, +119, +135, +151 MB), so the bound is on RSS
    after two rounds, 452 MB sent: a store without a cap keeps about all of it (+220 MB a round).
    """
    pid, good = server["process"].pid, server["good"]
    padded = good + b"\0" * (900_000 - len(good))  # a valid header, ~0.9 MB: under any per-file cap
    junk = padded + os.urandom(4_100_000)  # 5 MB
    before, started, refused, grown = rss(pid), time.time(), [], []
    for round_ in range(2):
        for i in range(160):
            status, text = send_blob(server, f"flood{round_}-{i}", junk if i < 20 else padded)
            if status != 200:
                refused.append((status, text[:200]))
        grown.append(rss(pid) - before)
    figure("twice 160 uploads by id never read (20×5 MB + 140×0.9 MB = 226 MB each)",
           f"RSS after each round +{', +'.join(f'{g:.0f}' for g in grown)} MB, in {time.time() - started:.1f} s;"
           f" {len(refused)} refused {refused[:1]}")
    assert grown[1] <= 200  # of 452 MB sent
    assert len(refused) == 40 and all(status == 413 for status, _ in refused), refused[:3]


def test_an_absurd_layer_index_is_refused_at_once(server):
    pid = server["process"].pid
    before, started = rss(pid), time.time()
    status, text = send_blob(server, "index", server["good"], part="layer", index="100000000")
    seconds = time.time() - started
    figure("layer index 100,000,000", f"HTTP {status} in {seconds:.2f} s, RSS +{rss(pid) - before:.0f} MB ({text[:80]})")
    assert seconds < 1 and rss(pid) - before < 50
    assert status == 400


def test_extra_layers_are_never_decoded(server):
    """A 4096² PNG of ~20 KB as the composite and as 8 more layers, then /predict by id."""
    pid, url = server["process"].pid, server["url"]
    huge = png_bytes(Image.new("L", (4096, 4096), 255))
    results = []
    for layers in (0, 8):
        drawing_id = f"layers{layers}"
        reset_peak(pid)
        before = rss(pid)
        send_blob(server, drawing_id, huge, "composite")
        for index in range(layers):
            send_blob(server, drawing_id, huge, "layer", str(index))
        outcome = call(url, "predict", [sketch_id(drawing_id), "cnn"])
        results.append((layers, peak(pid) - before, outcome))
    # 8 layers of 4096² beside a canvas-sized composite: read as the composite alone
    reset_peak(pid)
    before = rss(pid)
    send_blob(server, "layers-good", server["good"], "composite")
    for index in range(8):
        send_blob(server, "layers-good", huge, "layer", str(index))
    good = call(url, "predict", [sketch_id("layers-good"), "cnn"])
    results.append(("8 + canvas composite", peak(pid) - before, good))
    figure("4096² composite + layers", "; ".join(f"{n} layers: peak +{p:.0f} MB ({o[0]} {str(o[1])[:60]})"
                                                   for n, p, o in results))
    assert all(p <= 100 for _, p, _ in results)
    assert results[0][2][0] == "error" and "too large" in results[0][2][1]
    assert good[0] == "ok" and good[1][0]["label"] == "7"


def test_stored_corrections_are_small(server):
    """One 4096² drawing uploaded once, named by 4 /feedback calls; and one 2048² drawing."""
    url, data = server["url"], server["data"]
    before, _ = du(data)
    outcomes = []
    for side in (4096, 2048):
        path = upload(url, big_drawing(side))
        for i in range(2):
            if not isinstance(path, str):  # the upload itself was refused
                outcomes.append(("error", path[1]))
                continue
            outcomes.append(call(url, "feedback", [sketch_file(path), "numpy", 7], session=f"disk{side}-{i}",
                                 address=f"10.0.1.{i}"))
    stored = sum(o[0] == "ok" for o in outcomes)
    grown = du(data)[0] - before
    per_row = grown / max(stored, 1)
    figure("/feedback with 4096² and 2048² drawings", f"{stored} stored, {grown / 1e6:.2f} MB on disk,"
           f" {per_row / 1e3:.0f} KB per stored correction; {[str(o[1])[:60] for o in outcomes if o[0] != 'ok'][:1]}")
    assert stored >= 2  # the 2048² one (within the accepted size) is stored, downscaled
    assert per_row <= 100_000
    assert all("too large" in o[1] or "maximum allowed size" in o[1] for o in outcomes if o[0] == "error")


def test_feedback_quota_per_visitor_and_a_sender_on_every_row(server):
    url, good = server["url"], server["good"]
    path = upload(url, good)
    outcomes = [call(url, "feedback", [sketch_file(path), "cnn", 7], session="quota", address="10.0.2.1")
                for _ in range(PER_MINUTE + 1)]
    figure("/feedback, one visitor, 4 in a row", " | ".join(f"{k}: {str(v)[:70]}" for k, v in outcomes))
    assert [k for k, _ in outcomes] == ["ok"] * PER_MINUTE + ["error"]
    assert "too many corrections" in outcomes[-1][1].lower()
    # another visitor is not affected
    assert call(url, "feedback", [sketch_file(path), "cnn", 7], session="other", address="10.0.2.2")[0] == "ok"
    with sqlite3.connect(server["data"] / "corrections.sqlite3") as db:
        senders = [row[0] for row in db.execute("SELECT sender FROM corrections")]
    assert senders and all(isinstance(s, str) and len(s) >= 12 for s in senders)
    assert not any("10.0.2" in s or "quota" in s for s in senders)  # pseudonymous


def test_feedback_quota_per_address(server):
    """New sessions from one address do not escape the quota: the address has its own."""
    url, good = server["url"], server["good"]
    path = upload(url, good)
    outcomes = [call(url, "feedback", [sketch_file(path), "cnn", 7], session=f"rotate{i}", address="10.0.3.1")
                for i in range(12)]
    refused = [v for k, v in outcomes if k == "error"]
    figure("/feedback, one address, 12 sessions", f"{len(outcomes) - len(refused)} stored, {len(refused)} refused")
    assert refused and all("too many corrections" in v.lower() for v in refused)


def test_upload_cache_is_bounded(server):
    url, cache, pid = server["url"], server["gradio"], server["process"].pid
    before = du(cache)
    status = upload(url, b"\0" * 20_000_000)  # refused: 413, or the connection closed mid-upload
    big = du(cache)[0] - before[0]
    started = time.time()
    many = upload(url, b"x", count=1000)
    seconds = time.time() - started
    inodes = du(cache)[1] - before[1]
    heavy = upload(url, b"\0" * 10_000, count=1000)  # 1,000 files of 10 KB: each under max_file_size, 10 MB in all
    heavy_disk = du(cache)[0] - before[0]
    deadline = time.time() + 10
    while time.time() < deadline and du(cache)[1] - before[1] > 50:
        time.sleep(0.5)
    left = du(cache)[1] - before[1]
    leaked = sorted(p.name for p in server["tmp"].iterdir() if p.name.startswith("digitrec-processed-"))
    figure("gradio upload cache", f"20 MB upload: {status if isinstance(status, tuple) else 'stored'} (+{big / 1e6:.1f} MB);"
           f" 1,000 files in {seconds:.2f} s: +{inodes} inodes, {left} left after ≤10 s;"
           f" 1,000 × 10 KB: {heavy if isinstance(heavy, tuple) else 'stored'} (+{heavy_disk / 1e6:.1f} MB);"
           f" temp folders: {leaked}")
    assert isinstance(status, tuple) and status[0] in (413, 0) and big < 1_000_000
    assert isinstance(heavy, tuple) and heavy[0] in (413, 0) and heavy_disk < 1_000_000
    assert left <= 50
    assert leaked == []
    assert rss(pid) > 0 and isinstance(many, (str, tuple))


def test_unknown_drawing_ids_do_not_stall_other_visitors(server):
    url = server["url"]
    path = upload(url, server["good"])

    def victim(count):
        times = []
        for _ in range(count):
            started = time.time()
            assert call(url, "predict", [sketch_file(path), "cnn"])[0] == "ok"
            times.append(time.time() - started)
        return statistics.median(times)

    alone = victim(7)
    stop, answered = threading.Event(), []

    def attacker(n):
        for i in range(4):  # 8 clients × 4 = 32 requests naming drawings never uploaded (the issue: 26)
            if stop.is_set():
                return
            time.sleep(0.3)  # a client pausing between requests: the stall, not a flood of the queue
            started = time.time()
            kind, message = call(url, "predict", [sketch_id(f"never-{n}-{i}"), "cnn"], timeout=60)
            answered.append((time.time() - started, kind, message))

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    attacked = victim(5)
    stop.set()
    for thread in threads:
        thread.join(60)
    slowest = max(t for t, _, _ in answered)
    figure("unknown drawing ids, 8 clients", f"victim /predict p50 {alone * 1000:.0f} ms alone, "
           f"{attacked * 1000:.0f} ms under attack ({attacked / alone:.1f}×); slowest attack answer {slowest:.2f} s;"
           f" {answered[0][2][:70]!r}")
    assert attacked <= 3 * alone
    assert all(kind == "error" for _, kind, _ in answered)


@pytest.mark.parametrize("side", [20000, 65535])
def test_oversized_images_are_called_too_large(server, side):
    url = server["url"]
    data = png_header_only(side, side)
    by_file = call(url, "predict", [sketch_file(upload(url, data)), "cnn"])
    status, text = send_blob(server, f"huge{side}", data)
    by_id = call(url, "predict", [sketch_id(f"huge{side}"), "cnn"])
    figure(f"{side}² PNG", f"by file: {by_file[1][:70]!r}; by id: upload HTTP {status} {text[:60]!r}, predict {by_id[1][:50]!r}")
    assert by_file[0] == "error" and "too large" in by_file[1]
    assert status == 413 and "too large" in text


def test_disallowed_path_gets_a_clear_message(server):
    outcome = call(server["url"], "predict", [sketch_file("/etc/passwd"), "cnn"])
    figure("disallowed path /etc/passwd", repr(outcome)[:120])
    assert outcome[0] == "error" and "not allowed" in outcome[1].lower()


def test_long_model_id_is_cut_in_messages(server):
    url = server["url"]
    path = upload(url, server["good"])
    long_id = "m" * 1000
    messages = [call(url, api, data)[1] for api, data in (
        ("predict", [sketch_file(path), long_id]),
        ("model_details", [long_id]),
        ("feedback", [sketch_file(path), long_id, 3]),
    )]
    figure("1,000-character model id", f"message lengths {[len(m) for m in messages]}")
    assert all(0 < len(m) <= 200 for m in messages), [m[:80] for m in messages]


def test_client_errors_log_one_line_each_and_cannot_forge_lines(server):
    url = server["url"]
    log_path = Path(server["process"].log_path)
    start = log_path.stat().st_size
    forged = "FORGED digitrec.app INFO all is well"
    call(url, "predict", [sketch_file(f"/etc/passwd\n{forged}"), "cnn"])
    call(url, "predict", [sketch_file("/nonexistent\r\n" + forged), "cnn"])
    call(url, "predict", [sketch_file(upload(url, png_header_only(20000, 20000))), "cnn"])
    call(url, "predict", [sketch_file(upload(url, server["good"])), "x" * 1000])
    call(url, "predict", [sketch_id("never-logged"), "cnn"])
    time.sleep(0.5)
    with open(log_path, "rb") as file:
        file.seek(start)
        added = file.read().decode(errors="replace")
    lines = added.splitlines()
    figure("log of 5 client errors", f"{len(added)} bytes, {len(lines)} lines, "
           f"{added.count('Traceback')} tracebacks, forged line: {any(line.startswith(forged) for line in lines)}")
    assert "Traceback" not in added
    assert not any(line.startswith(forged) for line in lines)
    assert len(added) <= 5 * 400


def test_after_every_attack_a_valid_prediction_works_and_memory_is_bounded(server):
    url, pid = server["url"], server["process"].pid
    kind, value = call(url, "predict", [sketch_file(upload(url, server["good"])), "cnn"])
    grown = rss(pid) - server["rss0"]
    figure("after all attacks", f"valid /predict: {kind} {value[0]['label'] if kind == 'ok' else value!r}; "
           f"server RSS {server['rss0']:.0f} → {rss(pid):.0f} MB (+{grown:.0f})")
    assert kind == "ok" and value[0]["label"] == "7"
    assert grown <= 300
