"""A real PostgreSQL gradebook, and one class graded by two shards at once.

Lesson 00 is released (``generate_assignment``, the gradebook part of ``make release``) into a throw-away
PostgreSQL server (``tests/postgres.py``), and four submissions are graded by ``autograde --shard 1/2`` and
``--shard 2/2`` of the real command (``python -m grading.toolkit``, what ``make autograde SHARD=i/N`` runs),
started at the same moment with ``--jobs 2`` each, the first with its stderr on a terminal (the progress bar);
then ``make feedback`` and ``make export`` (with a small Canvas export made here) on that gradebook. The same
submissions are graded by plain ``nbgrader autograde`` into SQLite, the reference. Scores must be the same;
every submission graded by exactly one shard (the one its student id hashes to) and recorded once, no lock
errors, and the export sees the whole class. nbgrader's own commands run in this process, as its test-suite
runs them (they start in a second, not ten)."""

import csv
import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import threading

import nbformat
import pytest
from nbgrader.api import Grade, SubmittedAssignment

from course.lessons import GRADING, REPO, SOLUTIONS, notebook_path, read
from grading.toolkit.autograde import read_summary
from grading.toolkit.export import export
from grading.toolkit.feedback import feedback, page_text, secret_lines
from grading.toolkit.gradebook import opened, scores, sqlite_url, tools_on_path
from grading.toolkit.settings import Course
from grading.toolkit.shard import shard_of
from grading.toolkit.worker import run_nbgrader
from tests.harness import with_answers
from tests.postgres import Server

pytestmark = pytest.mark.xdist_group("grading-postgres")

LESSON = "00-orientation"
SYNTAX_ERROR = "def gru_shapes(seq_len, batch_size:\n    return None\n"
# By the hash of their ids, shard 1 of 2 has syntax-error, shard 2 the other two.
STUDENTS = ["solution", "syntax-error", "not-json"]


def nbgrader(root, db_url, *args):
    """An nbgrader command of the instructor, from grading/ (its config), in this process."""
    tools_on_path()  # nbgrader runs alembic by name
    here = os.getcwd()
    os.chdir(GRADING)
    try:
        code, log = run_nbgrader(list(args), COURSE_ROOT=str(root), COURSE_DB_URL=db_url)
    finally:
        os.chdir(here)
    assert code == 0, f"nbgrader {' '.join(args)} failed:\n{log}"


def released_course(root, db_url):
    """A course root with Lesson 00, released into the gradebook ``db_url``."""
    (root / "grading").mkdir(parents=True)
    shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
    nbgrader(root, db_url, "generate_assignment", LESSON, "--force")
    return root


def submit(root, student, nb):
    """``nb`` (a notebook, or any text) as ``student``'s submission."""
    path = notebook_path(LESSON, root / "grading" / "submitted" / student)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, str(path))


def make_submissions(root, broken=True):
    source = read(notebook_path(LESSON, SOLUTIONS))
    submit(root, "solution", source)
    submit(root, "syntax-error", with_answers(source, {"ex0_1_gru_shapes": SYNTAX_ERROR}))
    if broken:  # the toolkit records it as not gradable; plain nbgrader would stop at it
        submit(root, "not-json", '{"cells": [oops')


def environment(root, db_url):
    env = dict(os.environ, COURSE_ROOT=str(root), COURSE_DB_URL=db_url)
    env.pop("COURSE_KERNEL_MEMORY", None)
    return env


def toolkit(root, db_url, *args):
    return subprocess.run([sys.executable, "-m", "grading.toolkit", *args], cwd=REPO, capture_output=True,
                          text=True, env=environment(root, db_url), timeout=600)


