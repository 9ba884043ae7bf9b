"""Write corrections into a FeedbackStore forever, printing each acknowledged id (for the SIGKILL test).

    python tests/feedback_writer.py DIR

An id is printed, and flushed, only after ``FeedbackStore.add`` returned: every printed id
is a promise the store must keep, however abruptly this process is killed.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digitrec.feedback import FeedbackStore  # noqa: E402


def main(directory):
    store = FeedbackStore(directory)
    rng = np.random.default_rng()
    processed = np.zeros((28, 28), np.uint8)
    processed[6:22, 12:16] = 255
    i = 0
    while True:
        # Noise compresses badly, so each PNG takes a while to write: kills land mid-write too.
        drawing = rng.integers(0, 256, (300, 300, 4), dtype=np.uint8)
        row_id = store.add(drawing, processed, i % 10, "numpy", (i + 1) % 10, {"0": 1.0})
        print(row_id, flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1])
