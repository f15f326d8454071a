"""The grading toolkit on one batch of Lesson 00 submissions, good, broken and hostile, graded by the real command
(``python -m grading.toolkit autograde``, what ``make autograde`` runs) with 2 jobs for 14 students: every
submission gets the right score and a reason, none stops the batch, the gradebook gets every row once. Then
feedback (no hidden test code, failure messages kept) and export (grades.csv, summary) on the same batch, and a
re-run (nothing regraded, same scores; a changed file regraded)."""

import copy
import csv
import html
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Grade

from course.lessons import REPO, nbgrader
from grading.toolkit.autograde import read_summary
from grading.toolkit.feedback import secret_lines as feedback_secret_lines
from grading.toolkit.gradebook import opened
from grading.toolkit.settings import Course
from tests.harness import TempCourse, with_answers

# One module-scoped batch: under `make test` (xdist --dist loadgroup) all its tests stay on one worker.
pytestmark = pytest.mark.xdist_group("grading-batch")

LESSON = "00-orientation"
MAX = 7.0
# Long enough for the first cell (imports torch) on a slow, loaded CI machine, where 5 s was not; the endless loops
# cost this much each.
CELL_TIMEOUT = 15

SOLUTION_EX0_3 = '''
def initial_hidden_state(gru, batch_size=None):
    weight = gru.weight_hh_l0
    rows = (2 if gru.bidirectional else 1) * gru.num_layers
    shape = (rows, gru.hidden_size) if batch_size is None else (rows, batch_size, gru.hidden_size)
    return torch.zeros(shape, device=weight.device, dtype=weight.dtype)
'''

ANSWERS = {
    "endless-loop": {"ex0_1_gru_shapes": "while True:\n    pass\n"},
    "ignores-interrupt": {"ex0_3_initial_state": (
        "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass\n")},
    "kills-kernel": {"ex0_2_parameter_count": "import os\nos._exit(1)\n"},
    # 5 GiB, over the default 4 GiB cap: the allocation fails, so the function below it is never defined.
    "memory-hog": {"ex0_3_initial_state": "big = torch.ones(5 * 2**30 // 4)\n" + SOLUTION_EX0_3},
    "syntax-error": {"ex0_1_gru_shapes": "def gru_shapes(seq_len, batch_size:\n    return None\n"},
    "always-equal": {
        "ex0_1_gru_shapes": "class Anything(tuple):\n    def __eq__(self, other):\n        return True\n\n"
                            "def gru_shapes(*args, **kwargs):\n    return Anything((Anything(), Anything()))\n",
        "ex0_2_parameter_count": "class Anything(int):\n    def __eq__(self, other):\n        return True\n\n"
                                 "def gru_parameter_count(*args, **kwargs):\n    return Anything(0)\n"},
}

WRONG_EX0_2 = '''
def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else d * hidden_size
        total += d * (3 * hidden_size * (n_in + hidden_size) + 6 * hidden_size)  # bias=False ignored
    return total
'''

# student: (total score, status, words the summary's reason must contain)
EXPECTED = {
    "solution": (7, "graded", []),
    "misnamed": (7, "graded", ["misnamed notebook", "00-orientation (1).ipynb"]),
    "endless-loop": (4, "graded", ["ex0_1_gru_shapes", f"ran past the {CELL_TIMEOUT} s cell timeout"]),
    "ignores-interrupt": (5, "graded", ["ex0_3_initial_state", "ignored the interrupt", "later cells not run"]),
    "kills-kernel": (3, "graded", ["ex0_2_parameter_count", "kernel died", "later cells not run"]),
    "memory-hog": (5, "graded", ["ex0_3_initial_state", "can't allocate memory", "memory cap 4 GiB"]),
    "syntax-error": (4, "graded", ["ex0_1_gru_shapes", "SyntaxError"]),
    "not-json": (0, "not-gradable", ["not a valid notebook"]),
    "no-notebook": (0, "not-gradable", ["no notebook", "answers.py"]),
    "edited-checks": (0, "graded", ["not answered", "ex0_1_visible", "ex0_3_hidden"]),  # its edits are not used
    "deleted-checks": (7, "graded", []),  # the instructor's check cells are graded, whatever the submission holds
    "copied-outputs": (0, "graded", ["not answered"]),
    "always-equal": (2, "graded", ["failed checks", "ex0_1_visible", "ex0_2_hidden"]),
    "wrong-answer": (1, "graded", ["not answered", "failed checks", "ex0_2_hidden"]),
}


