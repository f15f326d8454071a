"""``make export``: the grades for the LMS and a summary that shows where the class struggles.

- ``grading/grades.csv``: nbgrader's own export, one row per student and lesson (0 where nothing was submitted).
- ``grading/summary/``: ``scores.csv`` (score distribution per lesson), ``checks.csv`` (pass rate per check),
  ``summary.md`` (both tables) and ``summary.png`` (a histogram of scores and a bar per check, for each lesson).
  Pass rates count the submissions nbgrader graded; ones that could not be graded (no notebook, not a notebook)
  are counted separately, so a wave of broken uploads does not look like a hard exercise.
- ``grading/lms/``: the grades for Canvas and Moodle (``lms.py``).
"""

import csv
import statistics
from dataclasses import dataclass, field

from course.commands import nbgrader
from grading.toolkit.gradebook import opened
from grading.toolkit.integrity import cross_check
from grading.toolkit.lms import write_lms_files
from grading.toolkit.shard import class_summary

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


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def markdown_table(rows):
    if not rows:
        return "(nothing graded yet)\n"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


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


def review_section(course):
    """Every difference between the gradebook and the autograde summary."""
    summary = class_summary(course)  # every shard's summary file
    rows = [{"student": s, "lesson": lesson, "score": "", "reason": f"gradebook and summary differ: {what}"}
             for s, lesson, what in cross_check(course, summary)]
    if not rows:
        return "\n## To review\n\nnothing: the gradebook matches the autograde summary\n"
    return "\n## To review (" + str(len(rows)) + ")\n\n" + markdown_table(rows)


def export(course, out=print, canvas=None):
    grades = course.grading / "grades.csv"
    nbgrader(["export", "--to", str(grades)], course.root, course.db_url)
    folder = course.grading / "summary"
    folder.mkdir(parents=True, exist_ok=True)
    stats = collect_stats(course)
    scores, checks = score_rows(stats), check_rows(stats)
    write_csv(folder / "scores.csv", scores)
    write_csv(folder / "checks.csv", checks)
    text = ("# Class summary\n\n## Score distribution per lesson\n\n" + markdown_table(scores)
            + "\n## Pass rate per check (full marks, among graded submissions)\n\n" + markdown_table(checks)
            + review_section(course) + "\n![scores and pass rates](summary.png)\n")
    (folder / "summary.md").write_text(text)
    plot(stats, folder / "summary.png")
    with open(grades) as f:
        rows = sum(1 for _ in f) - 1
    out(text.replace("\n![scores and pass rates](summary.png)\n", ""))
    out(f"grades: {grades.relative_to(course.root)} ({rows} rows: one per student and lesson)")
    out(f"summary: {folder.relative_to(course.root)}/summary.md, scores.csv, checks.csv, summary.png")
    return write_lms_files(course, canvas, out)
