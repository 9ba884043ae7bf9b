"""A folder that keeps a training run's state after every epoch, so a killed run goes on where it stopped.

A fresh training on the full mix takes longer than one sitting on a 2-core machine. Given
``backup=folder``, ``Model.fit`` saves after every epoch — weights, optimizer moments, the
epoch and the history — and, given the same folder again, continues from the last saved
epoch with the same batches and learning rate, so it ends with the weights one uninterrupted
run would have. The Keras models keep their state with Keras' own ``BackupAndRestore``
callback; the numpy network writes its arrays here. Every file is replaced whole (written
beside, then renamed), so a run killed while saving keeps the epoch before.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

RUN_FILE = "run.json"  # what the run is: a different command must not continue it
HISTORY_FILE = "history.json"  # one row per epoch, written before the state it describes
STATE_FILE = "state.npz"  # the numpy network's arrays and counters


def fingerprint(x, y) -> str:
    """Return the SHA-256 of the training images and labels: a run continues only on the data it began with."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x).data)
    digest.update(np.ascontiguousarray(y).data)
    return digest.hexdigest()


def saved_history(folder, saved_epochs: int) -> list[dict]:
    """Return the rows of the first ``saved_epochs`` epochs kept in ``folder``.

    A row is written before its epoch's state: a process killed between the two leaves a row
    whose state was not saved, and it is dropped here.
    """
    path = Path(folder) / HISTORY_FILE
    if not path.exists():
        return []
    with open(path) as file:
        rows = json.load(file)
    return [row for row in rows if row["epoch"] <= saved_epochs]


def _replace(path: Path, write) -> None:
    """Write ``path`` through ``write(file)`` into a file beside it, then rename it over: never half a file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        write(file)
    os.replace(partial, path)


class Backup:
    """The backup folder of one run, described by ``run`` (a dict of JSON values)."""

    def __init__(self, folder, run: dict):
        """Open ``folder`` for ``run``; raise ValueError if it keeps the state of another run."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        run = json.loads(json.dumps(run))  # tuples become lists, as they come back from the file
        path = self.folder / RUN_FILE
        if path.exists():
            with open(path) as file:
                saved = json.load(file)
            changed = sorted(name for name in run.keys() | saved.keys() if saved.get(name) != run.get(name))
            if changed:
                raise ValueError(
                    f"{self.folder} keeps the state of another run ({', '.join(changed)} differ): "
                    "run the same command to continue it, or give another backup folder."
                )
        else:
            _replace(path, lambda file: file.write(json.dumps(run, indent=1).encode()))

    @property
    def path(self) -> str:
        return str(self.folder)

    def history(self, saved_epochs: int) -> list[dict]:
        return saved_history(self.folder, saved_epochs)

    def save_history(self, rows: list[dict]) -> None:
        _replace(self.folder / HISTORY_FILE, lambda file: file.write(json.dumps(rows, indent=1).encode()))

    def state(self) -> dict | None:
        """Return the arrays saved by ``save_state``, or None before the first epoch ends."""
        path = self.folder / STATE_FILE
        if not path.exists():
            return None
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}

    def save_state(self, **arrays) -> None:
        _replace(self.folder / STATE_FILE, lambda file: np.savez(file, **arrays))


def run_description(model, start, x, y, *, epochs, batch_size, learning_rate, final_learning_rate, augment, seed):
    """Return what makes a run itself: the model, its ``start`` weights, the data and every knob of ``fit``."""
    return {
        "model": type(model).__name__,
        "config": model.config,
        "start": fingerprint(np.concatenate([np.ravel(array) for array in start]), np.zeros(0)),
        "data": fingerprint(x, y),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "final_learning_rate": final_learning_rate,
        "augment": None if augment is None else f"{augment.__module__}.{augment.__qualname__}",
        "seed": seed,
    }
