"""Authoring helper (not part of the repo): build an nbgrader source notebook from Python lists of cells.

Usage:
    from nbbuild import md, code, answer, tests, readonly, checks_cell, write
    cells = [md("# Title"), code("x = 1"), ...]
    write(cells, "solutions/00-orientation/00-orientation.ipynb")
Then execute it in place with `.venv/bin/python tools/run_solutions.py 00-orientation`.
"""
import textwrap
from pathlib import Path

import nbformat

REPO = Path("/work/main")


def _src(s):
    return textwrap.dedent(s).strip("\n")


def md(s):
    return nbformat.v4.new_markdown_cell(_src(s))


def code(s):
    return nbformat.v4.new_code_cell(_src(s))


def _nbg(cell, **meta):
    cell.metadata["nbgrader"] = {"schema_version": 3, "task": False, **meta}
    return cell


def answer(grade_id, s):
    """Answer cell: code between ### BEGIN SOLUTION / ### END SOLUTION is replaced by a stub for students."""
    return _nbg(code(s), grade=False, grade_id=grade_id, locked=False, solution=True)


def tests(grade_id, points, s):
    """Autograded test cell (read-only); ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS parts are removed for students."""
    return _nbg(code(s), grade=True, grade_id=grade_id, locked=True, points=points, solution=False)


def readonly(grade_id, s, markdown=False):
    cell = md(s) if markdown else code(s)
    return _nbg(cell, grade=False, grade_id=grade_id, locked=True, solution=False)


def checks_cell():
    return readonly("course-checks", (REPO / "tools" / "course_checks.py").read_text())


def write(cells, path):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    path = REPO / path
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print("wrote", path)
