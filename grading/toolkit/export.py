"""``make export``: the grades for the LMS and a summary that shows where the class struggles.

- ``grading/grades.csv``: one row per student and lesson (0 where nothing was submitted), in the columns of
  nbgrader's own export but written with the ``csv`` module and ``safetext.csv_cell`` (nbgrader's joins values
  with commas: a comma or a formula in an id or a name would shift or run cells). Students whose id breaks the id
  rule (``ids.py``) are left out and listed. The file is then read back and compared with the gradebook.
- ``grading/summary/``: ``scores.csv`` (score distribution per lesson), ``checks.csv`` (pass rate per check),
  ``summary.md`` (both tables) and ``summary.png`` (a histogram of scores and a bar per check, for each lesson).
  Pass rates count the submissions nbgrader graded; ones that could not be graded (no notebook, not a notebook)
  are counted separately, so a wave of broken uploads does not look like a hard exercise.
- ``grading/lms/``: the grades for Canvas and Moodle (``lms.py``).
- ``summary.md`` lists what needs a look: submissions not graded normally (not gradable, errors, output cut),
  students refused for their id, and every difference between the gradebook, the autograde
  summary and the written ``grades.csv``. Quoted text is escaped (``safetext.markdown_cell``).
"""

import csv
import statistics
from dataclasses import dataclass, field

from grading.toolkit.gradebook import opened
from grading.toolkit.ids import id_problem
from grading.toolkit.lms import write_lms_files
from grading.toolkit.safetext import clean, markdown_cell, write_csv
from grading.toolkit.shard import class_summary

GRADES_FIELDS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
                 "late_submission_penalty", "score", "max_score"]
NEEDS_A_LOOK = ("not-gradable", "error")

BINS = [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100), (100, 101)]


def bin_label(low, high):
    return "100%" if low == 100 else f"{low}-{high - 1}%"


@dataclass
class LessonStats:
    lesson: str
    max_score: float
    scores: list = field(default_factory=list)  # graded submissions
    not_gradable: int = 0
    checks: dict = field(default_factory=dict)  # grade id -> [points, submissions, full marks]


def collect_stats(course):
    summary = class_summary(course)  # every shard's summary file
    stats = []
    with opened(course.db_url) as gb:
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            if not assignment.notebooks:
                continue
            lesson = LessonStats(assignment.name, assignment.max_score)
            for nb in assignment.notebooks:
                for cell in [*nb.grade_cells, *nb.task_cells]:
                    lesson.checks[cell.name] = [cell.max_score, 0, 0]
            for submission in assignment.submissions:
                row = summary.get((submission.student.id, assignment.name))
                if row and row["status"] != "graded":
                    lesson.not_gradable += 1
                    continue
                lesson.scores.append(submission.score)
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        check = lesson.checks[grade.name]
                        check[1] += 1
                        check[2] += grade.score is not None and grade.score >= grade.max_score
            stats.append(lesson)
    return stats


def score_rows(stats):
    rows = []
    for s in stats:
        percents = [100 * x / s.max_score if s.max_score else 0 for x in s.scores]
        row = {"lesson": s.lesson, "max_score": f"{s.max_score:g}", "graded": len(s.scores),
               "not_gradable": s.not_gradable,
               "mean": f"{statistics.mean(s.scores):.2f}" if s.scores else "",
               "median": f"{statistics.median(s.scores):g}" if s.scores else "",
               "min": f"{min(s.scores):g}" if s.scores else "", "max": f"{max(s.scores):g}" if s.scores else ""}
        for low, high in BINS:
            row[bin_label(low, high)] = sum(low <= p < high for p in percents)
        rows.append(row)
    return rows


def check_rows(stats):
    return [{"lesson": s.lesson, "check": name, "points": f"{points:g}", "submissions": n, "full_marks": full,
             "pass_rate": f"{full / n:.0%}" if n else ""}
            for s in stats for name, (points, n, full) in s.checks.items()]


