"""A real PostgreSQL gradebook, and one class graded by two shards at once.

The same Lesson 00 submissions are graded twice by the real command (``python -m grading.toolkit``, what ``make``
runs): into SQLite (``autograde --jobs 2``), and into a throw-away PostgreSQL server (``tests/postgres.py``) after
``generate_assignment`` released the lesson into it, by ``autograde --shard 1/2`` and ``--shard 2/2`` started at
the same moment (``--jobs 2`` each), the first with its stderr on a terminal (the progress bar). Then feedback
and export on PostgreSQL. Scores must be the same as with SQLite; every submission graded by exactly one shard
(the one its student id hashes to), recorded once, no lock errors, and the export sees the whole class."""

import csv
import os
import pty
import re
import shutil
import subprocess
import sys
import threading

import pytest
from nbgrader.api import Grade, SubmittedAssignment

from course.commands import nbgrader
from course.lessons import REPO
from grading.toolkit.autograde import read_summary
from grading.toolkit.feedback import page_text, secret_lines
from grading.toolkit.gradebook import opened, scores
from grading.toolkit.settings import Course
from grading.toolkit.shard import shard_of
from tests.harness import TempCourse, with_answers
from tests.postgres import Server

pytestmark = pytest.mark.xdist_group("grading-postgres")

LESSON = "00-orientation"
WRONG_EX0_2 = "def gru_parameter_count(input_size, hidden_size, num_layers=1, bidirectional=False, bias=True):\n" \
              "    return 3 * hidden_size * (input_size + hidden_size + 2)\n"
SYNTAX_ERROR = "def gru_shapes(seq_len, batch_size:\n    return None\n"
# By the hash of their ids, shard 1 of 2 has blank and syntax-error, shard 2 the other three.
STUDENTS = ["solution", "blank", "wrong-answer", "syntax-error", "not-json"]


def make_submissions(course):
    source, blank = course.source(LESSON), course.student_version(LESSON)
    course.submit("solution", LESSON, source)
    course.submit("blank", LESSON, blank)
    course.submit("wrong-answer", LESSON, with_answers(source, {"ex0_2_parameter_count": WRONG_EX0_2}))
    course.submit("syntax-error", LESSON, with_answers(source, {"ex0_1_gru_shapes": SYNTAX_ERROR}))
    folder = course.root / "grading" / "submitted" / "not-json" / LESSON
    folder.mkdir(parents=True)
    (folder / f"{LESSON}.ipynb").write_text('{"cells": [oops')


def environment(root, db_url):
    env = dict(os.environ, COURSE_ROOT=str(root), COURSE_DB_URL=db_url)
    env.pop("COURSE_KERNEL_MEMORY", None)
    return env


def toolkit(root, db_url, *args):
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, capture_output=True,
                          text=True, env=environment(root, db_url), timeout=600)


def start_on_a_terminal(root, db_url, *args):
    """Start the toolkit with stderr on a pseudo-terminal (what an instructor's shell gives it); returns the
    process and a function that waits for it and gives back everything the terminal showed."""
    leader, follower = pty.openpty()
    run = subprocess.Popen([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=follower, text=True, env=environment(root, db_url))
    os.close(follower)
    screen = []

    def read():  # keep the terminal drained, or the bar's writes would block the run
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            screen.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def finish():
        stdout = run.communicate(timeout=600)[0]
        reader.join(30)
        os.close(leader)
        return run.returncode, stdout, b"".join(screen).decode(errors="replace")

    return finish


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    sqlite_course = TempCourse(tmp_path_factory.mktemp("sqlite"), [LESSON])
    make_submissions(sqlite_course)
    sqlite_run = toolkit(sqlite_course.root, sqlite_course.db_url, "autograde", "--jobs", "2")
    assert sqlite_run.returncode == 0, sqlite_run.stdout + sqlite_run.stderr

    with Server() as server:
        root = tmp_path_factory.mktemp("postgres")
        (root / "grading").mkdir()
        shutil.copytree(sqlite_course.root / "solutions", root / "solutions")
        shutil.copytree(sqlite_course.root / "grading" / "submitted", root / "grading" / "submitted")
        db_url = server.create_database("gru_course")
        nbgrader(["generate_assignment", LESSON, "--force"], root, db_url)  # make release, into PostgreSQL

        finish_first = start_on_a_terminal(root, db_url, "autograde", "--shard", "1/2", "--jobs", "2")
        second = toolkit(root, db_url, "autograde", "--shard", "2/2", "--jobs", "2")
        first = finish_first()
        feedback = toolkit(root, db_url, "feedback")
        canvas = root / "canvas-export.csv"
        canvas.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (77)\n"
                          "    Points Possible,,,,,10\n"
                          "\"Solution, Sol\",101,,solution,A,9\n"
                          "\"Dropped, Out\",102,,dropped-out,A,4\n")
        export = toolkit(root, db_url, "export", "--canvas", str(canvas))
        yield {"sqlite": sqlite_course, "root": root, "db_url": db_url, "first": first, "second": second,
               "feedback": feedback, "export": export}


