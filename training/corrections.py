"""Find and remove one sender's corrections (an abuser's, or a visitor who asks).

    python -m training.corrections                      # senders, most corrections first
    python -m training.corrections --sender HASH        # that sender's corrections
    python -m training.corrections --sender HASH --delete

HASH is a row's ``sender`` (one visitor: a salted hash of session and address) or
``origin`` (every session from one address). ``--delete`` removes the rows and their
image files and rewrites the snapshot, so the next hub sync uploads rows without them
(images already copied to the hub dataset stay there until removed from it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec.feedback import DB_NAME, FeedbackStore, data_dir  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sender", help="a sender or origin hash, as listed")
    parser.add_argument("--delete", action="store_true", help="delete that sender's rows and images")
    parser.add_argument("--data-dir", type=Path, help="corrections folder (default: digitrec.feedback.data_dir())")
    args = parser.parse_args(argv)
    directory = args.data_dir or data_dir()
    if not (directory / DB_NAME).exists():
        parser.error(f"no corrections stored in {directory}")
    if args.delete and not args.sender:
        parser.error("--delete needs --sender HASH")
    store = FeedbackStore(directory)
    if not args.sender:
        print(f"{'sender':16}  {'origin':16}  corrections  {'KB':>8}  last")
        for row in store.senders():
            print(f"{row['sender'] or '-':16}  {row['origin'] or '-':16}  {row['corrections']:11d}"
                  f"  {row['bytes'] / 1e3:8.0f}  {row['last']}")
        return 0
    rows = store.delete_sender(args.sender) if args.delete else store.rows(args.sender)
    for row in rows:
        print(f"{row['id']:6d}  {row['created']}  label {row['label']}  {row['model']:6}  {row['drawing']}")
    verb = "deleted" if args.delete else "found"
    print(f"{verb} {len(rows)} corrections from {args.sender} in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
