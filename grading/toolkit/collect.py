"""``make collect FROM=<folder or .zip>``: put submissions downloaded from an LMS where nbgrader expects them,
``grading/submitted/<student>/<lesson>/<lesson>.ipynb``.

File-naming rule: each notebook is named ``<student>_<lesson>.ipynb``, e.g. ``alice_00-orientation.ipynb`` or
``jane.doe@uni.edu_01-gru-math.ipynb``: the student id is everything before the last ``_`` and must follow the id
rule (``ids.py``), the lesson is a lesson folder name. An LMS that names files differently: set
``COURSE_COLLECT_REGEXP`` to a regular expression with the named groups ``student`` and ``lesson``, matched
against the file name.

What is read, and what wins:

- FROM is the LMS download: a folder (sub-folders too) or one zip. Ids come only from the names of its own files:
  an archive inside it (a zip a student uploaded, say) is never opened, since its file names are the uploader's
  to choose (a notebook named for another student would land in that student's folder). It is listed as refused.
- Of two files for the same student and lesson, the later one in the download wins: the order of the zip's
  entries (written by the LMS), or of the folder's paths sorted by name. Timestamps are never used: inside a zip
  they are whatever the uploader's machine said.
- Sizes are checked before anything is extracted, from the zip's directory: a notebook over 20 MiB, one that
  expands over 100 times its compressed size, or past 2 GiB for the whole download, is refused; extraction then
  stops at the size the directory declared. Absolute paths, ``..`` and links are refused, and nothing is ever
  extracted under a name from the zip.

The files are sorted by lesson into ``grading/downloaded/<lesson>/archive/`` and placed by nbgrader's
``zip_collect`` (which replaces a student's earlier submission of that lesson). Every file is listed with what was
done with it (on screen and in ``grading/collect-report.csv``): where it was placed, or why it was refused.
"""

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from course.commands import nbgrader
from course.lessons import lesson_names
from grading.toolkit.ids import id_problem
from grading.toolkit.safetext import clean, write_csv

NAMING = re.compile(r"^(?P<student>.+)_(?P<lesson>\d\d-[a-z0-9-]+)\.ipynb$")
MAX_FILE = 20 * 2**20  # the notebook size autograde accepts
MAX_RATIO = 100  # notebooks compress 3 to 10 times; a zip bomb by thousands
MAX_TOTAL = 2 * 2**30
ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
CHUNK = 2**20
NESTED = "an archive inside the download: not opened (ids come only from the download's own file names)"


@dataclass
class Found:
    shown: str  # where it was in what the instructor gave, for the report
    path: Path = None  # a file of the folder given
    entry: zipfile.ZipInfo = None  # or an entry of the zip given
    archive: Path = None
    size: int = 0
    compressed: int = 0
    student: str = ""
    lesson: str = ""
    placed: str = ""
    reason: str = ""

    @property
    def name(self):
        return Path(self.entry.filename if self.entry else self.path).name


def naming_rule():
    custom = os.environ.get("COURSE_COLLECT_REGEXP")
    return re.compile(custom) if custom else NAMING


def unpack(source, into=None):
    """Every file of ``source`` (a folder, or one zip), in download order, read from nowhere yet:
    ([Found], [Found refused: links, unsafe paths, archives inside])."""
    source = Path(source)
    if source.is_file() and zipfile.is_zipfile(source):
        return _zip_entries(source)
    found, refused = [], []
    for path in sorted(source.rglob("*")):  # rglob does not enter linked folders
        item = Found(str(path.relative_to(source)), path=path)
        if path.is_symlink():
            refused.append(_refuse(item, "a link: not followed"))
        elif path.is_file() and is_archive(path.name):
            refused.append(_refuse(item, NESTED))
        elif path.is_file():
            item.size = item.compressed = path.stat().st_size
            found.append(item)
    return found, refused


