"""Copy the corrections store to a private Hugging Face dataset every few minutes.

Settings (``digitrec/config.py``): DIGITREC_CORRECTIONS_REPO (the dataset, "owner/name"; unset:
no copy), DIGITREC_CORRECTIONS_SYNC_MINUTES and DIGITREC_CORRECTIONS_SYNC_TIMEOUT.

The live SQLite file is never uploaded: before each upload the store writes a consistent
snapshot of its rows (``FeedbackStore.write_snapshot``), and images are written before rows,
so every image a snapshot names is there.
"""

from __future__ import annotations

import logging
import threading

from . import config
from .feedback import DB_NAME, FeedbackStore
from .hub import with_deadline
from .messages import cut

log = logging.getLogger("digitrec")

_schedulers = {}
_sync_lock = threading.Lock()
SYNC_IGNORE = [DB_NAME, f"{DB_NAME}-*", "*.tmp", ".*"]  # the live database and files being written


def _scheduler_class():
    from huggingface_hub import CommitScheduler

    class FeedbackScheduler(CommitScheduler):
        """A CommitScheduler that writes a consistent snapshot of the rows before each upload."""

        def __init__(self, store: FeedbackStore, **kwargs):
            self.store = store  # set first: the constructor starts the first upload
            super().__init__(folder_path=store.directory, ignore_patterns=SYNC_IGNORE, **kwargs)

        def push_to_hub(self):
            self.store.write_snapshot()  # images are written before rows: the snapshot's images exist
            return super().push_to_hub()

    return FeedbackScheduler


def start_sync(store: FeedbackStore):
    """Copy the store to a private hub dataset every few minutes, if DIGITREC_CORRECTIONS_REPO is set.

    Returns the scheduler, or None when sync is off or the hub cannot be reached: creating
    the scheduler contacts the hub, which is given DIGITREC_CORRECTIONS_SYNC_TIMEOUT seconds
    in a background thread, so an unreachable hub never stops the app from starting;
    corrections are then kept locally (and synced after all if the hub answers late).
    Calling it again for the same folder returns the running scheduler.
    """
    log.info("feedback: storing corrections in %s", store.directory)
    repo = config.text("DIGITREC_CORRECTIONS_REPO")
    if not repo:
        log.info("feedback: hub sync off (set DIGITREC_CORRECTIONS_REPO to copy corrections to a hub dataset)")
        return None
    key = store.directory.resolve()
    with _sync_lock:
        if key in _schedulers:
            return _schedulers[key]
    gave_up = threading.Event()

    def create():
        scheduler = _scheduler_class()(store, repo_id=repo, repo_type="dataset", every=minutes, private=True)
        with _sync_lock:
            running = _schedulers.setdefault(key, scheduler)
        if running is not scheduler:  # another caller started one meanwhile
            scheduler.stop()
        elif gave_up.is_set():
            log.info("feedback: the hub answered late; syncing to %s after all", repo)
        return running

    try:
        minutes = config.number("DIGITREC_CORRECTIONS_SYNC_MINUTES")
        timeout = config.number("DIGITREC_CORRECTIONS_SYNC_TIMEOUT")
        if not minutes > 0:
            raise ValueError(f"DIGITREC_CORRECTIONS_SYNC_MINUTES must be positive; got {minutes:g}")
        scheduler = with_deadline(create, timeout)
    except Exception as error:
        gave_up.set()
        log.warning("feedback sync disabled: %s; corrections are kept locally in %s", cut(error), store.directory)
        return None
    log.info("feedback: syncing to hub dataset %s every %g min", repo, minutes)
    return scheduler
