"""Where the course lives and the limits a submission is graded under: one place for every setting.

Each setting comes from an environment variable, so ``make autograde COURSE_CELL_TIMEOUT=60`` and a plain
``COURSE_CELL_TIMEOUT=60 python -m grading.toolkit autograde`` mean the same thing. ``grading/nbgrader_config.py``
reads the same variables, so nbgrader and the toolkit always agree.

=========================  ==========================================  ==========================================
variable                   what                                        default
=========================  ==========================================  ==========================================
COURSE_ROOT                the course root                             the repository
COURSE_DB_URL              the gradebook (an SQLAlchemy URL)           sqlite:///<root>/grading/gradebook.db
COURSE_CELL_TIMEOUT        seconds a cell may run when graded          30
COURSE_KERNEL_MEMORY       memory cap of a grading kernel (0: none)    4G
COURSE_SUBMISSION_TIMEOUT  seconds one submission may take in all      600
COURSE_SANDBOX             off: grade without the sandbox (sandbox.py) on
COURSE_KERNEL_PROCESSES    processes + threads of a grading kernel     256
COURSE_KERNEL_FILE_SIZE    largest file a grading kernel can write     64M
COURSE_KERNEL_DISK         its private /tmp and working folder, each   256M
COURSE_OUTPUT_LIMIT        output of one cell when graded              2M
COURSE_OUTPUT_TOTAL        output of the whole notebook when graded    8M
=========================  ==========================================  ==========================================
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from course.lessons import REPO

CONFIG_DIR = REPO / "grading"  # nbgrader_config.py lives here; nbgrader runs from here

DEFAULT_CELL_TIMEOUT = 30
DEFAULT_KERNEL_MEMORY = "4G"
DEFAULT_SUBMISSION_TIMEOUT = 600

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text):
    """``"4G"``, ``"4GiB"``, ``"512M"``, ``"1073741824"`` -> bytes; ``"0"``, ``"none"``, ``""`` -> 0 (no cap)."""
    text = str(text).strip()
    if text.lower() in {"", "0", "none", "off", "unlimited"}:
        return 0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a memory size: {text!r} (examples: 4G, 512M, 0 for no cap)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_bytes(n):
    if n <= 0:
        return "no cap"
    for unit in "TGMK":
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}iB"
    return f"{n} bytes"


def cell_timeout():
    return int(os.environ.get("COURSE_CELL_TIMEOUT", DEFAULT_CELL_TIMEOUT))


def kernel_memory():
    return parse_bytes(os.environ.get("COURSE_KERNEL_MEMORY", DEFAULT_KERNEL_MEMORY))


def submission_timeout():
    return float(os.environ.get("COURSE_SUBMISSION_TIMEOUT", DEFAULT_SUBMISSION_TIMEOUT))


def default_jobs():
    """The cores this process may use (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Course:
    """A course root and its gradebook, with the folders nbgrader_config.py gives them."""

    root: Path
    db_url: str

    @classmethod
    def from_env(cls):
        root = Path(os.environ.get("COURSE_ROOT", REPO)).resolve()
        return cls(root, os.environ.get("COURSE_DB_URL", f"sqlite:///{root / 'grading' / 'gradebook.db'}"))

    @property
    def solutions(self):
        return self.root / "solutions"

    @property
    def release(self):
        return self.root / "notebooks"

    @property
    def grading(self):
        return self.root / "grading"

    @property
    def submitted(self):
        return self.grading / "submitted"

    @property
    def autograded(self):
        return self.grading / "autograded"

    @property
    def feedback(self):
        return self.grading / "feedback"

    @property
    def summary_csv(self):
        """One row per graded submission: score, status, reason (also how a re-run knows what is done)."""
        return self.grading / "autograde-summary.csv"

    @property
    def work(self):
        """Scratch space of a grading run (one folder per submission being graded); emptied by each run."""
        return self.grading / ".work"

    @property
    def lock_file(self):
        """Held by a running autograde, so that a second one of the same course stops at once."""
        return self.grading / ".autograde.lock"
