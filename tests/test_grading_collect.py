"""``make collect``: LMS downloads (a folder, or a zip) go to grading/submitted/<student>/<lesson>/ through nbgrader's
zip_collect; every file that cannot be placed is listed with its reason (archives inside the download are never
opened: tests/test_grading_uploads.py has the hostile cases)."""

import csv
import os
import shutil
import subprocess
import sys
import zipfile

from course.lessons import NOTEBOOKS, REPO, SOLUTIONS

LESSON = "00-orientation"


def course_root(tmp_path):
    """A course root with Lesson 00 released (collect needs no gradebook)."""
    root = tmp_path / "course"
    (root / "grading").mkdir(parents=True)
    shutil.copytree(SOLUTIONS / LESSON, root / "solutions" / LESSON)
    shutil.copytree(NOTEBOOKS / LESSON, root / "notebooks" / LESSON)
    return root


def collect(root, source):
    env = dict(os.environ, COURSE_ROOT=str(root), COURSE_DB_URL=f"sqlite:///{root / 'grading' / 'gradebook.db'}")
    return subprocess.run([sys.executable, "-m", "grading.toolkit", "collect", str(source)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_collect_places_what_follows_the_naming_rule_and_lists_the_rest(tmp_path):
    root = course_root(tmp_path)
    notebook = (NOTEBOOKS / LESSON / f"{LESSON}.ipynb").read_bytes()
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr(f"dee_{LESSON}.ipynb", notebook)
    entries = {
        f"ada_{LESSON}.ipynb": notebook,
        f"week1/jane_doe_{LESSON}.ipynb": notebook,  # the student id may contain "_"
        f"ben_{LESSON}.ipynb": b"older upload",
        f"late/ben_{LESSON}.ipynb": notebook,  # same student and lesson, later in the download: this one wins
        "cai_00-orientaton.ipynb": notebook,  # lesson misspelt
        f"{LESSON}.ipynb": notebook,  # no student
        "notes.pdf": b"%PDF",
        f"../escape_{LESSON}.ipynb": notebook,  # a path outside the folder
        "more/inner.zip": inner.read_bytes(),  # a zip in the zip: not opened
    }
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 2 if name.startswith("late/") else 1, 12, 0, 0)),
                       data)

    result = collect(root, download)
    assert result.returncode == 0, result.stdout + result.stderr
    submitted = root / "grading" / "submitted"
    placed = sorted(str(p.relative_to(submitted)) for p in submitted.rglob("*.ipynb"))
    assert placed == [f"{s}/{LESSON}/{LESSON}.ipynb" for s in ["ada", "ben", "jane_doe"]]
    assert (submitted / "ben" / LESSON / f"{LESSON}.ipynb").read_bytes() == notebook  # the newer upload
    assert not (tmp_path / f"escape_{LESSON}.ipynb").exists() and not (root / f"escape_{LESSON}.ipynb").exists()

    with open(root / "grading" / "collect-report.csv") as f:
        report = {row["file"]: row for row in csv.DictReader(f)}
    not_placed = {name.split("!", 1)[1]: row["reason"] for name, row in report.items() if not row["placed_at"]}
    assert set(not_placed) == {f"ben_{LESSON}.ipynb", "cai_00-orientaton.ipynb", f"{LESSON}.ipynb", "notes.pdf",
                               f"../escape_{LESSON}.ipynb", "more/inner.zip"}
    assert "earlier duplicate" in not_placed[f"ben_{LESSON}.ipynb"]
    assert "archive inside the download: not opened" in not_placed["more/inner.zip"]
    assert "unknown lesson '00-orientaton'" in not_placed["cai_00-orientaton.ipynb"]
    assert "<student>_<lesson>.ipynb" in not_placed[f"{LESSON}.ipynb"]
    assert "not a notebook" in not_placed["notes.pdf"]
    assert "unsafe path" in not_placed[f"../escape_{LESSON}.ipynb"]
    assert "collected 3 notebooks from 3 students" in result.stdout
    assert "6 files were not placed" in result.stdout and "cai_00-orientaton.ipynb" in result.stdout

    # A folder works as well, and a new upload replaces the student's earlier one.
    folder = tmp_path / "again"
    folder.mkdir()
    (folder / f"ada_{LESSON}.ipynb").write_bytes(notebook.replace(b"YOUR CODE HERE", b"MY CODE HERE"))
    result = collect(root, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"MY CODE HERE" in (submitted / "ada" / LESSON / f"{LESSON}.ipynb").read_bytes()
    assert (submitted / "ben" / LESSON / f"{LESSON}.ipynb").is_file()  # other students stay

    missing = collect(root, tmp_path / "no-such-download")
    assert missing.returncode != 0 and "does not exist" in missing.stdout
