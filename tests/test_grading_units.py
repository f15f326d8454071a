"""The grading toolkit's small parts, without nbgrader runs: memory sizes, the memory-cap launcher, which file gets
graded, feedback redaction, recording grades into the gradebook (idempotent, manual scores kept), the template
gradebook the workers grade into, and the order jobs run in."""

import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from grading.toolkit.autograde import longest_first
from grading.toolkit.diagnose import assemble, find_notebook
from grading.toolkit.gradebook import opened, record, sqlite_url, write_template
from grading.toolkit.preprocessors import MEMCAP, RedactHiddenTests
from grading.toolkit.settings import parse_bytes
from grading.toolkit.worker import Job


@pytest.mark.parametrize("text, expected", [("4G", 4 * 2**30), ("4GiB", 4 * 2**30), ("512M", 512 * 2**20),
                                            ("1.5g", 3 * 2**29), ("1073741824", 2**30), ("0", 0), ("none", 0)])
def test_memory_sizes(text, expected):
    assert parse_bytes(text) == expected


def test_a_bad_memory_size_is_refused():
    with pytest.raises(ValueError, match="not a memory size"):
        parse_bytes("four gigs")


ALLOCATE = """
import sys
try:
    block = bytearray(int(sys.argv[1]))
    print("allocated")
except MemoryError:
    print("MemoryError")
"""


def run_capped(limit, size):
    command = [sys.executable, str(MEMCAP), str(limit), "--", sys.executable, "-c", ALLOCATE, str(size)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA is enforced on Linux")
def test_the_memory_cap_stops_a_large_allocation_and_allows_a_small_one():
    assert run_capped(512 * 2**20, 1024 * 2**20) == "MemoryError"
    assert run_capped(512 * 2**20, 64 * 2**20) == "allocated"
    assert run_capped(0, 1024 * 2**20) == "allocated"  # 0: no cap


def test_which_notebook_is_graded(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    assert find_notebook(folder, "00-x") == (None, "no notebook: expected 00-x.ipynb, the folder is empty")
    (folder / "notes.txt").write_text("hi")
    assert "found only notes.txt" in find_notebook(folder, "00-x")[1]
    (folder / "00-x (2).ipynb").write_text("{}")
    path, note = find_notebook(folder, "00-x")
    assert path.name == "00-x (2).ipynb" and "misnamed" in note
    (folder / "Untitled.ipynb").write_text("{}")
    assert find_notebook(folder, "00-x")[0].name == "00-x (2).ipynb"  # the one with the lesson's name
    (folder / "other.ipynb").write_text("{}")
    (folder / "00-x (3).ipynb").write_text("{}")
    path, note = find_notebook(folder, "00-x")
    assert path is None and "cannot tell which" in note
    (folder / "00-x.ipynb").write_text("{}")
    assert find_notebook(folder, "00-x") == (folder / "00-x.ipynb", None)


def locked(grade_id, source):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1,
                                 "solution": False, "schema_version": 3}
    return cell


def answer(grade_id, source):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": True, "grade": False, "locked": False,
                                 "schema_version": 3}
    return cell


def test_only_answer_cells_come_from_a_submission():
    released = new_notebook(cells=[new_code_cell("setup()"), answer("ans", "raise NotImplementedError()"),
                                   locked("a", "check(1)"), answer("other", "raise NotImplementedError()")])
    relabelled = answer("ans", "def f(): return 1")
    relabelled.metadata["nbgrader"].update(locked=True, grade=True, points=5)  # dressed as a check cell
    submitted = new_notebook(cells=[new_code_cell("steal()"), relabelled, locked("a", "pass"),
                                    new_code_cell("added()")])
    graded, notes = assemble(submitted, released)
    assert [c.source for c in graded.cells] == ["setup()", "def f(): return 1", "check(1)",
                                                 "raise NotImplementedError()"]
    assert [c.metadata for c in graded.cells] == [c.metadata for c in released.cells]
    assert notes == ["answer cells missing from the submission (graded as not answered): other",
                     "cells outside the answer cells are not run when graded (only answer cells are)"]


