"""nbgrader configuration for the GRU course.

Run nbgrader commands from this folder (``cd grading``): nbgrader reads this file from the working directory.
The course root is the repository root: lessons come from ``solutions/`` (the nbgrader source) and are released
to ``notebooks/``; student work, grades and feedback stay under ``grading/`` and are git-ignored.

These settings can be changed from the environment without editing this file:
- ``COURSE_ROOT``: another course root (the tests grade in a temporary copy of the course).
- ``COURSE_DB_URL``: the gradebook database, an SQLAlchemy URL. Default: SQLite in ``grading/gradebook.db``.
  Several graders at once need a server database, e.g. ``postgresql://user@host/gru_course`` (see README.md here).
- ``COURSE_CELL_TIMEOUT``: seconds a cell may run when graded (default 30).
- ``COURSE_KERNEL_MEMORY``: memory cap of a grading kernel, e.g. ``4G`` (the default) or ``0`` for none.
- ``COURSE_SANDBOX``: ``on`` (the default: every grading kernel runs in a bubblewrap sandbox, see
  ``toolkit/sandbox.py``) or ``off`` (unsandboxed, trusted work only; a warning on every run).
- ``COURSE_OUTPUT_LIMIT``: bytes of output a cell may produce when graded (default 2M); the rest is cut.
- ``COURSE_OUTPUT_TOTAL``: bytes of output the whole notebook may produce when graded (default 8M).

The grading toolkit (``grading/toolkit/``, ``make autograde``) reads the same variables.
"""

import os
import sys
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import GetGrades

# The toolkit's nbgrader plug-ins live in this repository (grading/toolkit/), wherever the course root is.
REPO = str(Path(__file__).resolve().parent.parent)
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from grading.toolkit import preprocessors as toolkit  # noqa: E402
from grading.toolkit.budget import LimitFeedback  # noqa: E402
from grading.toolkit.safe_html import SafeHTMLExporter  # noqa: E402
from grading.toolkit.settings import DEFAULT_KERNEL_MEMORY, Course, parse_bytes  # noqa: E402

c = get_config()  # noqa: F821  (nbgrader injects get_config into this file)

course = Course.from_env()  # COURSE_ROOT and COURSE_DB_URL, with the defaults described above

c.CourseDirectory.course_id = "gru-course"
c.CourseDirectory.root = str(course.root)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.db_url = course.db_url

# A lesson's hidden checks (hidden_checks.py) are for instructors only: never released, never copied into a grading
# folder by nbgrader (the grader judges them in its own process; grading/toolkit/checker.py).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "hidden_checks.py"]

# Student notebooks ask for the standard Python 3 kernel; the kernel runs in the course's environment.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Every cell gets at most this many seconds when grading (nbgrader's default is 30).
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "30"))
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": f"the cell ran longer than {c.Execute.timeout} s and was stopped",
    "traceback": [f"CellTimeoutError: the cell ran longer than {c.Execute.timeout} s and was stopped"],
}

# Grading kernels run under a memory cap, and a kernel that dies or hangs costs only the cells it had left
# (grading/toolkit/preprocessors.py explains both).
c.SafeExecute.kernel_memory = parse_bytes(os.environ.get("COURSE_KERNEL_MEMORY", DEFAULT_KERNEL_MEMORY))
c.SafeExecute.output_limit = parse_bytes(os.environ.get("COURSE_OUTPUT_LIMIT", "2M"))
c.SafeExecute.output_total = parse_bytes(os.environ.get("COURSE_OUTPUT_TOTAL", "8M"))  # the whole notebook
# Every grading kernel runs in a bubblewrap sandbox (toolkit/sandbox.py). The course's grader (make autograde) judges
# every check cell outside the kernel (toolkit/checker.py); a plain `nbgrader autograde` runs them in the kernel.
c.Autograde.autograde_preprocessors = toolkit.autograde_preprocessors()

# A submission whose test cells were deleted gets them back (and graded); edited ones are restored anyway.
c.OverwriteCells.add_missing_cells = True

# Feedback never shows hidden tests: their code is cut out, failed ones keep only "Error: message".
# A submission's HTML and JavaScript (in outputs and markdown) are shown as text in feedback pages, never run.
# Markdown links and images keep only safe URL schemes (no javascript:, data:), and a page has a size limit.
c.GenerateFeedback.preprocessors = [GetGrades, toolkit.RedactHiddenTests, LimitFeedback, SanitizeHTML,
                                    CSSHTMLHeaderPreprocessor]
c.GenerateFeedback.exporter_class = SafeHTMLExporter
c.SanitizeHTML.enabled = True
c.HTMLExporter.sanitize_html = True