def _zip_entries(source):
    found, refused = [], []
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():  # the order the LMS wrote them in
            name = Path(info.filename)
            if info.is_dir() or "__MACOSX" in name.parts:
                continue
            item = Found(f"{source.name}!{info.filename}", entry=info, archive=source, size=info.file_size,
                         compressed=info.compress_size)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                refused.append(_refuse(item, "unsafe path in the zip: not read"))
            elif (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link stored in the zip
                refused.append(_refuse(item, "a link: not followed"))
            elif is_archive(name.name):
                refused.append(_refuse(item, NESTED))
            else:
                found.append(item)
    return found, refused


def is_archive(name):
    return name.lower().endswith(ARCHIVES)


def _refuse(item, reason):
    item.reason = reason
    return item


def size_problem(item, total_so_far):
    """Why ``item`` is refused for its size (before anything is extracted), or None."""
    if item.size > MAX_FILE:
        return f"refused: {item.size / 2**20:.0f} MiB, over the {MAX_FILE // 2**20} MiB limit of a notebook"
    if item.entry is not None and item.size > 2**20 and item.size > MAX_RATIO * max(item.compressed, 1):
        return (f"refused: expands {item.size / max(item.compressed, 1):.0f} times (a zip bomb?), over "
                f"{MAX_RATIO} times")
    if total_so_far + item.size > MAX_TOTAL:
        return f"refused: the download's notebooks pass {MAX_TOTAL // 2**30} GiB in all"
    return None


def classify(files, lessons, rule):
    """Give each file its student and lesson, or the reason it has none; of duplicates the later one wins."""
    chosen, total = {}, 0
    for f in files:
        match = rule.match(f.name)
        path = Path(f.entry.filename if f.entry else f.path)
        if f.name.startswith(".") or ".ipynb_checkpoints" in path.parts:
            f.reason = "hidden or checkpoint file"
        elif not f.name.endswith(".ipynb"):
            f.reason = "not a notebook (.ipynb)"
        elif not match:
            f.reason = "name does not follow <student>_<lesson>.ipynb"
        elif match.group("lesson") not in lessons:
            f.reason = f"unknown lesson '{match.group('lesson')}' (lessons: {', '.join(lessons)})"
        elif id_problem(match.group("student")):
            f.reason = f"refused: {id_problem(match.group('student'))}"
        elif size_problem(f, total):
            f.reason = size_problem(f, total)
        else:
            total += f.size
            f.student, f.lesson = match.group("student"), match.group("lesson")
            earlier = chosen.get((f.student, f.lesson))
            if earlier:
                earlier.reason = f"earlier duplicate of {f.shown} (the later one in the download wins)"
            chosen[(f.student, f.lesson)] = f
    return chosen


def collect(course, source, out=print):
    source = Path(source).expanduser().resolve()
    if not source.exists():
        out(f"error: {source} does not exist (give FROM=<folder or .zip>)")
        return 2
    lessons = lesson_names(course.release)
    files, refused = unpack(source)
    chosen = classify(files, lessons, naming_rule())
    for lesson in sorted({lesson for _, lesson in chosen}):
        place(course, lesson, [f for (_, of), f in chosen.items() if of == lesson])
    everything = files + refused
    write_report(course.grading / "collect-report.csv", everything)
    placed = [f for f in everything if f.placed]
    unplaced = [f for f in everything if not f.placed]
    students = {f.student for f in placed}
    out(f"collected {len(placed)} notebooks from {len(students)} students into "
        f"{course.submitted.relative_to(course.root)}/<student>/<lesson>/")
    if unplaced:
        out(f"{len(unplaced)} files were not placed:")
        for f in unplaced:
            out(clean(f"  {f.shown}: {f.reason}"))
    out(f"report: {(course.grading / 'collect-report.csv').relative_to(course.root)}")
    return 0


def extract(item, target):
    """Copy ``item`` to ``target``: a file of the folder, or a zip entry read no further than its declared size."""
    if item.entry is None:
        shutil.copyfile(item.path, target, follow_symlinks=False)
        return
    with zipfile.ZipFile(item.archive) as archive, archive.open(item.entry) as source, open(target, "wb") as f:
        left = item.size
        while left > 0:
            chunk = source.read(min(CHUNK, left))
            if not chunk:
                break
            f.write(chunk)
            left -= len(chunk)


def place(course, lesson, files):
    """nbgrader zip_collect for one lesson, from a clean ``grading/downloaded/<lesson>/archive/``."""
    staging = course.grading / "downloaded" / lesson
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "archive").mkdir(parents=True)
    for f in files:
        try:
            extract(f, staging / "archive" / f"{f.student}_{lesson}.ipynb")
        except (OSError, zipfile.BadZipFile) as error:  # a CRC or size that does not match the zip's directory
            f.reason = f"refused: it could not be read from the zip ({clean(error)[:120]})"
            (staging / "archive" / f"{f.student}_{lesson}.ipynb").unlink(missing_ok=True)
    regexp = rf".*/(?P<student_id>[A-Za-z0-9._@-]+)_(?P<file_id>{re.escape(lesson)})\.ipynb$"
    # zip_collect reads <root>/<downloaded>/<lesson>/archive/ and writes to the student's submitted folder
    nbgrader(["zip_collect", lesson, "--force", "--ZipCollectApp.downloaded_directory=grading/downloaded",
              f"--FileNameCollectorPlugin.named_regexp={regexp}"], course.root, course.db_url)
    for f in files:
        target = course.submitted / f.student / lesson / f"{lesson}.ipynb"
        if f.reason:
            continue
        if target.is_file():
            f.placed = str(target.relative_to(course.root))
        else:
            f.reason = "nbgrader zip_collect did not place it (see its output)"


def write_report(path, files):
    rows = [[f.shown, f.student, f.lesson, f.placed, f.reason] for f in sorted(files, key=lambda x: x.shown)]
    write_csv(path, ["file", "student", "lesson", "placed_at", "reason"], rows)
