"""Learner-controlled text on its way out: to a terminal, a CSV file, a Markdown page.

Reasons in the summary quote error messages, file names and cell ids, all of which a student writes. Here is the
one place that makes such text harmless:

- ``clean``: ANSI escape sequences and control characters removed (they would redraw an instructor's terminal
  or hide lines in a CSV viewer); line breaks and tabs become spaces.
- ``csv_cell``: ``clean``, then a cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
  carriage return, or their full-width forms first) gets a ``'`` in front. Numbers are left as they are.
- ``write_csv``: every CSV file the course writes goes through ``csv.writer`` and ``csv_cell``.
- ``markdown_cell``: ``clean``, then what Markdown would turn into a link, an image, raw HTML, code or a new
  table column is escaped.
"""

import csv
import os
import re
from pathlib import Path

# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and any other two-byte ESC sequence.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# C0 and C1 control characters, DEL, and the Unicode marks that reorder or hide text (bidi overrides, zero width).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")  # a negative number is no formula
MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]<>|!])")  # emphasis (* _) is harmless and stays readable


def clean(text):
    """``text`` without ANSI codes or control characters; line breaks and tabs become spaces."""
    text = ANSI.sub("", str(text))
    text = re.sub(r"[\r\n\t]+", " ", text)
    return CONTROL.sub("", text)


def csv_cell(value):
    """A value as a CSV cell that no spreadsheet runs: cleaned, and a would-be formula prefixed with ``'``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = clean("" if value is None else value)
    if text.startswith(FORMULA_START) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(path, header, rows):
    """Write ``rows`` (lists, or dicts keyed by ``header``) under ``header``, every cell through ``csv_cell``;
    atomically, so that a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:  # no header and no rows: an empty file
            writer.writerow([csv_cell(h) for h in header])
        for row in rows:
            values = [row.get(h, "") for h in header] if isinstance(row, dict) else row
            writer.writerow([csv_cell(v) for v in values])
    os.replace(partial, path)


def markdown_cell(value):
    """``value`` for a Markdown table: cleaned, with links, images, raw HTML, code and ``|`` escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", clean(value))
