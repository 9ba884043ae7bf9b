"""Every environment variable digitrec reads, in one table: its default and what it sets.

Code reads a setting with ``number(name)`` or ``text(name)``, never ``os.environ`` directly,
so the README's table (tests/test_config.py checks it lists every name) is complete. Some
variables were renamed so that one prefix names one thing (``DIGITREC_DATA`` is training
data, ``DIGITREC_CORRECTIONS_*`` the visitors' corrections); the old names are still read,
with a warning in the log.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("digitrec")

# name → (default, what it sets). None: unset unless given.
VARIABLES = {
    "DIGITREC_DATA": (None, "folder of the training and benchmark data (default: ../shared/data beside the project)"),
    "DIGITREC_WEIGHTS_DIR": (None, "folder of the bundled weights (default: weights/ beside the package)"),
    "DIGITREC_HUB_REPO": (None, "hub model repo (owner/name) to load the weights from"),
    "DIGITREC_HUB_REVISION": ("main", "branch, tag or commit of DIGITREC_HUB_REPO"),
    "DIGITREC_HUB_TIMEOUT": ("1", "seconds to wait for the hub before the cache, then bundled weights"),
    "DIGITREC_CORRECTIONS_DIR": (None, "folder of the corrections store (default: /data/digitrec on a Space with "
                                       "persistent storage, else feedback-data/)"),
    "DIGITREC_CORRECTIONS_REPO": (None, "hub dataset repo (owner/name) the corrections are copied to"),
    "DIGITREC_CORRECTIONS_SYNC_MINUTES": ("10", "minutes between copies to the hub"),
    "DIGITREC_CORRECTIONS_SYNC_TIMEOUT": ("2", "seconds to wait for the hub when the app starts"),
    "DIGITREC_CORRECTIONS_PER_MINUTE": ("10", "corrections one visitor (session and address) may store a minute"),
    "DIGITREC_CORRECTIONS_PER_DAY": ("200", "... and a day"),
    "DIGITREC_CORRECTIONS_ADDRESS_PER_MINUTE": ("30", "corrections one client address may store a minute"),
    "DIGITREC_CORRECTIONS_ADDRESS_PER_DAY": ("1000", "... and a day"),
    "DIGITREC_CORRECTIONS_MAX_MB": ("1000", "the corrections store's images in all, in MB"),
    "DIGITREC_MAX_UPLOAD_MB": ("2", "one uploaded file (and each part of a drawing sent by id), in MB"),
    "DIGITREC_MAX_REQUEST_MB": ("5", "one request's body, any route, in MB"),
    "DIGITREC_MAX_PIXELS": (str(2048 * 2048), "one drawing's pixels; larger is refused before decoding"),
    "DIGITREC_DRAWINGS_MAX_MB": ("64", "drawings uploaded by id and kept, in all, in MB"),
    "DIGITREC_CACHE_SECONDS": ("3600", "age at which gradio's upload cache and the processed images are removed"),
    "DIGITREC_CONCURRENCY": ("2", "predictions running at once (one per core)"),
    "DIGITREC_TRUST_PROXY": (None, "1: the client address is the last X-Forwarded-For entry (default on a Space)"),
    "DIGITREC_CHROMIUM": ("/usr/bin/chromium", "the browser the browser tests and bench.browser drive"),
    "DIGITREC_DOCS_SCREENSHOTS": (None, "1: the screenshot tests rewrite the README's screenshots in docs/"),
}
RENAMED = {  # old name → new name
    "DIGITREC_DATA_DIR": "DIGITREC_CORRECTIONS_DIR",
    "DIGITREC_FEEDBACK_REPO": "DIGITREC_CORRECTIONS_REPO",
    "DIGITREC_FEEDBACK_SYNC_MINUTES": "DIGITREC_CORRECTIONS_SYNC_MINUTES",
    "DIGITREC_FEEDBACK_SYNC_TIMEOUT": "DIGITREC_CORRECTIONS_SYNC_TIMEOUT",
    "DIGITREC_FEEDBACK_PER_MINUTE": "DIGITREC_CORRECTIONS_PER_MINUTE",
    "DIGITREC_FEEDBACK_PER_DAY": "DIGITREC_CORRECTIONS_PER_DAY",
    "DIGITREC_FEEDBACK_ADDRESS_PER_MINUTE": "DIGITREC_CORRECTIONS_ADDRESS_PER_MINUTE",
    "DIGITREC_FEEDBACK_ADDRESS_PER_DAY": "DIGITREC_CORRECTIONS_ADDRESS_PER_DAY",
    "DIGITREC_STORE_MAX_MB": "DIGITREC_CORRECTIONS_MAX_MB",
}
_warned = set()


def text(name: str) -> str | None:
    """Return the setting ``name`` from the environment (or its old name), else its default.

    An empty value counts as unset. Settings are read on each call, so tests and the
    store's limits can change them while the process runs.
    """
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a digitrec setting; add it to digitrec/config.py's VARIABLES.")
    value = os.environ.get(name)
    if not value:
        for old, new in RENAMED.items():
            if new == name and os.environ.get(old):
                if old not in _warned:
                    _warned.add(old)
                    log.warning("%s is deprecated: set %s instead (read this time)", old, new)
                value = os.environ[old]
    return value or VARIABLES[name][0]


def number(name: str) -> float:
    """Return the setting ``name`` as a number, or raise ValueError naming the variable."""
    value = text(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}.") from None
