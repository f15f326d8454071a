"""``grading/autograde-summary.csv``: one row per graded submission (score, status, reason, fingerprint)."""

import csv
import os
from pathlib import Path

SUMMARY_FIELDS = ["student", "lesson", "score", "max_score", "status", "reason", "seconds", "graded_at",
                  "fingerprint"]


def read_summary(path):
    """{(student, lesson): row} from ``autograde-summary.csv`` ({} if there is none yet)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="") as f:
        return {(row["student"], row["lesson"]): row for row in csv.DictReader(f)}


def write_summary(path, rows):
    """Atomically (write, then rename): a run killed mid-write leaves the previous complete file."""
    path = Path(path)
    partial = path.with_suffix(".csv.partial")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows[key] for key in sorted(rows))
    os.replace(partial, path)
