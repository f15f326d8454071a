"""Nothing lost: a grading run stopped with Ctrl-C, or killed outright, keeps every grade it recorded, and the next
run grades only the rest. Runs the real command (``python -m grading.toolkit autograde``) with one job, in a
course as a fresh clone has it: lessons released in notebooks/, no gradebook yet."""

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil

from course.lessons import NOTEBOOKS, REPO, SOLUTIONS
from grading.toolkit.autograde import read_summary
from grading.toolkit.gradebook import is_recorded, opened, scores, sqlite_url

LESSON = "00-orientation"
STUDENTS = ["ada", "ben", "cai", "dee"]


class FreshClone:
    """A course root with Lesson 00 in solutions/ and notebooks/, as in the repository, and no gradebook."""

    def __init__(self, root):
        self.root = root
        self.db_url = sqlite_url(root / "grading" / "gradebook.db")
        (root / "grading").mkdir(parents=True)
        shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
        shutil.copytree(NOTEBOOKS / LESSON, root / "notebooks" / LESSON)

    def submit_solution(self, student):
        folder = self.root / "grading" / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        shutil.copy(SOLUTIONS / LESSON / f"{LESSON}.ipynb", folder)


def command(course):
    env = dict(os.environ, COURSE_ROOT=str(course.root), COURSE_DB_URL=course.db_url)
    return [sys.executable, "-m", "grading.toolkit", "autograde", "--jobs", "1"], {"cwd": REPO, "env": env}


def summary(course):
    return read_summary(course.root / "grading" / "autograde-summary.csv")


def start_and_wait_for(course, rows, timeout=240):
    """Start a run; return it once the summary has ``rows`` rows (a submission recorded since the last run)."""
    args, kwargs = command(course)
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    deadline = time.monotonic() + timeout
    while len(summary(course)) < rows:
        assert run.poll() is None, f"the run ended early:\n{run.communicate()[0]}"
        assert time.monotonic() < deadline, "no submission recorded in time"
        time.sleep(0.2)
    return run


def recorded(course):
    with opened(course.db_url) as gb:
        return {s for s in STUDENTS if is_recorded(gb, LESSON, s)}


def check_recorded_grades(course, rows):
    graded = scores(course.db_url, LESSON)
    assert {student for student, _ in rows} <= recorded(course)
    for student, _ in rows:
        assert sum(score for score, _ in graded[student].values()) == 7, student


def test_interrupted_and_killed_runs_keep_their_grades_and_the_next_run_finishes(tmp_path):
    course = FreshClone(tmp_path / "course")
    for student in STUDENTS:
        course.submit_solution(student)

    # Ctrl-C as soon as one submission is recorded: a clean stop, with the grades so far kept.
    run = start_and_wait_for(course, 1)
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 130, output
    assert f"recorded {LESSON} in the gradebook" in output  # a fresh clone needs no `make release` first
    assert "interrupted:" in output and "run the same command again" in output
    after_interrupt = summary(course)
    check_recorded_grades(course, after_interrupt)
    assert not (course.root / "grading" / ".work").exists()  # workers stopped, scratch removed

    # Killed outright (SIGKILL, no chance to clean up) once one more is recorded.
    run = start_and_wait_for(course, len(after_interrupt) + 1)
    children = psutil.Process(run.pid).children(recursive=True)
    run.kill()
    run.communicate(timeout=60)
    for child in children:  # what a killed process group would take with it
        if child.is_running():
            child.kill()
    psutil.wait_procs(children, timeout=30)
    after_kill = summary(course)
    check_recorded_grades(course, after_kill)
    for key, row in after_interrupt.items():
        assert after_kill[key] == row  # recorded once, not graded again

    # The next run grades only what is left, and finishes.
    args, kwargs = command(course)
    final = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert final.returncode == 0, final.stdout + final.stderr
    left = len(STUDENTS) - len(after_kill)
    assert f"grading {left} submissions" in final.stdout
    assert f"({len(after_kill)} unchanged and already graded" in final.stdout
    rows = summary(course)
    assert set(rows) == {(s, LESSON) for s in STUDENTS}
    check_recorded_grades(course, rows)
    for key, row in after_kill.items():
        assert rows[key] == row