def start_on_a_terminal(root, db_url, *args):
    """Start the toolkit with stderr on a pseudo-terminal (what an instructor's shell gives it); returns a
    function that waits for it: (exit code, stdout, everything the terminal showed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))  # a 110 x 30 terminal
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
    reference = tmp_path_factory.mktemp("sqlite")
    reference_url = sqlite_url(reference / "grading" / "gradebook.db")
    released_course(reference, reference_url)
    make_submissions(reference, broken=False)
    nbgrader(reference, reference_url, "autograde", LESSON, "--force")

    with Server() as server:
        db_url = server.create_database("gru_course")
        root = released_course(tmp_path_factory.mktemp("postgres"), db_url)
        make_submissions(root)
        course = Course(root, db_url)
        finish_first = start_on_a_terminal(root, db_url, "autograde", "--shard", "1/2", "--jobs", "2")
        second = toolkit(root, db_url, "autograde", "--shard", "2/2", "--jobs", "2")
        first = finish_first()
        lines = []
        feedback_code = feedback(course, out=lines.append)  # make feedback
        canvas = root / "canvas-export.csv"
        canvas.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (77)\n"
                          "    Points Possible,,,,,10\n"
                          "\"Solution, Sol\",101,,solution,A,9\n"
                          "\"Dropped, Out\",102,,dropped-out,A,4\n")
        export_lines = []
        export_code = export(course, out=export_lines.append, canvas=str(canvas))  # make export CANVAS=...
        yield {"reference": reference_url, "root": root, "db_url": db_url, "first": first, "second": second,
               "feedback": (feedback_code, lines), "export": (export_code, "\n".join(export_lines))}


def totals(db_url):
    return {student: sum(score for score, _ in cells.values()) for student, cells in scores(db_url, LESSON).items()}


def test_postgresql_gives_the_same_scores_as_sqlite(graded):
    sqlite, postgres = scores(graded["reference"], LESSON), scores(graded["db_url"], LESSON)
    assert set(postgres) == set(STUDENTS) and set(sqlite) == set(STUDENTS) - {"not-json"}
    not_gradable = postgres.pop("not-json")  # recorded by the toolkit as 0 on every graded cell
    assert len(not_gradable) == 6 and all(score == 0 for score, _ in not_gradable.values())
    assert postgres == sqlite  # every graded cell of every student
    assert totals(graded["db_url"]) == {"solution": 7, "syntax-error": 4, "not-json": 0}


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
    assert "shard 1/2: 1 of the 3 submissions found are this shard's" in out_1
    assert "shard 2/2: 2 of the 3 submissions found are this shard's" in second.stdout
    with opened(graded["db_url"]) as gb:  # no lost or duplicated rows
        assert gb.db.query(SubmittedAssignment).count() == len(STUDENTS)
        assert gb.db.query(Grade).count() == len(STUDENTS) * 6
    assert not list((root / "grading").glob(".work*"))  # each shard removed its own scratch folder


def test_shards_show_a_progress_bar_on_a_terminal_and_plain_lines_elsewhere(graded):
    _, out_1, screen_1 = graded["first"]
    # tqdm on the terminal: count done, elapsed<remaining, and the problems so far; no per-submission lines for
    # the clean ones on stdout (the summary file keeps them).
    assert re.search(r"autograde: +0%.*\| 0/1 \[00:00<\?", screen_1), screen_1  # before the first result
    assert re.search(r"autograde: +100%.*\| 1/1 \[\d\d:\d\d<00:00", screen_1), screen_1
    assert "problems: 1" in screen_1
    assert "syntax-error 00-orientation: 4/7 graded" in screen_1  # a problem is shown as it arrives
    assert not re.search(r"^\[\d/\d\]", out_1, re.M)
    second = graded["second"].stdout  # not a terminal: a line per submission
    assert re.search(r"^\[[12]/2\] solution 00-orientation: 7/7 graded \([\d.]+ s\)$", second, re.M), second
    assert re.search(r"^\[[12]/2\] not-json 00-orientation: 0/7 not-gradable .* - not a valid notebook", second, re.M)
    assert "\r" not in second and "\r" not in graded["second"].stderr


def test_feedback_from_the_postgresql_gradebook_has_no_hidden_tests(graded):
    root, (code, lines) = graded["root"], graded["feedback"]
    assert code == 0, lines
    secrets = secret_lines(Course(root, graded["db_url"]), LESSON)
    pages = sorted((root / "grading" / "feedback").glob(f"*/{LESSON}/{LESSON}.html"))
    assert {p.parent.parent.name for p in pages} == set(STUDENTS)  # both shards' students, the broken one too
    for page in pages:
        text = page_text(page.read_text(encoding="utf-8"))
        assert not [line for line in secrets if line in text], page


def test_export_sees_the_whole_class_and_writes_lms_files(graded):
    root, (code, output) = graded["root"], graded["export"]
    assert code == 0, output
    expected = totals(graded["db_url"])
    with open(root / "grading" / "grades.csv") as f:
        assert {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)} == expected
    with open(root / "grading" / "summary" / "scores.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["graded"], row["not_gradable"]) == ("2", "1")  # not-json, from shard 2's summary file

    with open(root / "grading" / "lms" / "canvas-grades.csv", newline="") as f:
        canvas = list(csv.reader(f))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz 1 (77)", LESSON]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "10", "7"]
    assert canvas[2] == ["Solution, Sol", "101", "", "solution", "A", "9", "7"]
    assert canvas[3] == ["Dropped, Out", "102", "", "dropped-out", "A", "4", ""]  # no submission: left blank
    added = {r[3]: r[6] for r in canvas[4:]}
    assert added == {s: f"{t:g}" for s, t in expected.items() if s != "solution"}
    assert "2 graded students are not in" in output and "not-json, syntax-error" in output

    with open(root / "grading" / "lms" / "moodle-grades.csv", newline="") as f:
        moodle = list(csv.DictReader(f))
    assert {r["username"]: float(r[LESSON]) for r in moodle} == expected
