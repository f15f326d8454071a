"""Run a lesson's check cells in-process with some answer cells replaced: the solutions notebook's code cells are
executed in order, as the kernel would, up to one graded cell. A check cell passes when it raises nothing
(nbgrader's rule); the error message is kept, so tests can read what a learner is told."""

import contextlib
import io

import matplotlib

from course.lessons import nbgrader, notebook_path, read


def run_check_cells(lesson, answers, last_grade_id):
    """``{grade_id: None if the graded cell passed, else "ErrorName: message"}`` for the graded cells up to
    ``last_grade_id``, with the answer cells named in ``answers`` ({grade_id: source}) replaced."""
    matplotlib.use("Agg")
    namespace, results = {"__name__": "__main__"}, {}
    for cell in read(notebook_path(lesson)).cells:
        if cell.cell_type != "code":
            continue
        meta = nbgrader(cell)
        source = answers.get(meta.get("grade_id"), cell.source)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, meta.get("grade_id", "<cell>"), "exec"), namespace)
            error = None
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"
        if meta.get("grade"):
            results[meta["grade_id"]] = error
        elif error and not meta.get("solution"):
            raise AssertionError(f"{lesson}: teaching cell failed: {cell.source[:80]!r}: {error}")
        if meta.get("grade_id") == last_grade_id:
            return results
    raise KeyError(last_grade_id)