def is_check(cell):
    return cell.cell_type == "code" and nbgrader(cell).get("grade") and not nbgrader(cell).get("solution")


def make_submissions(course):
    source, blank = course.source(LESSON), course.student_version(LESSON)
    for student in ["solution", "misnamed", "deleted-checks", *ANSWERS]:
        nb = with_answers(source, ANSWERS.get(student, {}))
        if student == "deleted-checks":
            nb.cells = [c for c in nb.cells if not is_check(c)]
        course.submit(student, LESSON, nb)
    misnamed = course.root / "grading" / "submitted" / "misnamed" / LESSON
    (misnamed / f"{LESSON}.ipynb").rename(misnamed / f"{LESSON} (1).ipynb")

    edited = copy.deepcopy(blank)  # blank answers: only the "pass" checks could give it points
    for cell in edited.cells:
        if is_check(cell):
            cell.source = "pass"
    course.submit("edited-checks", LESSON, edited)

    copied = copy.deepcopy(blank)  # blank answers wearing the solution's outputs
    for theirs, solved in zip(copied.cells, source.cells, strict=True):
        if theirs.cell_type == "code":
            theirs.outputs, theirs.execution_count = copy.deepcopy(solved.outputs), solved.execution_count
    course.submit("copied-outputs", LESSON, copied)
    course.submit("wrong-answer", LESSON, with_answers(blank, {"ex0_2_parameter_count": WRONG_EX0_2}))

    broken_files = [("not-json", f"{LESSON}.ipynb", '{"cells": [oops'), ("no-notebook", "answers.py", "x = 1")]
    for student, name, text in broken_files:
        folder = course.root / "grading" / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / name).write_text(text)


def toolkit(course, *args, **env):
    environment = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url, **env)
    environment.pop("COURSE_KERNEL_MEMORY", None)  # the default cap is part of what is tested
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    course = TempCourse(tmp_path_factory.mktemp("batch"), [LESSON])
    make_submissions(course)
    run = toolkit(course, "autograde", "--jobs", "2", COURSE_CELL_TIMEOUT=str(CELL_TIMEOUT))
    print(run.stdout, run.stderr)
    return course, run


def totals(course):
    return {student: sum(score for score, _ in grades.values()) for student, grades in course.scores(LESSON).items()}


def summary(course):
    return read_summary(course.root / "grading" / "autograde-summary.csv")


def test_the_batch_is_graded_completely_and_the_command_succeeds(batch):
    course, run = batch
    assert run.returncode == 0, run.stdout + run.stderr
    assert "database is locked" not in run.stdout + run.stderr
    scores = course.scores(LESSON)
    assert set(scores) == set(EXPECTED)
    for student, grades in scores.items():  # every graded cell of every student, once
        assert sorted(grades) == ["ex0_1_hidden", "ex0_1_visible", "ex0_2_hidden", "ex0_2_visible",
                                  "ex0_3_hidden", "ex0_3_visible"], student
    with opened(course.db_url) as gb:
        assert gb.db.query(Grade).count() == len(EXPECTED) * 6
    assert set(summary(course)) == {(student, LESSON) for student in EXPECTED}


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_submission_gets_its_score_and_a_reason(batch, student):
    course, _ = batch
    total, status, words = EXPECTED[student]
    row = summary(course)[(student, LESSON)]
    assert totals(course)[student] == total, row
    assert (row["status"], float(row["score"]), float(row["max_score"])) == (status, total, MAX)
    for word in words:
        assert word in row["reason"], f"{student}: {word!r} not in the reason {row['reason']!r}"
    if not words:
        assert row["reason"] == ""


def test_restored_check_cells_are_graded(batch):
    course, _ = batch
    graded = nbformat.read(str(course.root / "grading" / "autograded" / "deleted-checks" / LESSON / f"{LESSON}.ipynb"),
                           as_version=4)
    restored = [nbgrader(c)["grade_id"] for c in graded.cells if is_check(c)]
    assert len(restored) == 6
    scores = course.scores(LESSON)["deleted-checks"]
    assert all(score == top for score, top in scores.values())


def test_hostile_answers_score_nothing_on_their_checks(batch):
    course, _ = batch
    scores = course.scores(LESSON)["always-equal"]
    for grade_id in ["ex0_1_visible", "ex0_1_hidden", "ex0_2_visible", "ex0_2_hidden"]:
        assert scores[grade_id][0] == 0, grade_id


