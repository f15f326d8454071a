"""The large-class parts of the toolkit without grading runs: the shard split, each shard's own lock and files,
the class summary across shards, the progress display, and the Canvas and Moodle files (from small sample
files made here)."""

import csv
import io
import random
from pathlib import Path

import pytest

from grading.toolkit.__main__ import main
from grading.toolkit.autograde import SUMMARY_FIELDS, find_submissions, single_run, write_summary
from grading.toolkit.lms import merge_canvas, moodle_rows, new_canvas, read_canvas
from grading.toolkit.progress import Progress
from grading.toolkit.settings import Course
from grading.toolkit.shard import Shard, ShardCourse, class_summary, for_shard, in_shard, shard_of

PG = "postgresql://grader@db.example.edu/gru_course"


# --- the split ---------------------------------------------------------------------------------------------------

def test_a_shard_is_written_i_of_n_and_anything_else_is_refused_with_the_form_expected():
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1/1 ")) == "1/1"
    for bad in ["2", "0/2", "3/2", "1/0", "a/b", "1/2/3", "-1/2", ""]:
        with pytest.raises(ValueError, match=r"not a shard: .*i/N"):
            Shard.parse(bad)


def test_each_student_is_in_exactly_one_shard_and_the_shards_are_balanced():
    rng = random.Random(0)
    ids = [f"student{rng.randrange(10**9)}@uni.edu" for _ in range(400)]
    for n in (1, 2, 3, 4, 7):
        owners = {s: [i for i in range(1, n + 1) if Shard(i, n).has(s)] for s in ids}
        assert all(len(found) == 1 for found in owners.values()), n
        sizes = [sum(found == [i] for found in owners.values()) for i in range(1, n + 1)]
        assert min(sizes) > 0.6 * len(ids) / n, (n, sizes)


def test_the_split_depends_on_the_id_alone():
    # Fixed values: a change of the hash would move students between shards of a class already being graded.
    assert [shard_of(s, 2) for s in ("solution", "syntax-error", "not-json", "ada", "dee")] == [2, 1, 2, 1, 2]
    assert [shard_of(s, 5) for s in ("ada", "ben", "cai")] == [shard_of(s, 5) for s in ("ada", "ben", "cai")]


def make_class(root, students, lesson="00-orientation"):
    (root / "solutions" / lesson).mkdir(parents=True)
    for student in students:
        (root / "grading" / "submitted" / student / lesson).mkdir(parents=True)


def test_a_shard_grades_the_same_students_whatever_order_the_folders_were_made_in(tmp_path):
    students = [f"s{i:02d}" for i in range(30)]
    chosen = []
    for name, order in (("a", students), ("b", list(reversed(students))), ("c", random.Random(3).sample(students, 30))):
        make_class(tmp_path / name, order)
        course = for_shard(Course(tmp_path / name, PG), "2/3")
        found, _ = find_submissions(course)
        chosen.append({s for s, _, _ in found if in_shard(course, s)})
    assert chosen[0] == chosen[1] == chosen[2] == {s for s in students if shard_of(s, 3) == 2}


def test_shards_need_a_server_gradebook():
    with pytest.raises(ValueError, match="--shard needs a server gradebook.*postgresql://"):
        for_shard(Course(Path("/x"), "sqlite:////x/grading/gradebook.db"), "1/2")