def totals(db_url):
    return {student: sum(score for score, _ in cells.values()) for student, cells in scores(db_url, LESSON).items()}


def test_postgresql_gives_the_same_scores_as_sqlite(graded):
    sqlite, postgres = scores(graded["sqlite"].db_url, LESSON), scores(graded["db_url"], LESSON)
    assert set(sqlite) == set(postgres) == set(STUDENTS)
    assert postgres == sqlite  # every graded cell of every student
    assert totals(graded["db_url"]) == {"solution": 7, "blank": 0, "wrong-answer": 5, "syntax-error": 4,
                                        "not-json": 0}


def test_two_shards_at_once_grade_each_submission_exactly_once(graded):
    root = graded["root"]
    (code_1, out_1, screen_1), second = graded["first"], graded["second"]
    assert code_1 == 0, out_1 + screen_1
    assert second.returncode == 0, second.stdout + second.stderr
    for text in (out_1, screen_1, second.stdout, second.stderr):
        for word in ("locked", "deadlock", "another autograde", "Traceback"):
            assert word not in text, text
    shards = {i: read_summary(root / "grading" / f"autograde-summary.shard-{i}-of-2.csv") for i in (1, 2)}
    for i, rows in shards.items():
        assert {student for student, _ in rows} == {s for s in STUDENTS if shard_of(s, 2) == i}, i
    assert set(shards[1]) | set(shards[2]) == {(s, LESSON) for s in STUDENTS}
    assert "shard 1/2: 2 of the 5 submissions found are this shard's" in out_1
    assert "shard 2/2: 3 of the 5 submissions found are this shard's" in second.stdout
    with opened(graded["db_url"]) as gb:  # no lost or duplicated rows
        assert gb.db.query(SubmittedAssignment).count() == len(STUDENTS)
        assert gb.db.query(Grade).count() == len(STUDENTS) * 6
    assert not list((root / "grading").glob(".work*"))  # each shard removed its own scratch folder


def test_shards_show_a_progress_bar_on_a_terminal_and_plain_lines_elsewhere(graded):
    _, out_1, screen_1 = graded["first"]
    # tqdm on the terminal: count done, elapsed<remaining, and the problems so far; no per-submission lines for
    # the clean ones on stdout (the summary file keeps them).
    assert re.search(r"autograde: +100%.*\| 2/2 \[\d\d:\d\d<00:00", screen_1), screen_1
    assert "problems: 2" in screen_1
    assert "syntax-error 00-orientation: 4/7 graded" in screen_1  # a problem is shown as it arrives
    assert not re.search(r"^\[\d/\d\]", out_1, re.M)
    second = graded["second"].stdout  # not a terminal: a line per submission
    assert re.search(r"^\[[123]/3\] solution 00-orientation: 7/7 graded \([\d.]+ s\)$", second, re.M), second
    assert "\r" not in second and "\r" not in graded["second"].stderr


def test_feedback_from_the_postgresql_gradebook_has_no_hidden_tests(graded):
    root, run = graded["root"], graded["feedback"]
    assert run.returncode == 0, run.stdout + run.stderr
    secrets = secret_lines(Course(root, graded["db_url"]), LESSON)
    pages = sorted((root / "grading" / "feedback").glob(f"*/{LESSON}/{LESSON}.html"))
    assert {p.parent.parent.name for p in pages} == set(STUDENTS)  # both shards' students, the broken one too
    for page in pages:
        text = page_text(page.read_text(encoding="utf-8"))
        assert not [line for line in secrets if line in text], page


def test_export_sees_the_whole_class_and_writes_lms_files(graded):
    root, run = graded["root"], graded["export"]
    assert run.returncode == 0, run.stdout + run.stderr
    expected = totals(graded["db_url"])
    with open(root / "grading" / "grades.csv") as f:
        assert {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)} == expected
    with open(root / "grading" / "summary" / "scores.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["graded"], row["not_gradable"]) == ("4", "1")  # not-json, from shard 2's summary file

    with open(root / "grading" / "lms" / "canvas-grades.csv", newline="") as f:
        canvas = list(csv.reader(f))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz 1 (77)", LESSON]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "10", "7"]
    assert canvas[2] == ["Solution, Sol", "101", "", "solution", "A", "9", "7"]
    assert canvas[3] == ["Dropped, Out", "102", "", "dropped-out", "A", "4", ""]  # no submission: left blank
    added = {r[3]: r[6] for r in canvas[4:]}
    assert added == {s: f"{t:g}" for s, t in expected.items() if s != "solution"}
    assert "4 graded students are not in" in run.stdout and "blank, not-json, syntax-error, wrong-answer" in run.stdout

    with open(root / "grading" / "lms" / "moodle-grades.csv", newline="") as f:
        moodle = list(csv.DictReader(f))
    assert {r["username"]: float(r[LESSON]) for r in moodle} == expected