def secret_lines(course):
    """Lines of the hidden tests that appear nowhere else in the lesson (what feedback must not show)."""
    hidden, public = [], []
    for cell in course.source(LESSON).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
            else:
                (hidden if inside else public).append(line.strip())
    return [line for line in hidden if len(line) >= 12 and line not in public]


def visible_text(page):
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_feedback_shows_why_a_hidden_check_failed_but_not_its_code(batch):
    course, _ = batch
    run = toolkit(course, "feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    secrets = feedback_secret_lines(Course(course.root, course.db_url), LESSON)  # hidden_checks.py's lines
    assert len(secrets) > 20
    # The hidden checks ran in the grader: not even nbgrader's autograded notebook holds their code.
    autograded = (course.root / "grading" / "autograded" / "wrong-answer" / LESSON / f"{LESSON}.ipynb").read_text()
    assert "rng = random.Random(7)" in secrets and "rng = random.Random(7)" not in autograded

    pages = sorted((course.root / "grading" / "feedback").glob(f"*/{LESSON}/{LESSON}.html"))
    assert {p.parent.parent.name for p in pages} == set(EXPECTED)
    for page in pages:
        text = visible_text(page.read_text())
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{page.parent.parent.name}: hidden test code in the feedback: {leaked[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text

    feedback = course.root / "grading" / "feedback"
    wrong = visible_text((feedback / "wrong-answer" / LESSON / f"{LESSON}.html").read_text())
    assert "ex0_2_hidden" in wrong
    assert "# Exercise 0.2 · hidden checks: compared with nn.GRU's own parameters" in wrong
    assert re.search(r"CheckFailed: gru_parameter_count\(\*\*\{.*'bias': False\}\): expected \d+, got \d+", wrong)

    broken = visible_text((feedback / "not-json" / LESSON / f"{LESSON}.html").read_text())
    assert "could not be graded" in broken and "not a valid notebook" in broken and "0 / 7" in broken


def test_export_writes_grades_and_the_class_summary(batch):
    course, _ = batch
    run = toolkit(course, "export")
    assert run.returncode == 0, run.stdout + run.stderr
    with open(course.root / "grading" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(EXPECTED)
    assert {r["student_id"]: float(r["score"]) for r in rows} == {s: float(t) for s, (t, _, _) in EXPECTED.items()}

    summary_dir = course.root / "grading" / "summary"
    with open(summary_dir / "checks.csv") as f:
        checks = {r["check"]: r for r in csv.DictReader(f)}
    scores = course.scores(LESSON)
    graded = [s for s, (_, status, _) in EXPECTED.items() if status == "graded"]
    for grade_id, row in checks.items():
        full = sum(scores[s][grade_id][0] == scores[s][grade_id][1] for s in graded)
        assert (int(row["submissions"]), int(row["full_marks"])) == (len(graded), full), grade_id
        assert row["pass_rate"] == f"{full / len(graded):.0%}"
    with open(summary_dir / "scores.csv") as f:
        (lesson_row,) = list(csv.DictReader(f))
    assert (int(lesson_row["graded"]), int(lesson_row["not_gradable"])) == (len(graded), 2)
    assert int(lesson_row["100%"]) == sum(EXPECTED[s][0] == MAX for s in graded)
    assert (summary_dir / "summary.png").stat().st_size > 10_000
    assert "Pass rate per check" in (summary_dir / "summary.md").read_text()
    assert "ex0_3_hidden" in run.stdout


def test_a_rerun_grades_only_what_changed_and_keeps_the_scores(batch):
    course, _ = batch
    before, rows_before = totals(course), summary(course)
    course.submit("syntax-error", LESSON, course.source(LESSON))  # that student submits again, fixed
    again = toolkit(course, "autograde", "--jobs", "2", COURSE_CELL_TIMEOUT=str(CELL_TIMEOUT))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "grading 1 submissions" in again.stdout and f"({len(EXPECTED) - 1} unchanged" in again.stdout
    after, rows_after = totals(course), summary(course)
    assert after.pop("syntax-error") == MAX and before.pop("syntax-error") == 4
    assert after == before
    assert rows_after.pop(("syntax-error", LESSON))["reason"] == ""
    rows_before.pop(("syntax-error", LESSON))
    assert rows_after == rows_before  # the others were not graded again: same rows, same times
