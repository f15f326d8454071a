"""``make collect FROM=<folder or .zip>``: put submissions downloaded from an LMS where nbgrader expects them,
``grading/submitted/<student>/<lesson>/<lesson>.ipynb``.

File-naming rule: each notebook is named ``<student>_<lesson>.ipynb``, e.g. ``alice_00-orientation.ipynb`` or
``jane.doe@uni.edu_01-gru-math.ipynb``: the student id is everything before the last ``_`` (letters, digits and
``_ . @ + -``), the lesson is a lesson folder name. Files may sit in sub-folders and in zips (zips in zips too).
An LMS that names files differently: set ``COURSE_COLLECT_REGEXP`` to a regular expression with the named
groups ``student`` and ``lesson``, matched against the file name.

The files are sorted by lesson into ``grading/downloaded/<lesson>/archive/`` and placed by nbgrader's
``zip_collect`` (which replaces a student's earlier submission of that lesson). Every file that is not placed is
listed with the reason (on screen and in ``grading/collect-report.csv``): wrong name, unknown lesson, not a
notebook, an older duplicate, an unsafe path in a zip.
"""

import csv
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from course.commands import nbgrader
from course.lessons import lesson_names

NAMING = re.compile(r"^(?P<student>[\w.@+-]+)_(?P<lesson>\d\d-[a-z0-9-]+)\.ipynb$")
MAX_ZIP_DEPTH = 3


@dataclass
class Found:
    path: Path  # where it is now (in the source folder or the unpacked zip)
    shown: str  # where it was in what the instructor gave, for the report
    mtime: float
    student: str = ""
    lesson: str = ""
    placed: str = ""
    reason: str = ""


def naming_rule():
    custom = os.environ.get("COURSE_COLLECT_REGEXP")
    return re.compile(custom) if custom else NAMING


def unpack(source, into, shown="", depth=0, skipped=None):
    """Every file in ``source`` (a folder or a zip), zips unpacked recursively: ([Found], [Found skipped])."""
    skipped = [] if skipped is None else skipped
    source = Path(source)
    found = []
    if source.is_file() and zipfile.is_zipfile(source):
        target = Path(tempfile.mkdtemp(prefix="zip-", dir=into))
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = Path(info.filename)
                if info.is_dir() or "__MACOSX" in name.parts:
                    continue
                where = f"{shown or source.name}!{info.filename}"
                if name.is_absolute() or ".." in name.parts:  # a path that would escape the folder ("zip slip")
                    skipped.append(Found(Path(info.filename), where, 0, reason="unsafe path in the zip: not read"))
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link stored in the zip
                    skipped.append(Found(Path(info.filename), where, 0, reason="a link: not followed"))
                    continue
                archive.extract(info, target)
                path = target / name
                mtime = datetime(*info.date_time).timestamp()
                os.utime(path, (mtime, mtime))
                found += expand(path, where, mtime, into, depth, skipped)
        return found, skipped
    for path in sorted(source.rglob("*")):  # rglob does not enter linked folders
        if path.is_symlink():
            skipped.append(Found(path, str(path.relative_to(source)), 0, reason="a link: not followed"))
        elif path.is_file():
            found += expand(path, str(path.relative_to(source)), path.stat().st_mtime, into, depth, skipped)
    return found, skipped


def expand(path, shown, mtime, into, depth, skipped):
    if path.suffix.lower() == ".zip":
        if depth >= MAX_ZIP_DEPTH:
            skipped.append(Found(path, shown, mtime, reason=f"zip nested more than {MAX_ZIP_DEPTH} deep: not read"))
            return []
        return unpack(path, into, shown, depth + 1, skipped)[0]
    return [Found(path, shown, mtime)]


def classify(files, lessons, rule):
    """Give each file its student and lesson, or the reason it has none; of duplicates keep the newest."""
    chosen = {}
    for f in files:
        match = rule.match(f.path.name)
        if f.path.name.startswith(".") or ".ipynb_checkpoints" in f.path.parts:
            f.reason = "hidden or checkpoint file"
        elif f.path.suffix != ".ipynb":
            f.reason = "not a notebook (.ipynb)"
        elif not match:
            f.reason = "name does not follow <student>_<lesson>.ipynb"
        elif match.group("lesson") not in lessons:
            f.reason = f"unknown lesson '{match.group('lesson')}' (lessons: {', '.join(lessons)})"
        else:
            f.student, f.lesson = match.group("student"), match.group("lesson")
            key = (f.student, f.lesson)
            if key in chosen:
                older, newer = sorted([chosen[key], f], key=lambda x: x.mtime)
                older.reason = f"older duplicate of {newer.shown}"
                chosen[key] = newer
            else:
                chosen[key] = f
    return chosen


def collect(course, source, out=print):
    source = Path(source).expanduser().resolve()
    if not source.exists():
        out(f"error: {source} does not exist (give FROM=<folder or .zip>)")
        return 2
    lessons = lesson_names(course.release)
    downloaded = course.grading / "downloaded"
    downloaded.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unpack-", dir=downloaded) as scratch:
        files, skipped = unpack(source, Path(scratch))
        chosen = classify(files, lessons, naming_rule())
        for lesson in sorted({lesson for _, lesson in chosen}):
            place(course, lesson, [f for (_, of), f in chosen.items() if of == lesson])
    everything = files + skipped
    write_report(course.grading / "collect-report.csv", everything)
    placed = [f for f in everything if f.placed]
    unplaced = [f for f in everything if not f.placed]
    students = {f.student for f in placed}
    out(f"collected {len(placed)} notebooks from {len(students)} students into "
        f"{course.submitted.relative_to(course.root)}/<student>/<lesson>/")
    if unplaced:
        out(f"{len(unplaced)} files were not placed:")
        for f in unplaced:
            out(f"  {f.shown}: {f.reason}")
    out(f"report: {(course.grading / 'collect-report.csv').relative_to(course.root)}")
    return 0


def place(course, lesson, files):
    """nbgrader zip_collect for one lesson, from a clean ``grading/downloaded/<lesson>/archive/``."""
    staging = course.grading / "downloaded" / lesson
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "archive").mkdir(parents=True)
    for f in files:
        shutil.copy2(f.path, staging / "archive" / f"{f.student}_{lesson}.ipynb", follow_symlinks=False)
    regexp = rf".*/(?P<student_id>[\w.@+-]+)_(?P<file_id>{re.escape(lesson)})\.ipynb$"
    # zip_collect reads <root>/<downloaded>/<lesson>/archive/ and writes to the student's submitted folder
    nbgrader(["zip_collect", lesson, "--force", "--ZipCollectApp.downloaded_directory=grading/downloaded",
              f"--FileNameCollectorPlugin.named_regexp={regexp}"], course.root, course.db_url)
    for f in files:
        target = course.submitted / f.student / lesson / f"{lesson}.ipynb"
        if target.is_file():
            f.placed = str(target.relative_to(course.root))
        else:
            f.reason = "nbgrader zip_collect did not place it (see its output)"


def write_report(path, files):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "student", "lesson", "placed_at", "reason"])
        for item in sorted(files, key=lambda x: x.shown):
            writer.writerow([item.shown, item.student, item.lesson, item.placed, item.reason])
