"""The toolkit's dealings with nbgrader's gradebook (``nbgrader.api.Gradebook``, any SQLAlchemy URL).

Parallel grading never lets two processes write one database: each worker grades in a scratch course with its
own SQLite gradebook, built from ``write_template``; the main process then copies the grades into the real
gradebook with ``record``, one transaction per submission. A run stopped at any moment leaves every recorded
submission complete and nothing half-written.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path

from nbgrader.api import (
    Comment,
    Grade,
    Gradebook,
    MissingEntry,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from nbgrader.utils import parse_utc
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from course.commands import nbgrader
from grading.toolkit.shard import setup_lock


def sqlite_url(path):
    return f"sqlite:///{Path(path).resolve()}"


def tools_on_path():
    """nbgrader runs ``alembic`` by name when it creates a gradebook: the course environment comes first on PATH
    (``make`` does this too; here for ``python -m grading.toolkit`` and the tests)."""
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


@contextmanager
def opened(db_url):
    tools_on_path()
    gradebook = Gradebook(db_url)
    try:
        yield gradebook
    finally:
        gradebook.close()


def lessons_in(db_url):
    """Lessons whose source cells the gradebook holds (``generate_assignment`` records them)."""
    with opened(db_url) as gb:
        return {a.name for a in gb.assignments if a.notebooks}


def ensure_lessons(course, lessons):
    """Record every lesson of ``lessons`` that the gradebook lacks, as ``make release`` would, but into a scratch
    course root so that ``notebooks/`` is left alone (a fresh clone has notebooks/ but no gradebook)."""
    with setup_lock(course.db_url):  # shards started together: one creates the tables and lessons, the rest wait
        missing = sorted(set(lessons) - lessons_in(course.db_url))
        for lesson in missing:
            with tempfile.TemporaryDirectory(prefix="gru-release-") as scratch:
                shutil.copytree(course.solutions / lesson, Path(scratch) / "solutions" / lesson)
                (Path(scratch) / "grading").mkdir()
                nbgrader(["generate_assignment", lesson, "--force"], Path(scratch), course.db_url)
    return missing


def write_template(db_url, lessons, path):
    """An SQLite gradebook at ``path`` holding ``lessons`` exactly as the real gradebook has them (notebooks,
    kernelspec, source/grade/solution/task cells) and no students: each worker grades into a copy of it."""
    with opened(db_url) as real:
        stamp_schema_version(path, real)
        with opened(sqlite_url(path)) as template:
            copy_lessons(real, template, lessons)


def stamp_schema_version(path, real):
    """Give the new SQLite file at ``path`` the real gradebook's schema version. nbgrader stamps a new gradebook
    by running ``alembic heads`` in a subprocess (1.7 s, most of a run's set-up); a file that already has the
    version table is taken as existing, and nbgrader only creates the missing tables."""
    try:
        version = real.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:  # a gradebook without the table: nbgrader stamps the template itself
        real.db.rollback()
        return
    if version is None:
        return
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (version,))


def copy_lessons(real, template, lessons):
    for lesson in lessons:
        assignment = real.find_assignment(lesson)
        template.update_or_create_assignment(lesson, duedate=assignment.duedate)
        for notebook in assignment.notebooks:
            template.update_or_create_notebook(notebook.name, lesson, kernelspec=notebook.kernelspec)
            for cell in notebook.source_cells:
                template.update_or_create_source_cell(
                    cell.name, notebook.name, lesson, cell_type=cell.cell_type, locked=cell.locked,
                    source=cell.source, checksum=cell.checksum)
            for cell in notebook.grade_cells:
                template.update_or_create_grade_cell(
                    cell.name, notebook.name, lesson, max_score=cell.max_score, cell_type=cell.cell_type)
            for cell in notebook.solution_cells:
                template.update_or_create_solution_cell(cell.name, notebook.name, lesson)
            for cell in notebook.task_cells:
                template.update_or_create_task_cell(
                    cell.name, notebook.name, lesson, max_score=cell.max_score, cell_type=cell.cell_type)


def lesson_fingerprints(db_url, lessons):
    """{lesson: checksum of its source cells}: when a lesson is re-released with other checks, the checksum
    changes and its submissions are graded again."""
    result = {}
    with opened(db_url) as gb:
        for lesson in lessons:
            cells = sorted((nb.name, c.name, c.checksum or "") for nb in gb.find_assignment(lesson).notebooks
                           for c in nb.source_cells)
            result[lesson] = hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:12]
    return result


def read_submission(db_url, lesson, student):
    """What nbgrader wrote for one submission, as plain data: {"timestamp", "notebooks": {name: {"grades",
    "comments", "late_penalty"}}} (the worker reads its scratch gradebook with this)."""
    with opened(db_url) as gb:
        submission = gb.find_submission(lesson, student)
        return {
            "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
            "notebooks": {
                nb.name: {
                    "grades": {g.name: g.auto_score for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                    "late_penalty": nb.late_submission_penalty,
                }
                for nb in submission.notebooks
            },
        }


def zero_submission(gb, lesson):
    """The record of a submission that could not be graded: every graded cell of ``lesson`` scores 0."""
    return {
        "timestamp": None,
        "notebooks": {
            nb.name: {"grades": {c.name: 0.0 for c in [*nb.grade_cells, *nb.task_cells]}, "comments": {},
                      "late_penalty": None}
            for nb in gb.find_assignment(lesson).notebooks
        },
    }


def record(gb, lesson, student, graded):
    """Write one submission's grades (``read_submission``'s format) into ``gb`` in a single transaction.

    Built with the ORM rather than ``Gradebook.update_or_create_*``, which commit after every step: here the
    student, the submission and all its grades appear together or not at all. Manual scores are kept (like
    nbgrader's ``SaveAutoGrades``, a cell with a manual score is flagged for review)."""
    db = gb.db
    try:
        with db.no_autoflush:  # nothing reaches the database before the single commit below
            _fill(gb, db, lesson, student, graded)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _fill(gb, db, lesson, student, graded):
    person = db.get(Student, student)
    if person is None:
        person = Student(id=student)
        db.add(person)
    try:
        submission = gb.find_submission(lesson, student)
    except MissingEntry:
        submission = SubmittedAssignment(assignment=gb.find_assignment(lesson), student=person)
        db.add(submission)
    if graded.get("timestamp"):
        submission.timestamp = parse_utc(graded["timestamp"])
    existing = {nb.notebook.name: nb for nb in submission.notebooks}
    for notebook in submission.assignment.notebooks:
        submitted = existing.get(notebook.name)
        if submitted is None:
            submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
            db.add(submitted)
        data = graded["notebooks"].get(notebook.name, {"grades": {}, "comments": {}, "late_penalty": None})
        grades = {g.cell.name: g for g in submitted.grades}
        for cell in [*notebook.grade_cells, *notebook.task_cells]:
            grade = grades.get(cell.name)
            if grade is None:
                grade = Grade(cell=cell, notebook=submitted)
                db.add(grade)
            grade.auto_score = data["grades"].get(cell.name, 0.0)
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        comments = {c.cell.name: c for c in submitted.comments}
        for cell in [*notebook.solution_cells, *notebook.task_cells]:
            comment = comments.get(cell.name)
            if comment is None:
                comment = Comment(cell=cell, notebook=submitted)
                db.add(comment)
            comment.auto_comment = data["comments"].get(cell.name)
        submitted.late_submission_penalty = data.get("late_penalty")


def is_recorded(gb, lesson, student):
    """True when the gradebook has the submission with an automatic score for every graded cell."""
    try:
        submission = gb.find_submission(lesson, student)
    except MissingEntry:
        return False
    grades = [g for nb in submission.notebooks for g in nb.grades]
    expected = sum(len(nb.grade_cells) + len(nb.task_cells) for nb in submission.assignment.notebooks)
    return len(grades) == expected and all(g.auto_score is not None for g in grades)


def scores(db_url, lesson):
    """{student: {grade_id: (score, max_score)}} for ``lesson``."""
    with opened(db_url) as gb:
        return {
            s.student.id: {g.name: (g.score, g.max_score) for nb in s.notebooks for g in nb.grades}
            for s in gb.find_assignment(lesson).submissions
        }
