"""The check library's rules, for every lesson: each check cell has its check (the grader fails a cell it cannot
find a check for), each check takes only the answers of its own exercise (one mistake never costs twice), hidden
checks never ship, and no released file holds an exercise's answer (the self-paced working versions aside)."""

import ast

import pytest

from course.lessons import (
    NOTEBOOKS,
    SOLUTIONS,
    is_answer_cell,
    is_test_cell,
    lesson_names,
    nbgrader,
    notebook_path,
    read,
)
from grading.toolkit.checker import checks_of
from tools.release import answer_code

LESSONS = lesson_names()


def defined_names(source):
    """Top-level names an answer cell defines (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def exercise(grade_id):
    """``ex5_2`` of ``ex5_2_visible`` and of ``ex5_2_sequence_classifier``."""
    return "_".join(grade_id.split("_")[:2])


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_cell_has_its_check_and_takes_only_its_exercises_answers(lesson):
    nb = read(notebook_path(lesson))
    checks = checks_of(SOLUTIONS / lesson)
    answers = {}
    for cell in nb.cells:
        if is_answer_cell(cell):
            answers.setdefault(exercise(nbgrader(cell)["grade_id"]), set()).update(defined_names(cell.source))
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        grade_id = nbgrader(cell)["grade_id"]
        assert grade_id in checks, f"{lesson}/{grade_id}: no check registered with @exercise({grade_id!r}, ...)"
        own = answers.get(exercise(grade_id), set())
        others = set(checks[grade_id].answers) - own
        assert not others, f"{lesson}/{grade_id} takes {sorted(others)}: its exercise's answer cells do not define them"


@pytest.mark.parametrize("lesson", LESSONS)
def test_hidden_checks_are_never_released(lesson):
    assert (SOLUTIONS / lesson / "hidden_checks.py").is_file(), f"{lesson}: no hidden_checks.py"
    assert not (NOTEBOOKS / lesson / "hidden_checks.py").exists()


def answer_lines(lesson):
    """The distinctive lines of a lesson's answers (long enough that a teaching cell would not hold them by chance),
    less the ones a teaching cell shows before the exercise (the building blocks the lesson teaches first)."""
    nb = read(notebook_path(lesson))
    lines, taught = set(), set()
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_answer_cell(cell) and not is_test_cell(cell):
            taught |= {line.strip() for line in cell.source.splitlines()}
        if is_answer_cell(cell):
            for block in cell.source.split("### BEGIN SOLUTION")[1:]:
                solution = block.split("### END SOLUTION", 1)[0]
                lines |= {line.strip() for line in answer_code(solution).splitlines()
                          if len(line.strip()) >= 28 and not line.strip().startswith(("#", '"""', "return "))
                          and line.strip() not in taught}
    return lines


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_released_file_holds_an_answer(lesson):
    """The student notebook (outside its answer cells' stubs) and every file shipped with it but the self-paced
    working versions: no line of an answer."""
    secret = answer_lines(lesson)
    folder = NOTEBOOKS / lesson
    for path in sorted(folder.iterdir()):
        if path.name == "working_versions.py" or not path.is_file() or path.suffix not in (".py", ".ipynb", ".md"):
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in read(path).cells)
        found = sorted(line for line in secret if line in text)
        assert not found, f"notebooks/{lesson}/{path.name} holds answer lines: {found[:3]}"
