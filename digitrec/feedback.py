"""Keep the corrections visitors make, so the models can learn from the people who draw.

A correction is one drawing, the digit its author says it is, and what the model answered.
``FeedbackStore`` keeps them in a folder:

    corrections.sqlite3             one row per correction (SQLite, WAL, synchronous=FULL)
    images/ab/<uuid>-drawing.png    the drawing as sent (RGB or RGBA)
    images/ab/<uuid>-processed.png  the 28×28 image the model read (white ink on black)
    snapshots/<store id>.jsonl      a consistent copy of the rows, written for the hub sync

An acknowledged correction (``add`` returned) always has its row and both files: the files
are written to temporary names, fsync'd and renamed into place before the row is inserted
and committed, so a crash can leave an orphan image but never a row without its images.

A Space is open to anyone, scripts included, so the store is bounded: a drawing is kept
at most 800×800 (and re-encoded smaller until its PNG is under MAX_STORED_DRAWING_BYTES);
each row records its sender as a salted hash of the visitor's session and address (and
the address alone, ``origin``), which a per-sender and a per-address quota count, and by
which ``python -m training.corrections`` lists and deletes one sender's corrections; the
whole store is capped in bytes.

The hub copy is ``digitrec/feedback_sync.py``; the app opens the store and passes it visitors.

Its folder and limits are the DIGITREC_CORRECTIONS_* settings (``digitrec/config.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import logging
import numbers
import os
import re
import secrets
import sqlite3
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from . import config
from . import preprocess as _preprocess

log = logging.getLogger("digitrec")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACES_STORAGE = Path("/data")
DB_NAME = "corrections.sqlite3"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another to finish its transaction
LABEL_MESSAGE = "Label must be a whole number from 0 to 9."
CANVAS_SIDE = 800  # a stored drawing is at most the app's canvas
MAX_STORED_DRAWING_BYTES = 90_000  # a drawing's PNG is re-encoded smaller until it fits

SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    model TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted BETWEEN 0 AND 9),
    probabilities TEXT NOT NULL,
    drawing TEXT NOT NULL,
    processed TEXT NOT NULL,
    sender TEXT,
    origin TEXT,
    bytes INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first release: a store written before gets them on opening.
ADDED_COLUMNS = {"sender": "TEXT", "origin": "TEXT", "bytes": "INTEGER"}
INDEXES = """
CREATE INDEX IF NOT EXISTS corrections_sender ON corrections (sender, created);
CREATE INDEX IF NOT EXISTS corrections_origin ON corrections (origin, created);
"""


class QuotaError(ValueError):
    """Raised when a sender, an address or the whole store has stored as much as allowed."""


def limits() -> dict:
    """Return the store's limits from the environment (read on each call, so they can change)."""
    return {
        "sender_minute": int(config.number("DIGITREC_CORRECTIONS_PER_MINUTE")),
        "sender_day": int(config.number("DIGITREC_CORRECTIONS_PER_DAY")),
        "origin_minute": int(config.number("DIGITREC_CORRECTIONS_ADDRESS_PER_MINUTE")),
        "origin_day": int(config.number("DIGITREC_CORRECTIONS_ADDRESS_PER_DAY")),
        "store_bytes": int(config.number("DIGITREC_CORRECTIONS_MAX_MB") * 1e6),
    }


def data_dir() -> Path:
    """Return the folder for corrections: $DIGITREC_CORRECTIONS_DIR, a Space's /data, or feedback-data/.

    A Hugging Face Space keeps only /data across restarts (when persistent storage is on),
    so it is preferred whenever it exists and is writable. The variable was called
    DIGITREC_DATA_DIR, too close to DIGITREC_DATA (the training data); that name still works.
    """
    configured = config.text("DIGITREC_CORRECTIONS_DIR")
    if configured:
        return Path(configured)
    if SPACES_STORAGE.is_dir() and os.access(SPACES_STORAGE, os.W_OK):
        return SPACES_STORAGE / "digitrec"
    return PROJECT_ROOT / "feedback-data"


# ---------------------------------------------------------------- validation


