"""What an app open to scripts needs around gradio: short refusals, quiet safe logs, a bounded disk.

- ``refuse(message)``: the one way the app says no to a client: a ``gr.Error`` without a
  traceback, logged as one line.
- ``shown(value)`` (from ``messages``): a client-supplied value shortened for a message or a log line.
- ``EscapeControl``: a logging filter that escapes line breaks and other control
  characters, so a client's string can never start a forged log line.
- ``ModelRadio``: gradio's Radio, refusing an unknown value with a short message (stock
  gradio echoes the whole value, 1,000 characters or more, and logs a traceback).
- ``visitor(request)``: the session and client address a quota counts.
- ``guard_paths(blocks)``: a file path a client may not read gets a clear message instead
  of gradio's ``{"error": null}`` and a traceback.
- ``clean_folder`` / ``start_cleaner``: old files and empty folders removed, every few minutes.
- ``BodyLimit``: a request body over a size is refused (413) before it is read or stored
  (gradio's ``max_file_size`` bounds each file, not the 1,000 files one request may carry).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import gradio as gr
from gradio.exceptions import InvalidPathError

from . import config
from .messages import cut, shown

log = logging.getLogger("digitrec.app")

PATH_MESSAGE = "Reading this file is not allowed: it was not uploaded to this app. Send the image itself, not a path."
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """Escape line breaks and control characters: one log record is always one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class EscapeControl(logging.Filter):
    """Format each record's message now and escape it (its args may be client strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, ()
        return True


def configure_logging(level=logging.INFO) -> None:
    """The app's log format, with every handler's records escaped."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, EscapeControl) for f in handler.filters):
            handler.addFilter(EscapeControl())


def refuse(message, title: str = "Cannot read this", detail: str | None = None) -> gr.Error:
    """Return the gr.Error that answers a client's mistake: shown to it, logged in one line, no traceback.

    ``message`` is a text or the ValueError that says what is wrong; ``detail`` (what the
    client sent, cut to 200 characters) is logged but not shown.
    """
    message = cut(message) if isinstance(message, BaseException) else message
    log.info("refused (%s): %s%s", title, message, f" [{detail[:200]}]" if detail else "")
    return gr.Error(message, title=title, print_exception=False)


class ModelRadio(gr.Radio):
    """A Radio that refuses a value outside its choices with a short message, not the whole value."""

    def get_block_name(self) -> str:
        return "radio"  # the stock front end

    def preprocess(self, payload):
        choices = [value for _, value in self.choices]
        if payload is not None and payload not in choices:
            raise refuse(f"Unknown model {shown(payload)}; valid models: {', '.join(map(str, choices))}.")
        return super().preprocess(payload)


def guard_paths(blocks: gr.Blocks) -> None:
    """Answer a request naming a file the client may not read with PATH_MESSAGE (gradio says nothing)."""
    original = blocks.preprocess_data

    async def preprocess_data(*args, **kwargs):
        try:
            return await original(*args, **kwargs)
        except InvalidPathError as error:
            raise refuse(PATH_MESSAGE, "Not allowed", detail=str(error)) from None

    blocks.preprocess_data = preprocess_data


def visitor(request) -> dict:
    """Return {"session", "address"} of a gradio request (None for each when called directly).

    Behind a proxy (a Hugging Face Space: SPACE_ID is set; else DIGITREC_TRUST_PROXY=1) the
    address is the last one in X-Forwarded-For, the one the proxy itself added; a client
    can put anything before it.
    """
    client = getattr(request, "client", None)
    address = getattr(client, "host", None)
    trust = (config.text("DIGITREC_TRUST_PROXY") or ("1" if os.environ.get("SPACE_ID") else "0")) == "1"
    headers = getattr(request, "headers", None)
    if trust and headers is not None:
        forwarded = (headers.get("x-forwarded-for") or "").split(",")[-1].strip()
        address = forwarded or address
    return {"session": getattr(request, "session_hash", None), "address": address}


# ---------------------------------------------------------------- disk


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware refusing a request body over ``max_bytes`` with 413, whatever the route.

    A declared Content-Length over the limit is refused before the app sees the request:
    up to DRAIN times the limit the body is read and dropped first, so the client gets the
    message (a client still sending when the server closes sees only a reset); beyond that
    it is refused at once. A body sent without a length is counted as it arrives and the
    request stopped once it passes the limit.
    """

    DRAIN = 4

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            if int(length) <= self.DRAIN * self.max_bytes:
                message = {"more_body": True}
                while message.get("more_body") and message.get("type", "http.request") == "http.request":
                    message = await receive()  # each chunk dropped as it arrives
            return await self._refuse(send, int(length))
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, received)

    async def _refuse(self, send, size: int) -> None:
        message = f"Request is too large: {size:,} bytes; the largest accepted is {self.max_bytes:,} bytes."
        log.info("refused (Request too large): %s", message)
        body = ('{"detail": "%s"}' % message).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def body_limit(max_bytes: int) -> dict:
    """``launch(app_kwargs=...)`` adding BodyLimit to gradio's FastAPI app."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(BodyLimit, max_bytes=max_bytes)]}


def kept_folder(path: Path, age: float) -> Path:
    """Return ``path``, created, without what earlier runs left there over ``age`` seconds ago.

    One fixed folder instead of a new temporary one per start (which nothing removed); not
    emptied outright, since another server on the same machine may be using it.
    """
    path.mkdir(parents=True, exist_ok=True)
    clean_folder(path, age)
    return path


def clean_folder(folder: Path, age: float, files: bool = True, keep=()) -> int:
    """Remove empty subfolders (except ``keep``), and files when ``files``, older than ``age`` seconds.

    Returns how many went.
    """
    keep = {str(folder), *map(str, keep)}
    removed, now = 0, time.time()
    for root, _, names in os.walk(folder, topdown=False):
        for name in names if files else ():
            path = os.path.join(root, name)
            try:
                if now - os.lstat(path).st_mtime > age:
                    os.unlink(path)
                    removed += 1
            except OSError:
                pass
        if root not in keep:
            try:
                if now - os.stat(root).st_mtime > age:
                    os.rmdir(root)  # only succeeds when empty
                    removed += 1
            except OSError:
                pass
    return removed


def start_cleaner(folders, every: float, age: float) -> threading.Thread:
    """Every ``every`` seconds, in a daemon thread, clean each (folder, files) pair of ``folders``."""

    roots = [folder for folder, _ in folders]

    def run():
        while True:
            time.sleep(every)
            for folder, files in folders:
                try:
                    clean_folder(Path(folder), age, files, keep=roots)
                except Exception as error:  # a cleaner must never stop; say what happened
                    log.warning("cleaning %s failed: %s", folder, error)

    thread = threading.Thread(target=run, name="digitrec-cleaner", daemon=True)
    thread.start()
    return thread
