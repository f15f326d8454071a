"""``grading/autograde-summary.csv``: one row per graded submission (score, status, reason, fingerprint)."""

import csv
from pathlib import Path

from grading.toolkit.safetext import write_csv

SUMMARY_FIELDS = ["student", "lesson", "score", "max_score", "status", "reason", "seconds", "graded_at",
                  "fingerprint"]


def read_summary(path):
    """{(student, lesson): row} from ``autograde-summary.csv`` ({} if there is none yet)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="") as f:
        return {(row["student"], row["lesson"]): row for row in csv.DictReader(f)}


def write_summary(path, rows):
    """Atomically (write, then rename): a run killed mid-write leaves the previous complete file. Cells a
    spreadsheet would run as formulas are neutralised, control characters removed (``safetext.write_csv``)."""
    write_csv(path, SUMMARY_FIELDS, [rows[key] for key in sorted(rows)])