def test_the_command_line_refuses_a_bad_shard_with_the_reason(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DB_URL", PG)
    with pytest.raises(SystemExit) as stop:
        main(["autograde", "--shard", "3/2"])
    assert stop.value.code == 2 and "not a shard: '3/2'" in capsys.readouterr().err
    monkeypatch.setenv("COURSE_DB_URL", "sqlite:////tmp/none.db")
    with pytest.raises(SystemExit):
        main(["autograde", "--shard", "1/2"])
    assert "--shard needs a server gradebook" in capsys.readouterr().err


# --- each shard's own lock, scratch and summary; the class summary ------------------------------------------------

def test_two_shards_of_one_course_folder_run_side_by_side_but_not_twice(tmp_path):
    (tmp_path / "grading").mkdir()
    one, two = (ShardCourse(tmp_path, PG, Shard(i, 2)) for i in (1, 2))
    assert len({one.work, two.work, Course(tmp_path, PG).work}) == 3
    assert len({one.summary_csv, two.summary_csv, Course(tmp_path, PG).summary_csv}) == 3
    with single_run(one), single_run(two), single_run(Course(tmp_path, PG)):
        with pytest.raises(SystemExit, match="another autograde of this course is running"):
            with single_run(ShardCourse(tmp_path, PG, Shard(1, 2))):
                pass


def row(student, score, graded_at, status="graded"):
    return {"student": student, "lesson": "00-orientation", "score": score, "max_score": "7", "status": status,
            "reason": "", "seconds": "1.0", "graded_at": graded_at, "fingerprint": "f"}


def test_feedback_and_export_read_every_shards_summary_and_the_latest_row_wins(tmp_path):
    course = Course(tmp_path, PG)
    (tmp_path / "grading").mkdir()
    write_summary(course.summary_csv, {("ada", "00-orientation"): row("ada", "3", "2026-01-01T10:00:00+00:00"),
                                       ("bo", "00-orientation"): row("bo", "2", "2026-01-01T10:00:00+00:00")})
    write_summary(ShardCourse(tmp_path, PG, Shard(1, 2)).summary_csv,
                  {("ada", "00-orientation"): row("ada", "7", "2026-01-02T10:00:00+00:00")})
    write_summary(ShardCourse(tmp_path, PG, Shard(2, 2)).summary_csv,
                  {("cy", "00-orientation"): row("cy", "0", "2026-01-02T10:00:00+00:00", "not-gradable")})
    merged = class_summary(course)
    assert {s: r["score"] for (s, _), r in merged.items()} == {"ada": "7", "bo": "2", "cy": "0"}
    assert list(merged[("cy", "00-orientation")]) == SUMMARY_FIELDS


# --- progress -----------------------------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self):
        return True


ROWS = [dict(row("ada", "7", ""), reason=""), dict(row("bo", "4", ""), reason="failed checks: ex0_1_hidden")]


@pytest.mark.parametrize("out, stream", [(print, io.StringIO()), ("list", Terminal())],
                         ids=["stderr-not-a-terminal", "output-captured"])
def test_progress_is_a_line_per_submission_when_nobody_watches(capsys, out, stream):
    lines = []
    progress = Progress(2, lines.append if out == "list" else out, stream=stream)
    for r in ROWS:
        progress.update(r)
    progress.close()
    shown = lines or capsys.readouterr().out.splitlines()
    assert shown == ["[1/2] ada 00-orientation: 7/7 graded (1.0 s)",
                     "[2/2] bo 00-orientation: 4/7 graded (1.0 s) - failed checks: ex0_1_hidden"]
    assert stream.getvalue() == ""


def test_progress_is_a_bar_with_count_eta_and_problems_on_a_terminal():
    lines, stream = [], Terminal()
    progress = Progress(2, lines.append, stream=stream, bar=True)
    for r in ROWS:
        progress.update(r)
    progress.close()
    screen = stream.getvalue()
    assert lines == []  # on the terminal only
    assert "autograde:  50%" in screen and "1/2 [00:00<00:00" in screen and "problems: 0" in screen
    assert "2/2" in screen and "problems: 1" in screen
    assert "[2/2] bo 00-orientation: 4/7 graded (1.0 s) - failed checks: ex0_1_hidden\n" in screen
    assert "[1/2] ada" not in screen  # a clean submission is counted, not printed


# --- Canvas and Moodle ----------------------------------------------------------------------------------------------

LESSONS = {"00-orientation": 7.0, "01-gru-math": 10.0}
SCORES = {"ada": {"00-orientation": 7.0, "01-gru-math": 8.5}, "bo": {"00-orientation": 3.0},
          "zed": {"01-gru-math": 10.0}}


def write_csv(path, rows, bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def test_canvas_export_is_filled_one_column_per_lesson_and_unknown_students_are_kept(tmp_path):
    path = write_csv(tmp_path / "canvas.csv", [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "00-orientation (5512)", "Current Score"],
        ["    Points Possible", "", "", "", "", "7", "(read only)"],
        ["Lovelace, Ada", "11", "u-11", "ada", "A", "", "80"],
        ["Bo, Bo", "12", "bo", "", "A", "2", "50"],  # matched on SIS User ID
        ["Student, Test", "13", "", "", "A", "5", "0"],  # Canvas's test student: no submission, kept as it was
    ], bom=True)
    header, rows = read_canvas(path)
    header, rows, unknown = merge_canvas(header, rows, LESSONS, SCORES)
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "00-orientation (5512)",
                      "Current Score", "01-gru-math"]
    assert rows[0] == ["    Points Possible", "", "", "", "", "7", "(read only)", "10"]
    assert rows[1] == ["Lovelace, Ada", "11", "u-11", "ada", "A", "7", "80", "8.5"]
    assert rows[2] == ["Bo, Bo", "12", "bo", "", "A", "3", "50", ""]
    assert rows[3] == ["Student, Test", "13", "", "", "A", "5", "0", ""]
    assert unknown == ["zed"] and rows[4] == ["zed", "", "", "zed", "", "", "", "10"]


def test_a_file_that_is_not_a_canvas_export_is_refused_with_what_was_expected(tmp_path):
    path = write_csv(tmp_path / "other.csv", [["name", "grade"], ["ada", "7"]])
    with pytest.raises(ValueError, match="not a Canvas gradebook export.*SIS Login ID.*Grades > Export"):
        read_canvas(path)


def test_new_canvas_and_moodle_files_have_every_student_and_a_blank_where_nothing_was_submitted():
    header, rows = new_canvas(LESSONS, SCORES)
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "00-orientation", "01-gru-math"]
    assert rows[0] == ["Points Possible", "", "", "", "", "7", "10"]
    assert rows[1:] == [["ada", "", "", "ada", "", "7", "8.5"], ["bo", "", "", "bo", "", "3", ""],
                        ["zed", "", "", "zed", "", "", "10"]]
    header, rows = moodle_rows(LESSONS, SCORES)
    assert header == ["username", "00-orientation", "01-gru-math"]
    assert rows == [["ada", "7", "8.5"], ["bo", "3", ""], ["zed", "", "10"]]
