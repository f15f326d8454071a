"""A learner can run every teaching cell of the untouched student notebook: everything but answer cells and
their checks runs without error (nothing outside the exercises depends on the learner's answers)."""

import pytest
from nbclient import NotebookClient

from course.lessons import NOTEBOOKS, is_answer_cell, is_test_cell, lesson_names, notebook_path, read


@pytest.mark.parametrize("lesson", lesson_names(NOTEBOOKS))
def test_teaching_cells_run_without_answers(lesson, monkeypatch):
    path = notebook_path(lesson, NOTEBOOKS)
    nb = read(path)
    nb.cells = [c for c in nb.cells if not (is_answer_cell(c) or is_test_cell(c))]
    # Training demos stop early under nbgrader; the same code paths run, only fewer steps.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   allow_errors=True).execute()
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{lesson}: teaching cells failed without the answers: {errors}"