def test_feedback_redaction_keeps_the_message_and_the_students_frames_only():
    cell = locked("ex_hidden", "# what it checks\n### BEGIN HIDDEN TESTS\nsecret_reference = 42\n"
                               "check(answer() == secret_reference, 'answer(): expected 42')\n### END HIDDEN TESTS")
    cell.execution_count = 7
    cell.outputs = [new_output("error", ename="CheckFailed", evalue="answer(): expected 42, got 41", traceback=[
        "\x1b[31m----\x1b[39m\n\x1b[31mCheckFailed\x1b[39m   Traceback (most recent call last)",
        "Cell \x1b[32mIn[7]\x1b[39m, line 3\n----> 3 check(answer() == secret_reference, 'answer(): expected 42')",
        "Cell In[3], line 2, in answer()\n----> 2     return 41",
        "CheckFailed: answer(): expected 42, got 41"])]
    nb = new_notebook(cells=[cell])
    RedactHiddenTests().preprocess(nb, {})
    assert nb.cells[0].source.strip() == "# what it checks"
    traceback = nb.cells[0].outputs[0].traceback
    assert not any("secret_reference" in entry or "In[7]" in entry for entry in traceback)
    assert any("In[3]" in entry for entry in traceback)  # the student's own function
    assert traceback[-1] == "CheckFailed: answer(): expected 42, got 41"


@pytest.fixture
def gradebook_url(tmp_path):
    url = sqlite_url(tmp_path / "gradebook.db")
    with opened(url) as gb:
        gb.update_or_create_assignment("00-x")
        gb.update_or_create_notebook("00-x", "00-x")
        for name in ["check_a", "check_b"]:
            gb.update_or_create_grade_cell(name, "00-x", "00-x", max_score=2, cell_type="code")
        gb.update_or_create_solution_cell("answer", "00-x", "00-x")
    return url


def graded(a, b):
    return {"timestamp": None, "notebooks": {"00-x": {"grades": {"check_a": a, "check_b": b},
                                                      "comments": {"answer": None}, "late_penalty": None}}}


def test_recording_twice_updates_in_place_and_keeps_manual_scores(gradebook_url):
    with opened(gradebook_url) as gb:
        record(gb, "00-x", "ada", graded(2.0, 0.0))
        assert gb.find_submission("00-x", "ada").score == 2
        grade = gb.find_grade("check_b", "00-x", "00-x", "ada")
        grade.manual_score = 1.0  # an instructor's override
        gb.db.commit()
        record(gb, "00-x", "ada", graded(2.0, 2.0))
        assert gb.find_grade("check_b", "00-x", "00-x", "ada").needs_manual_grade  # flagged for review
        assert gb.find_submission("00-x", "ada").score == 3  # the manual score wins, as in nbgrader
        assert len(gb.students) == 1 and len(gb.find_submission("00-x", "ada").notebooks[0].grades) == 2


def test_a_failed_record_leaves_nothing_half_written(gradebook_url):
    with opened(gradebook_url) as gb:
        with pytest.raises(ValueError):  # a bad timestamp, found after the student and submission were made
            record(gb, "00-x", "ben", {"timestamp": "not a time", "notebooks": {}})
        assert [s.id for s in gb.students] == []
        assert gb.find_assignment("00-x").submissions == []


def test_the_template_gradebook_has_the_lessons_and_schema_version_without_running_alembic(gradebook_url, tmp_path,
                                                                                          monkeypatch):
    import nbgrader.api
    from sqlalchemy import text

    def alembic_run(*args, **kwargs):
        raise AssertionError("the template was stamped by running alembic")

    template = tmp_path / "template.db"
    with opened(gradebook_url) as gb:
        version = gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    monkeypatch.setattr(nbgrader.api, "get_alembic_version", alembic_run)
    write_template(gradebook_url, ["00-x"], template)
    with opened(sqlite_url(template)) as copy:
        assert copy.db.execute(text("SELECT version_num FROM alembic_version")).scalar() == version
        notebook = copy.find_notebook("00-x", "00-x")
        assert sorted(cell.name for cell in notebook.grade_cells) == ["check_a", "check_b"]
        assert [cell.name for cell in notebook.solution_cells] == ["answer"]
        assert copy.students == []


def test_jobs_run_longest_first_lessons_with_more_code_then_larger_submissions(tmp_path):
    def lesson(name, code_cells):
        path = tmp_path / "release" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(new_notebook(cells=[new_code_cell("1") for _ in range(code_cells)]), str(path))
        return str(path)

    def job(student, name, release, size):
        folder = tmp_path / "submitted" / student / name
        folder.mkdir(parents=True)
        (folder / f"{name}.ipynb").write_bytes(b"x" * size)
        return Job(student=student, lesson=name, folder=str(folder), solutions="", release=release, template_db="",
                   scratch="", cell_timeout=1, kernel_memory=0)

    short, long = lesson("00-short", 3), lesson("01-long", 30)
    jobs = [job("ada", "00-short", short, 900), job("ada", "01-long", long, 20), job("bob", "01-long", long, 800),
            job("bob", "00-short", short, 50)]
    assert [(j.student, j.lesson) for j in longest_first(jobs)] == [
        ("bob", "01-long"), ("ada", "01-long"), ("ada", "00-short"), ("bob", "00-short")]
