"""What ``make autograde`` shows while it grades.

- In a terminal (stderr is a TTY): a tqdm bar with the count done, the time left and the problems so far; each
  submission with a problem is printed above the bar as it arrives.
- Otherwise (a log file, CI, a pipe): one plain line per submission, as it is recorded.

Either way every submission's line (score, status, reason) is kept in the summary file
(``grading/autograde-summary.csv``), which ``save`` writes before the line is shown.
"""

import os
import sys


def submission_line(row, count, total):
    """``[ 3/14] alice 00-orientation: 5/7 graded (6.1 s) - failed checks: ex0_2_hidden``."""
    return (f"[{count:>{len(str(total))}}/{total}] {row['student']} {row['lesson']}: "
            f"{row['score']}/{row['max_score']} {row['status']} ({row['seconds']} s)"
            + (f" - {row['reason']}" if row["reason"] else ""))


def has_problem(row):
    return bool(row["reason"]) or row["status"] != "graded"


def terminal_size(stream):
    """(columns, lines) of the terminal ``stream`` writes to; None if it reports none."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (size.columns, size.lines) if size.columns and size.lines else None


class Progress:
    """``update(row)`` for each recorded submission, ``close()`` at the end (also after an interruption)."""

    def __init__(self, total, out=print, stream=None, bar=None):
        self.total, self.out, self.count, self.problems = total, out, 0, 0
        stream = sys.stderr if stream is None else stream
        # The bar only when a person watches: out is the terminal's print and the error stream is a terminal.
        self.bar = None
        if bar if bar is not None else (out is print and stream.isatty()):
            from tqdm import tqdm

            # tqdm hides a bar that does not fit the terminal: one that reports no size (0 x 0) gets 100 x 24
            size = {"dynamic_ncols": True} if terminal_size(stream) else {"ncols": 100, "nrows": 24}
            self.bar = tqdm(total=total, file=stream, unit="submission", desc="autograde", postfix="problems: 0",
                            **size)

    def update(self, row):
        self.count += 1
        self.problems += has_problem(row)
        line = submission_line(row, self.count, self.total)
        if self.bar is None:
            self.out(line)
            return
        if has_problem(row):
            self.bar.write(line, file=self.bar.fp)
        self.bar.set_postfix_str(f"problems: {self.problems}", refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
