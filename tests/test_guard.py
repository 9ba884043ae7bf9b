"""Short refusals, one-line logs and a cleaned disk (digitrec.guard)."""

from __future__ import annotations

import logging
import os
import time

from digitrec import guard
from digitrec.messages import cut, shown


def test_shown_shortens_client_values():
    assert shown("cnn") == "'cnn'"
    long = shown("m" * 1000)
    assert len(long) == 40 and long.endswith("...")


def test_cut_keeps_one_short_line_of_an_error():
    assert cut(ValueError("first line\nsecond")) == "first line"
    assert cut(KeyError()) == "KeyError"
    long = cut("x" * 500, 120)
    assert len(long) == 120 and long.endswith("...")


def test_log_records_stay_on_one_line(caplog):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "path %s", ("/etc/passwd\nFORGED line\r\x1b[2J",), None)
    assert guard.EscapeControl().filter(record)
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert message == "path /etc/passwd\\nFORGED line\\r\\x1b[2J"


def test_refuse_logs_one_line_and_prints_no_traceback(caplog):
    with caplog.at_level(logging.INFO, logger="digitrec.app"):
        error = guard.refuse("Image is too large.")
    assert error.print_exception is False and error.message == "Image is too large."
    assert [r.getMessage() for r in caplog.records] == ["refused (Cannot read this): Image is too large."]


def test_clean_folder_removes_old_files_and_empty_folders_only(tmp_path):
    old, new = tmp_path / "a" / "old.png", tmp_path / "b" / "new.png"
    for path in (old, new):
        path.parent.mkdir()
        path.write_bytes(b"x")
    past = time.time() - 100
    os.utime(old, (past, past))
    os.utime(old.parent, (past, past))
    assert guard.clean_folder(tmp_path, age=50, files=False) == 0  # files kept when files=False; a is not empty
    assert guard.clean_folder(tmp_path, age=50) == 1
    os.utime(old.parent, (past, past))  # removing the file touched the folder
    assert guard.clean_folder(tmp_path, age=50) == 1
    assert not old.parent.exists() and new.exists() and tmp_path.exists()


def test_visitor_address_behind_a_proxy(monkeypatch):
    from types import SimpleNamespace

    request = SimpleNamespace(session_hash="s", client=SimpleNamespace(host="10.0.0.9"),
                              headers={"x-forwarded-for": "1.2.3.4, 5.6.7.8"})
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("DIGITREC_TRUST_PROXY", raising=False)
    assert guard.visitor(request) == {"session": "s", "address": "10.0.0.9"}
    monkeypatch.setenv("SPACE_ID", "owner/digitrec")
    assert guard.visitor(request) == {"session": "s", "address": "5.6.7.8"}  # the proxy's, not the client's
    assert guard.visitor(None) == {"session": None, "address": None}


def test_refuse_logs_what_the_client_sent_escaped_but_does_not_show_it(caplog):
    caplog.handler.addFilter(guard.EscapeControl())  # as configure_logging() does for the app's handlers
    with caplog.at_level(logging.INFO, logger="digitrec.app"):
        error = guard.refuse("Not allowed.", "Not allowed", detail="/etc/passwd\nFORGED")
    assert error.message == "Not allowed."
    assert caplog.messages == ["refused (Not allowed): Not allowed. [/etc/passwd\\nFORGED]"]


def test_body_limit_refuses_large_requests_with_or_without_a_length():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def size(request):
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/", size, methods=["POST"])], **guard.body_limit(100))
    client = TestClient(app)
    assert client.post("/", content=b"x" * 100).text == "100"
    for body in (b"x" * 101, b"x" * 10_000, iter([b"x" * 60, b"x" * 60])):  # drained, at once, counted
        response = client.post("/", content=body)
        assert response.status_code == 413 and "too large" in response.json()["detail"]
