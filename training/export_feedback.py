"""Export the stored corrections as an npz laid out like MNIST's, for any MNIST loader.

    python -m training.export_feedback corrections.npz [--data-dir DIR]

Keys x_train (N, 28, 28) uint8 (0 background, 255 ink) and y_train (N,) uint8, with
x_test and y_test empty: see ``digitrec.feedback.FeedbackStore.export_npz``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec.feedback import DB_NAME, FeedbackStore, data_dir  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the .npz file to write")
    parser.add_argument("--data-dir", type=Path, help="corrections folder (default: digitrec.feedback.data_dir())")
    args = parser.parse_args(argv)
    directory = args.data_dir or data_dir()
    if not (directory / DB_NAME).exists():
        parser.error(f"no corrections stored in {directory}")
    if not args.out.parent.is_dir():
        parser.error(f"folder {args.out.parent} does not exist")
    path = FeedbackStore(directory).export_npz(args.out)
    with np.load(path) as data:
        count = len(data["y_train"])  # what was written, even if visitors added more meanwhile
    print(f"wrote {count} corrections from {directory} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
