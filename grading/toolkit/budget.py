"""How much a submission may put in its graded notebook and its feedback page.

A cap per cell alone lets a notebook of many cells (a learner can add as many as they like) make a graded
notebook of hundreds of MiB and a feedback page of gigabytes. So:

- ``OutputBudget`` (used by ``SafeExecute`` while grading): each cell may write ``COURSE_OUTPUT_LIMIT`` (2 MiB) and
  the whole notebook ``COURSE_OUTPUT_TOTAL`` (8 MiB); past either, the output is dropped and one note
  (``CUT_NOTE``) says so, which the autograde summary reports ("output cut"). Errors always get through, shortened
  (they decide which checks failed), and smaller still once the budget is spent.
- ``LimitFeedback`` (in ``generate_feedback``): a page shows at most ``FEEDBACK_CELL_SOURCE`` characters of any
  cell's code or text and ``FEEDBACK_TOTAL`` characters in all; the rest is replaced by a note.
"""

import os

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from grading.toolkit.settings import format_bytes, parse_bytes

DEFAULT_CELL_LIMIT = "2M"
DEFAULT_TOTAL_LIMIT = "8M"
CUT_NOTE = "[output cut:"
FEEDBACK_CELL_SOURCE = 64 * 2**10  # an answer or a lesson cell is a few KiB
FEEDBACK_TOTAL = 4 * 2**20  # a whole lesson with its outputs is under 0.5 MiB
FEEDBACK_CUT_NOTE = "[cut from this feedback page:"


def output_total():
    return parse_bytes(os.environ.get("COURSE_OUTPUT_TOTAL", DEFAULT_TOTAL_LIMIT))


def output_size(content):
    """Bytes (well, characters) an output message adds to the notebook."""
    return len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())


class OutputBudget:
    """What the cells of one notebook may print: ``per_cell`` each, ``total`` together (0: no cap)."""

    def __init__(self, per_cell, total):
        self.per_cell, self.total = per_cell, total
        self.used, self.by_cell, self.cut = 0, {}, set()

    def spent(self):
        return bool(self.total) and self.used >= self.total

    def take(self, cell_index, size):
        """None when the output fits; else the note to show once in that cell (then "" for the rest of it)."""
        cell = self.by_cell.get(cell_index, 0)
        over_cell = self.per_cell and cell + size > self.per_cell
        over_total = self.total and self.used + size > self.total
        if not (over_cell or over_total):
            self.by_cell[cell_index] = cell + size
            self.used += size
            return None
        if cell_index in self.cut:
            return ""
        self.cut.add(cell_index)
        if over_cell:  # the narrower cap first: it is the one this cell broke, whatever the others wrote
            return f"\n{CUT_NOTE} this cell wrote more than {format_bytes(self.per_cell)}; the rest was dropped]\n"
        return (f"\n{CUT_NOTE} this notebook's cells wrote more than {format_bytes(self.total)} in all; the rest "
                f"was dropped]\n")

    def shorten_error(self, content):
        """An error output, kept (it decides the grade) but short; shorter once the budget is spent."""
        text_limit, lines = (200, 1) if self.spent() else (10_000, 50)
        content["evalue"] = str(content.get("evalue", ""))[:text_limit]
        content["traceback"] = [str(line)[:text_limit] for line in content.get("traceback", [])[-lines:]]
        self.used += len(content["evalue"]) + sum(len(line) for line in content["traceback"])
        return content


def cut_note_output(note):
    return new_output("stream", name="stdout", text=note)


class LimitFeedback(NbGraderPreprocessor):
    """Feedback pages of bounded size: long cells and whatever comes after the page's budget are cut."""

    def preprocess(self, nb, resources):
        used, cut = 0, 0
        for cell in nb.cells:
            if len(cell.source) > FEEDBACK_CELL_SOURCE:
                cell.source = (cell.source[:FEEDBACK_CELL_SOURCE]
                               + f"\n{FEEDBACK_CUT_NOTE} {len(cell.source) - FEEDBACK_CELL_SOURCE} more characters]")
            size = len(cell.source) + sum(len(str(o)) for o in cell.get("outputs", []))
            if used + size > FEEDBACK_TOTAL:
                cell.source = f"{FEEDBACK_CUT_NOTE} the page reached its size limit]"
                if cell.cell_type == "code":
                    cell.outputs = []
                cut += 1
            else:
                used += size
        if cut:
            self.log.warning("feedback cut: %d cells over the page's size limit", cut)
        return nb, resources