def check_label(value) -> int:
    """Return ``value`` as an int 0–9, accepting 7, "7" or 7.0; raise ValueError otherwise.

    A form or an API client may send the digit as text or as a float; anything that is not
    exactly one whole digit (True, None, 3.5, "seven", 10, -1) is refused.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(LABEL_MESSAGE)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,3}", text):
            raise ValueError(LABEL_MESSAGE)
        value = int(text)
    elif isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
        if not number.is_integer():  # also refuses NaN and infinities
            raise ValueError(LABEL_MESSAGE)
        value = int(number)
    else:
        raise ValueError(LABEL_MESSAGE)
    if not 0 <= value <= 9:
        raise ValueError(LABEL_MESSAGE)
    return value


def drawing_array(image) -> np.ndarray:
    """Return the drawing as a uint8 array, (H, W, 3|4) or (H, W) grey, to keep as sent.

    Accepts what ``digitrec.predict`` accepts (sketch dict, PIL image, numpy array, PNG
    bytes, path), refusing unreadable input with InvalidImageError and None with
    EmptyDrawingError. Colour canvases are kept as they are; other pixel types are kept
    as the grey picture the models read (ink dark on white).
    """
    image = _preprocess.open_image(image)
    if isinstance(image, Image.Image):
        if image.mode in ("RGB", "RGBA", "L"):
            return np.asarray(image).copy()
        if image.mode in ("P", "LA", "PA", "La", "RGBa", "CMYK", "YCbCr", "1") or "transparency" in image.info:
            return np.asarray(image.convert("RGBA"))
        return _grey(_preprocess.read_ink(image))
    array = image[:, :, 0] if image.ndim == 3 and image.shape[2:] == (1,) else image
    if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        _preprocess.check_size(array.shape[1], array.shape[0])
        return np.ascontiguousarray(array)
    return _grey(_preprocess.read_ink(array))


def _grey(ink: np.ndarray) -> np.ndarray:
    return _preprocess.to_uint8(1.0 - ink)


def _check_drawing(drawing) -> np.ndarray:
    drawing = np.asarray(drawing)
    if drawing.dtype != np.uint8 or not (
        drawing.ndim == 2 or (drawing.ndim == 3 and drawing.shape[2] in (3, 4))
    ):
        raise ValueError(
            f"The drawing must be a uint8 (H, W), (H, W, 3) or (H, W, 4) array; got {drawing.dtype} {drawing.shape}."
        )
    if drawing.shape[0] == 0 or drawing.shape[1] == 0:
        raise ValueError("The drawing has no pixels.")
    return drawing


def _check_processed(processed) -> np.ndarray:
    processed = np.asarray(processed)
    if processed.dtype != np.uint8 or processed.shape != (28, 28):
        raise ValueError(
            f"The processed image must be a uint8 (28, 28) array; got {processed.dtype} {processed.shape}."
        )
    return processed


# ---------------------------------------------------------------- storage


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def drawing_png(drawing: np.ndarray) -> bytes:
    """Return the PNG kept for a drawing: at most CANVAS_SIDE a side, and under MAX_STORED_DRAWING_BYTES.

    A drawing the canvas made (800×800, dark strokes) is kept as sent (~20 KB); a larger
    one is scaled down to the canvas, and one that still does not fit (noise) is halved
    until it does, so no request can make the store keep more than that.
    """
    image = Image.fromarray(drawing)
    if max(image.size) > CANVAS_SIDE:
        image.thumbnail((CANVAS_SIDE, CANVAS_SIDE), Image.Resampling.LANCZOS)
    data = _png(np.asarray(image))
    while len(data) > MAX_STORED_DRAWING_BYTES and max(image.size) > 28:
        image = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)
        data = _png(np.asarray(image))
    return data


def _write_png(image, path: Path) -> None:
    """Write a PNG (an array, or its encoded bytes) durably: temporary file, flush, fsync, then rename into place."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", suffix=".tmp", delete=False) as file:
        try:
            file.write(image if isinstance(image, bytes) else _png(image))
            file.flush()
            os.fsync(file.fileno())
        except BaseException:
            file.close()
            os.unlink(file.name)
            raise
    os.replace(file.name, path)


