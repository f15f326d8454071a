"""Notebook hygiene: valid files and nbgrader metadata, clean student versions, shared check helpers in sync,
and ruff-clean code."""

import subprocess
import sys
from collections import Counter

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from course.lessons import (
    NOTEBOOKS,
    REPO,
    SOLUTIONS,
    is_answer_cell,
    is_test_cell,
    lesson_info,
    lesson_names,
    nbgrader,
    notebook_path,
    read,
)

LESSONS = lesson_names()
ALL_NOTEBOOKS = [notebook_path(lesson, root) for root in (SOLUTIONS, NOTEBOOKS) for lesson in LESSONS]
CHECKS_FILE = REPO / "tools" / "course_checks.py"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_valid_notebook_with_python3_kernel(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.kernelspec.language == "python"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_nbgrader_metadata_valid_and_grade_ids_unique(path):
    nb = read(path)
    MetadataValidator().validate_nb(nb)
    ids = Counter(nbgrader(c)["grade_id"] for c in nb.cells if "grade_id" in nbgrader(c))
    assert not [i for i, n in ids.items() if n > 1], f"duplicate grade ids: {ids}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_has_no_outputs_and_no_solutions(lesson):
    nb = read(notebook_path(lesson, NOTEBOOKS))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in cell.source, f"{lesson}: student notebook contains '{marker}'"


@pytest.mark.parametrize("lesson", LESSONS)
def test_solutions_notebook_is_stored_with_outputs(lesson):
    code_cells = [c for c in read(notebook_path(lesson)).cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in code_cells), f"{lesson}: run `make outputs LESSONS={lesson}`"
    assert not [c for c in code_cells for o in c.outputs if o.output_type == "error"], f"{lesson}: stored errors"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_is_graded_with_hidden_checks(lesson):
    nb = read(notebook_path(lesson))
    answers = [i for i, c in enumerate(nb.cells) if is_answer_cell(c)]
    assert answers, f"{lesson}: no exercises"
    for position, index in enumerate(answers):
        end = answers[position + 1] if position + 1 < len(answers) else len(nb.cells)
        checks = [c for c in nb.cells[index + 1:end] if is_test_cell(c)]
        grade_id = nbgrader(nb.cells[index])["grade_id"]
        assert checks, f"{lesson}/{grade_id}: no check cell after the answer cell"
        assert any("### BEGIN HIDDEN TESTS" in c.source for c in checks), f"{lesson}/{grade_id}: no hidden checks"
        assert any("### BEGIN HIDDEN TESTS" not in c.source for c in checks), f"{lesson}/{grade_id}: no visible checks"


@pytest.mark.parametrize("lesson", LESSONS)
def test_check_library_is_the_lessons_copy_of_tools_course_checks(lesson):
    copy = SOLUTIONS / lesson / "course_checks.py"
    assert copy.is_file() and copy.read_text() == CHECKS_FILE.read_text(), (
        f"{lesson}: course_checks.py differs from tools/course_checks.py: run `make release`")
    cells = [c for c in read(notebook_path(lesson)).cells if nbgrader(c).get("grade_id") == "course-checks"]
    assert len(cells) == 1, f"{lesson}: expected one read-only cell with grade id 'course-checks'"
    assert nbgrader(cells[0])["locked"], f"{lesson}: the course-checks cell must be read-only"
    assert "import lesson_checks as checks" in cells[0].source, f"{lesson}: the course-checks cell imports the checks"


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_intro_has_course_map_facts(lesson):
    info = lesson_info(lesson)
    assert info.title.startswith(f"Lesson {lesson[:2]} ")
    assert 0 < info.minutes <= 180 and info.exercises > 0 and info.points > 0


def test_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


SET_UP_LINES = (REPO / "tools" / "device_setup.py").read_text().split("# --- set-up cell lines ---\n", 1)[1].strip()


@pytest.mark.parametrize("lesson", LESSONS)
def test_set_up_cell_has_the_device_lines_of_tools_device_setup(lesson):
    """Every lesson's set-up cell (the code cell that seeds torch) holds tools/device_setup.py's lines verbatim:
    CUDA, else the CPU, MPS only on opt-in, and TF32 off on CUDA on old and new PyTorch."""
    cells = read(notebook_path(lesson)).cells
    set_up = [c for c in cells if c.cell_type == "code" and "torch.manual_seed(0)" in c.source]
    assert set_up, f"{lesson}: no set-up cell (a code cell with torch.manual_seed(0))"
    assert SET_UP_LINES in set_up[0].source, f"{lesson}: the set-up cell differs from tools/device_setup.py's lines"
    for line in SET_UP_LINES.splitlines():
        assert set_up[0].source.count(line) == 1, f"{lesson}: the set-up cell repeats {line.strip()!r}"
