"""What every call to the Hugging Face Hub shares: a deadline, so an unreachable hub costs seconds, not minutes.

huggingface_hub retries for ~20 s before it gives up; the weights loader and the
corrections sync run their hub calls through ``with_deadline`` and fall back when it expires.
"""

from __future__ import annotations

import threading


def with_deadline(function, timeout: float):
    """Run ``function`` in a daemon thread; return its result, re-raise its error, or raise TimeoutError."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed back to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True, name="digitrec-hub")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer from the hub within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
