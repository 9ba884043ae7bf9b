"""Short one-line texts for people and logs: every error text and client value is cut the same way."""

from __future__ import annotations


def cut(text, limit: int = 160) -> str:
    """Return the first line of ``text`` (or of an exception's message, else its type), at most ``limit`` characters.

    A cut text ends in "...", so a reader knows there was more.
    """
    if isinstance(text, BaseException):
        text = str(text).strip() or type(text).__name__
    text = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value, limit: int = 40) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters: how a client's value appears in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
