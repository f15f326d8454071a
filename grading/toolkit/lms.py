"""Grades in the forms an LMS imports, written by ``make export`` into ``grading/lms/``.

- ``canvas-grades.csv``: Canvas's gradebook CSV (*Grades > Import*). Give it the gradebook you exported from
  Canvas (``make export CANVAS=export.csv``) and each lesson's score is filled into that file: into the lesson's
  column when there is one (``00-orientation`` or Canvas's ``00-orientation (12345)``), else into a new column
  (Canvas makes a new assignment of it, with the points of the ``Points Possible`` row). Students are matched on
  Canvas's ``SIS Login ID``, ``SIS User ID``, ``ID`` or ``Login ID`` column. Everything else in the file is kept
  as it was. Students of the gradebook that the file does not have are reported and added at the end, so that
  Canvas's import lists them rather than losing them silently. Without a Canvas file, a new one is written in
  the same layout, with nbgrader's student id as the SIS Login ID.
- ``moodle-grades.csv``: for Moodle's *Grades > Import > CSV file*: a ``username`` column (map it to the user
  field that holds nbgrader's ids: username, ID number or email) and one column per lesson (map each to its
  grade item, or to a new one).

A cell is left blank where the gradebook has no submission of that lesson for that student, so an import never
overwrites a grade entered by hand in the LMS with a 0. Students whose id breaks the id rule (``ids.py``) are left
out (``make export`` lists them), and every cell is written through ``safetext.csv_cell``, so no cell of either file
runs as a formula in a spreadsheet.
"""

import csv
from pathlib import Path

from grading.toolkit.gradebook import opened
from grading.toolkit.ids import id_problem
from grading.toolkit.safetext import clean, write_csv

CANVAS_ID_COLUMNS = ["SIS Login ID", "SIS User ID", "ID", "Login ID"]
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "Points Possible"


def class_grades(db_url):
    """({lesson: max score}, {student: {lesson: score}}) for every lesson and student of the gradebook."""
    with opened(db_url) as gb:
        lessons = {a.name: a.max_score for a in sorted(gb.assignments, key=lambda a: a.name) if a.notebooks}
        scores = {s.id: {} for s in gb.students if not id_problem(s.id)}
        for lesson in lessons:
            for submission in gb.find_assignment(lesson).submissions:
                if submission.student.id in scores:
                    scores[submission.student.id][lesson] = submission.score
    return lessons, scores


def number(value):
    return f"{value:g}"


def read_canvas(path):
    """(header, rows) of a Canvas gradebook export; refuses a file without Canvas's student columns."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # Canvas writes a byte-order mark
        table = list(csv.reader(f))
    if not table or not any(column in table[0] for column in CANVAS_ID_COLUMNS):
        raise ValueError(f"{path}: not a Canvas gradebook export (expected a header with one of "
                         f"{', '.join(CANVAS_ID_COLUMNS)}; export it from Canvas: Grades > Export)")
    width = len(table[0])
    return table[0], [row + [""] * (width - len(row)) for row in table[1:]]


def is_meta_row(row):
    """Canvas's rows under the header that are not students: ``Points Possible``, ``Manual Posting``..."""
    return bool(row) and row[0].strip() in {POINTS_POSSIBLE, "Manual Posting", "Read Only"}


def lesson_column(header, lesson):
    for index, name in enumerate(header):
        if name.strip() == lesson or name.strip().startswith(f"{lesson} ("):
            return index
    return None


def merge_canvas(header, rows, lessons, scores):
    """Fill ``rows`` (a Canvas export, changed in place) with ``scores``; returns (header, rows, unknown ids)."""
    header = list(header)
    columns = {}
    for lesson, max_score in lessons.items():
        index = lesson_column(header, lesson)
        if index is None:
            header.append(lesson)
            index = len(header) - 1
            for row in rows:
                row.append(number(max_score) if row and row[0].strip() == POINTS_POSSIBLE else "")
        columns[lesson] = index
    id_columns = [header.index(c) for c in CANVAS_ID_COLUMNS if c in header]
    matched = set()
    for row in rows:
        if is_meta_row(row):
            continue
        ids = {row[i].strip() for i in id_columns if row[i].strip()}
        for student in ids & set(scores):
            matched.add(student)
            for lesson, score in scores[student].items():
                row[columns[lesson]] = number(score)
    unknown = sorted(set(scores) - matched)
    for student in unknown:
        row = [""] * len(header)
        for name in ("Student", "SIS Login ID"):
            if name in header:
                row[header.index(name)] = student
        for lesson, score in scores[student].items():
            row[columns[lesson]] = number(score)
        rows.append(row)
    return header, rows, unknown


def new_canvas(lessons, scores):
    """A Canvas gradebook CSV of the whole class, for an instructor who has no Canvas export at hand."""
    header = CANVAS_FIXED + list(lessons)
    rows = [[POINTS_POSSIBLE, "", "", "", ""] + [number(m) for m in lessons.values()]]
    for student in sorted(scores):
        rows.append([student, "", "", student, ""]
                    + [number(scores[student][lesson]) if lesson in scores[student] else "" for lesson in lessons])
    return header, rows


def moodle_rows(lessons, scores):
    header = ["username", *lessons]
    rows = [[student] + [number(scores[student][lesson]) if lesson in scores[student] else "" for lesson in lessons]
            for student in sorted(scores)]
    return header, rows


def write_table(path, header, rows):
    write_csv(path, header, rows)


def write_lms_files(course, canvas=None, out=print):
    """``grading/lms/canvas-grades.csv`` and ``moodle-grades.csv``; returns the exit code (2: bad Canvas file)."""
    folder = course.grading / "lms"
    lessons, scores = class_grades(course.db_url)
    scores = {s: v for s, v in scores.items() if v}  # students with at least one submission
    if canvas:
        try:
            header, rows = read_canvas(Path(canvas))
        except (OSError, ValueError) as error:
            out(f"error: {error}")
            return 2
        header, rows, unknown = merge_canvas(header, rows, lessons, scores)
        students = sum(not is_meta_row(r) for r in rows) - len(unknown)
        out(f"canvas: {folder.relative_to(course.root)}/canvas-grades.csv: {canvas} with {len(lessons)} lesson "
            f"columns filled for {len(scores) - len(unknown)} of its {students} students")
        if unknown:
            out(clean(f"canvas: {len(unknown)} graded students are not in {canvas}; added at the end of the file, "
                      f"where Canvas's import will list them (check their ids): {', '.join(unknown)}"))
    else:
        header, rows = new_canvas(lessons, scores)
        out(f"canvas: {folder.relative_to(course.root)}/canvas-grades.csv: a new gradebook file "
            f"({len(scores)} students, ids as SIS Login ID); CANVAS=<export.csv> fills in Canvas's own export")
    write_table(folder / "canvas-grades.csv", header, rows)
    write_table(folder / "moodle-grades.csv", *moodle_rows(lessons, scores))
    out(f"moodle: {folder.relative_to(course.root)}/moodle-grades.csv ({len(scores)} students, "
        f"{len(lessons)} lessons; map 'username' to the user field of nbgrader's ids)")
    return 0