def _fsync_dir(path: Path) -> None:
    """Make the renames in a folder durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class FeedbackStore:
    """Corrections in a folder: SQLite rows plus the drawing and processed image as PNG files.

    Each call opens its own SQLite connection, so one store may be used from any number of
    threads (and processes) at once; writers queue on SQLite's lock for up to BUSY_TIMEOUT.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.images = self.directory / "images"
        self.path = self.directory / DB_NAME
        self.images.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
            try:
                present = {row[1] for row in db.execute("PRAGMA table_info(corrections)")}
                for column, kind in ADDED_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE corrections ADD COLUMN {column} {kind}")
                db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.executescript(INDEXES)
            self.store_id = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0]
            self._salt = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0]

    def __repr__(self):
        return f"FeedbackStore({str(self.directory)!r})"

    @contextlib.contextmanager
    def _connect(self):
        """Yield a fresh connection in autocommit mode (transactions are explicit); close it after."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    # -- a visitor's correction, as the app and the API receive it
    def record(self, sketch, model, label, session=None, address=None) -> dict:
        """Store a visitor's correction: the drawing, its true digit and what ``model`` answered.

        Everything is checked before anything is written: the label (0–9), the model id, the
        visitor's quota (``session`` and client ``address``; QuotaError) and the drawing
        (EmptyDrawingError, InvalidImageError; all ValueErrors with short messages).
        Returns {"id", "label", "predicted", "model"}.
        """
        from .registry import check_model_id, predict

        label = check_label(label)
        model = check_model_id(model)
        sender, origin = self.identify(session, address)
        self.check_limits(sender, origin)  # before any decoding or model: a refused request costs little
        drawing = drawing_array(sketch)
        probabilities, processed = predict(drawing, model)  # refuses an empty canvas before loading a model
        predicted = int(max(probabilities, key=probabilities.get))
        row_id = self.add(drawing, processed, label, model, predicted, probabilities, sender, origin)
        return {"id": row_id, "label": label, "predicted": predicted, "model": model}

    # -- senders and their limits
    def identify(self, session=None, address=None) -> tuple[str | None, str | None]:
        """Return (sender, origin): salted hashes of (session, address) and of the address alone.

        Pseudonymous: the salt is this store's own, so the hashes cannot be compared with
        another store's or reversed to an address without it. None where nothing is known.
        """
        def digest(*parts):
            text = "\0".join([self._salt, *parts])
            return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]

        session, address = (str(v)[:200] if v is not None else None for v in (session, address))
        sender = digest("sender", session or "", address or "") if session or address else None
        origin = digest("origin", address) if address else None
        return sender, origin

    def check_limits(self, sender=None, origin=None, size: int = 0, db=None) -> None:
        """Raise QuotaError if one more correction (``size`` bytes) from sender/origin is over a limit."""
        if db is None:
            with self._connect() as db:
                return self.check_limits(sender, origin, size, db)
        limit = limits()
        now = datetime.datetime.now(datetime.timezone.utc)
        since = {span: _timestamp(now - datetime.timedelta(**{span + "s": 1})) for span in ("minute", "day")}
        for column, value, who in (("sender", sender, "you"), ("origin", origin, "your network")):
            if value is None:
                continue
            for span, period in (("minute", "a minute; please wait a minute"), ("day", "a day; please come back tomorrow")):
                allowed = limit[f"{column}_{span}"]
                (count,) = db.execute(
                    f"SELECT COUNT(*) FROM corrections WHERE {column} = ? AND created > ?", (value, since[span])
                ).fetchone()
                if count >= allowed:
                    raise QuotaError(f"Too many corrections from {who}: at most {allowed} {period}.")
        (stored,) = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM corrections").fetchone()
        if stored + size > limit["store_bytes"]:
            raise QuotaError(
                f"The corrections store is full ({limit['store_bytes'] / 1e6:g} MB): thank you, but no more can be kept now."
            )

    # -- writing
    def add(self, drawing, processed, label, model, predicted=None, probabilities=None, sender=None, origin=None) -> int:
        """Store one correction durably and return its id.

        ``drawing`` is the uint8 image as sent (kept at most 800×800, see ``drawing_png``),
        ``processed`` the uint8 (28, 28) image the model read, ``probabilities`` the model's
        {"0": p0, …} answer, ``sender``/``origin`` from ``identify`` (their quotas are checked
        in the same transaction as the insert; QuotaError when over). The images are on
        disk, fsync'd, before the row is committed, so a returned id is never dangling.
        """
        drawing = _check_drawing(drawing)
        processed = _check_processed(processed)
        label = check_label(label)
        if predicted is not None:
            predicted = check_label(predicted)
        if not isinstance(model, str) or not model:
            raise ValueError("The model id must be a non-empty string.")
        answer = json.dumps({str(k): float(v) for k, v in (probabilities or {}).items()})
        encoded = (drawing_png(drawing), _png(processed))
        size = sum(map(len, encoded))
        self.check_limits(sender, origin, size)  # refuse before writing anything

        name = uuid.uuid4().hex
        folder = self.images / name[:2]  # 256 subfolders keep every folder small, on disk and on the hub
        folder.mkdir(exist_ok=True)
        paths = (folder / f"{name}-drawing.png", folder / f"{name}-processed.png")
        try:
            _write_png(encoded[0], paths[0])
            _write_png(encoded[1], paths[1])
            _fsync_dir(folder)
            relative = [p.relative_to(self.directory).as_posix() for p in paths]
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self.check_limits(sender, origin, size, db)  # again, now that no other writer can add
                    created = _timestamp(datetime.datetime.now(datetime.timezone.utc))
                    cursor = db.execute(
                        "INSERT INTO corrections (created, model, label, predicted, probabilities, drawing, processed,"
                        " sender, origin, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (created, model, label, predicted, answer, *relative, sender, origin, size),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            return int(cursor.lastrowid)
        except BaseException:
            for path in paths:  # nothing was acknowledged: leave no orphan behind if we can help it
                with contextlib.suppress(OSError):
                    path.unlink()
            raise

    def delete_sender(self, sender: str) -> list[dict]:
        """Delete every correction whose sender (or origin) is ``sender``, and their images; return the rows.

        The rows go first (one transaction), then the files; the snapshot is rewritten, so
        the next hub sync uploads rows without them.
        """
        rows = self.rows(sender)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM corrections WHERE id = ?", [(row["id"],) for row in rows])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        for row in rows:
            for key in ("drawing", "processed"):
                with contextlib.suppress(OSError):
                    (self.directory / row[key]).unlink()
        self.write_snapshot()
        return rows

    # -- reading
    def senders(self) -> list[dict]:
        """Return each sender with its count of corrections, bytes and last time, most corrections first."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            query = (
                "SELECT sender, origin, COUNT(*) AS corrections, COALESCE(SUM(bytes), 0) AS bytes, MAX(created) AS last"
                " FROM corrections GROUP BY sender, origin ORDER BY corrections DESC"
            )
            return [dict(row) for row in db.execute(query)]

    def count(self) -> int:
        """Return the number of stored corrections."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])

    def rows(self, sender: str | None = None) -> list[dict]:
        """Return every correction (or one sender's or origin's) as a dict, oldest first, ``probabilities`` decoded."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            if sender is None:
                rows = [dict(row) for row in db.execute("SELECT * FROM corrections ORDER BY id")]
            else:
                query = "SELECT * FROM corrections WHERE sender = ? OR origin = ? ORDER BY id"
                rows = [dict(row) for row in db.execute(query, (sender, sender))]
        for row in rows:
            row["probabilities"] = json.loads(row["probabilities"])
        return rows

    def integrity_check(self) -> str:
        """Return SQLite's verdict on the database file: "ok", or the problems it found."""
        with self._connect() as db:
            return "\n".join(row[0] for row in db.execute("PRAGMA integrity_check"))

    def processed_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (x uint8 (N, 28, 28), white ink on black; y int64) from the processed PNGs."""
        rows = self.rows()
        x = np.zeros((len(rows), 28, 28), np.uint8)
        for i, row in enumerate(rows):
            with Image.open(self.directory / row["processed"]) as image:
                x[i] = np.asarray(image.convert("L"))
        return x, np.array([row["label"] for row in rows], dtype=np.int64)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (x float32 (N, 28, 28) in [0, 1], ink = 1; y int64): the corrections as training data."""
        x, y = self.processed_images()
        return x.astype(np.float32) / 255.0, y

    def export_npz(self, path) -> Path:
        """Write the corrections in the layout of MNIST's mnist.npz; return the path.

        Keys x_train (N, 28, 28) uint8 (0 background, 255 ink), y_train (N,) uint8, and
        x_test / y_test, which are empty arrays of shape (0, 28, 28) and (0,): every
        correction is training data, so ``keras.datasets.mnist``-style loaders work as is.
        """
        x, y = self.processed_images()
        path = Path(path)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", suffix=".tmp", delete=False) as file:
            np.savez_compressed(
                file,
                x_train=x,
                y_train=y.astype(np.uint8),
                x_test=np.zeros((0, 28, 28), np.uint8),
                y_test=np.zeros(0, np.uint8),
            )
        os.replace(file.name, path)
        return path

    def write_snapshot(self) -> Path:
        """Write every row as JSON lines to ``snapshots/<store id>.jsonl``, atomically; return the path.

        The live database cannot be copied file by file while it is written (its WAL holds
        the latest rows), so the hub sync uploads this consistent copy instead. The name is
        the store's own id: a fresh store (a Space restarted without persistent storage)
        adds a new file on the hub instead of overwriting the old one.
        """
        folder = self.directory / "snapshots"
        folder.mkdir(exist_ok=True)
        path = folder / f"{self.store_id}.jsonl"
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in self.rows())
        if path.exists() and path.read_text() == text:
            return path  # unchanged: keep the mtime, so the scheduler uploads nothing
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".", suffix=".tmp", delete=False) as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(file.name, path)
        return path


def _timestamp(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