def write_rows(path, rows):
    write_csv(path, list(rows[0]) if rows else [], rows)


def markdown_table(rows):
    if not rows:
        return "(nothing graded yet)\n"
    head = list(rows[0])
    lines = ["| " + " | ".join(markdown_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(markdown_cell(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# --- grades.csv, and what to check in it ----------------------------------------------------------------------------

def grade_rows(gb):
    """nbgrader's export rows (``nbgrader export``'s values, as text), and the students left out for their id."""
    rows, refused = [], []
    students = sorted(gb.students, key=lambda s: s.id)
    for student in students:
        if id_problem(student.id):
            refused.append(student.id)
    for assignment in sorted(gb.assignments, key=lambda a: a.name):
        submissions = {s.student.id: s for s in assignment.submissions}
        for student in students:
            if id_problem(student.id):
                continue
            row = {"assignment": assignment.name, "duedate": assignment.duedate, "student_id": student.id,
                   "last_name": student.last_name, "first_name": student.first_name, "email": student.email,
                   "max_score": assignment.max_score, "timestamp": "", "raw_score": 0.0,
                   "late_submission_penalty": 0.0, "score": 0.0}
            submission = submissions.get(student.id)
            if submission is not None:
                penalty = submission.late_submission_penalty
                row.update(timestamp=submission.timestamp, raw_score=submission.score, late_submission_penalty=penalty,
                           score=max(0.0, submission.score - penalty))
            rows.append({k: "" if v is None else str(v) for k, v in row.items()})
    return rows, refused


def write_grades(course, path):
    """``grades.csv`` from the gradebook; returns the ids left out."""
    with opened(course.db_url) as gb:
        rows, refused = grade_rows(gb)
    write_csv(path, GRADES_FIELDS, rows)
    return refused


def check_written_grades(course, path):
    """Differences between ``grades.csv`` as a spreadsheet would read it back and the gradebook:
    [(student, lesson, what)]."""
    with open(path, newline="", encoding="utf-8") as f:
        written = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(f)}
    problems, expected = [], {}
    with opened(course.db_url) as gb:
        for assignment in gb.assignments:
            for student in gb.students:
                if not id_problem(student.id):
                    expected[(student.id, assignment.name)] = 0.0
            for submission in assignment.submissions:
                if not id_problem(submission.student.id):
                    penalty = submission.late_submission_penalty or 0.0
                    expected[(submission.student.id, assignment.name)] = max(0.0, submission.score - penalty)
    for key, score in sorted(expected.items()):
        row = written.get(key)
        try:
            if row is None or abs(float(row["score"]) - score) > 1e-9:
                says = row["score"] if row else "nothing"
                problems.append((*key, f"grades.csv says {says}, the gradebook {score:g}"))
        except (TypeError, ValueError):
            problems.append((*key, f"grades.csv has no number in its score column ({row['score']!r})"))
    problems += [(*key, "in grades.csv but not in the gradebook") for key in sorted(set(written) - set(expected))]
    return problems


def cross_check(course, summary):
    """Differences between the gradebook and the autograde summary: [(student, lesson, what)]."""
    problems, seen = [], set()
    with opened(course.db_url) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                key = (submission.student.id, assignment.name)
                seen.add(key)
                row = summary.get(key)
                if row is None:
                    problems.append((*key, f"in the gradebook ({submission.score:g}) but not in the autograde "
                                           f"summary: graded outside the toolkit"))
                elif abs(float(row["score"]) - submission.score) > 1e-9:
                    manual = any(g.manual_score is not None for nb in submission.notebooks for g in nb.grades)
                    why = "a manual grade" if manual else "the gradebook was changed after grading"
                    problems.append((*key, f"gradebook {submission.score:g} vs summary {row['score']} ({why})"))
    for key, row in summary.items():
        if key not in seen:
            problems.append((*key, f"in the autograde summary ({row['score']}) but not in the gradebook"))
    return sorted(problems)


def plot(stats, path):
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    lessons = [s for s in stats if s.scores or s.not_gradable]
    fig, axes = plt.subplots(max(1, len(lessons)), 2, figsize=(11, 2.8 * max(1, len(lessons))), squeeze=False)
    for (histogram, bars), s in zip(axes, lessons, strict=False):  # no lessons: one empty row
        edges = [x - 0.5 for x in range(int(s.max_score) + 2)]
        histogram.hist(s.scores, bins=edges, color="#4C72B0", edgecolor="white")
        histogram.set(title=f"{s.lesson}: scores ({len(s.scores)} graded, {s.not_gradable} not gradable)",
                      xlabel=f"score (out of {s.max_score:g})", ylabel="students")
        histogram.yaxis.set_major_locator(MaxNLocator(integer=True))
        names = list(s.checks)
        rates = [100 * full / n if n else 0 for _, n, full in s.checks.values()]
        bars.barh(names, rates, color=["#C44E52" if r < 50 else "#55A868" for r in rates])
        bars.invert_yaxis()
        bars.set(xlim=(0, 100), title="full marks per check (%)", xlabel="% of graded submissions")
        for y, rate in enumerate(rates):
            bars.text(min(rate + 1, 88), y, f"{rate:.0f}%", va="center", fontsize=8)
    if not lessons:
        axes[0][0].text(0.5, 0.5, "nothing graded yet", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def review_section(course, refused=(), written=()):
    """What needs a look: submissions not graded normally (not gradable, errors, output cut),
    students left out for their id, and every difference between gradebook, summary and grades.csv."""
    summary = class_summary(course)  # every shard's summary file
    rows = [{"student": s, "lesson": lesson, "score": r["score"], "reason": f"{r['status']}: {r['reason']}"}
            for (s, lesson), r in sorted(summary.items())
            if r["status"] in NEEDS_A_LOOK or "output cut" in r["reason"]]
    rows += [{"student": s, "lesson": "", "score": "", "reason": f"left out of grades.csv and the LMS files: "
                                                                 f"{id_problem(s)}"} for s in refused]
    rows += [{"student": s, "lesson": lesson, "score": "", "reason": f"gradebook and summary differ: {what}"}
             for s, lesson, what in cross_check(course, summary)]
    rows += [{"student": s, "lesson": lesson, "score": "", "reason": what} for s, lesson, what in written]
    if not rows:
        return "\n## To review\n\nnothing: every submission was graded, and the gradebook matches the autograde " \
               "summary and grades.csv\n"
    return "\n## To review (" + str(len(rows)) + ")\n\n" + markdown_table(rows)


def export(course, out=print, canvas=None):
    grades = course.grading / "grades.csv"
    refused = write_grades(course, grades)
    written = check_written_grades(course, grades)
    folder = course.grading / "summary"
    folder.mkdir(parents=True, exist_ok=True)
    stats = collect_stats(course)
    scores, checks = score_rows(stats), check_rows(stats)
    write_rows(folder / "scores.csv", scores)
    write_rows(folder / "checks.csv", checks)
    text = ("# Class summary\n\n## Score distribution per lesson\n\n" + markdown_table(scores)
            + "\n## Pass rate per check (full marks, among graded submissions)\n\n" + markdown_table(checks)
            + review_section(course, refused, written) + "\n![scores and pass rates](summary.png)\n")
    (folder / "summary.md").write_text(text)
    plot(stats, folder / "summary.png")
    with open(grades, newline="", encoding="utf-8") as f:
        rows = sum(1 for _ in csv.DictReader(f))
    for student in refused:
        out(clean(f"refused {student!r} in the gradebook: {id_problem(student)}; left out of grades.csv and the "
                  f"LMS files"))
    out(text.replace("\n![scores and pass rates](summary.png)\n", ""))
    out(f"grades: {grades.relative_to(course.root)} ({rows} rows: one per student and lesson)")
    out(f"summary: {folder.relative_to(course.root)}/summary.md, scores.csv, checks.csv, summary.png")
    return write_lms_files(course, canvas, out)
