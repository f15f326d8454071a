"""Grading one class on N hosts: ``make autograde SHARD=i/N`` grades only the students of shard i.

- The split is by a hash of the student id, so a student is always in the same shard, whatever order the
  folders are listed in and whichever host looks. Keep N fixed for a class: another N moves students between
  shards, and a shard's first run regrades what it does not know.
- The shards share one server gradebook (PostgreSQL): each records its own students, one short transaction per
  submission, so they never write the same rows. A sharded run refuses an SQLite gradebook (N processes on one
  file, or one file on a network share, is what a server database is for).
- Each shard has its own lock file, scratch folder and summary file (``grading/autograde-summary.shard-1-of-2.csv``),
  so N shards can run from one course folder (one host, or a folder every host mounts). ``make feedback`` and
  ``make export`` read every summary file (``class_summary``).
- The one-time set-up of a run (creating the gradebook's tables, recording a lesson that is not there yet) takes a
  PostgreSQL advisory lock (``setup_lock``), so shards started at the same moment do not race to create them.
"""

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

from grading.toolkit.settings import Course
from grading.toolkit.summary import read_summary

SUMMARY_GLOB = "autograde-summary*.csv"
SETUP_LOCK_KEY = 0x6772755F636F  # any fixed 63-bit number: the advisory lock of this course's set-up ("gru_co")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    @classmethod
    def parse(cls, text):
        """``"2/4"`` -> Shard(2, 4); anything else is refused with what was expected."""
        parts = str(text).strip().split("/")
        try:
            index, count = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"not a shard: {text!r} (expected i/N, e.g. 1/4: the first of 4 shards)") from None
        if count < 1 or not 1 <= index <= count:
            raise ValueError(f"not a shard: {text!r} (i/N needs 1 <= i <= N, e.g. 1/4 ... 4/4)")
        return cls(index, count)

    def __str__(self):
        return f"{self.index}/{self.count}"

    def has(self, student):
        return shard_of(student, self.count) == self.index


def shard_of(student, count):
    """The shard (1..count) of ``student``: from a hash of the id alone, the same on every host and every run."""
    digest = hashlib.sha256(student.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class ShardCourse(Course):
    """A course as one shard sees it: the same gradebook and folders, its own lock, scratch and summary."""

    shard: Shard = Shard(1, 1)

    @property
    def suffix(self):
        return f"shard-{self.shard.index}-of-{self.shard.count}"

    @property
    def summary_csv(self):
        return self.grading / f"autograde-summary.{self.suffix}.csv"

    @property
    def work(self):
        return self.grading / f".work-{self.suffix}"

    @property
    def lock_file(self):
        return self.grading / f".autograde-{self.suffix}.lock"


def for_shard(course, text):
    """``course`` restricted to shard ``text`` (``"i/N"``); refuses an SQLite gradebook with the reason."""
    shard = Shard.parse(text)
    if course.db_url.startswith("sqlite"):
        raise ValueError("--shard needs a server gradebook shared by every shard, e.g. COURSE_DB_URL="
                         "postgresql://grader@db-host/gru_course (see grading/README.md); with SQLite, grade on "
                         "one host with more JOBS instead")
    return ShardCourse(course.root, course.db_url, shard)


def class_summary(course):
    """{(student, lesson): row} from every summary file of the course (unsharded and each shard's); where two
    files have the same submission, the row graded last wins."""

    rows = {}
    for path in sorted(course.grading.glob(SUMMARY_GLOB)):
        for key, row in read_summary(path).items():
            if key not in rows or row["graded_at"] > rows[key]["graded_at"]:
                rows[key] = row
    return rows


def is_server(db_url):
    return db_url.startswith("postgresql")


@contextmanager
def setup_lock(db_url):
    """Hold the course's PostgreSQL advisory lock meanwhile (nothing to do for SQLite: one host, one file lock)."""
    if not is_server(db_url):
        yield
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SETUP_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SETUP_LOCK_KEY})
    finally:
        engine.dispose()



def in_shard(course, student):
    """True when ``student`` is graded by this run (always, for a run without --shard)."""
    return not isinstance(course, ShardCourse) or course.shard.has(student)


def describe(course, mine, found):
    """A line that says which shard this run is and how many of the class it grades ("" without --shard)."""
    if not isinstance(course, ShardCourse):
        return ""
    return (f"shard {course.shard}: {len(mine)} of the {len(found)} submissions found are this shard's "
            f"(split by a hash of the student id)")
