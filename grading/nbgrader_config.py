"""nbgrader configuration for the GRU course.

Run nbgrader commands from this folder (``cd grading``): nbgrader reads this file from the working directory.
The course root is the repository root: lessons come from ``solutions/`` (the nbgrader source) and are released
to ``notebooks/``; student work, grades and feedback stay under ``grading/`` and are git-ignored.

Two settings can be changed from the environment without editing this file:
- ``COURSE_ROOT``: another course root (the tests grade in a temporary copy of the course).
- ``COURSE_DB_URL``: the gradebook database, an SQLAlchemy URL. Default: SQLite in ``grading/gradebook.db``.
  Several graders at once need a server database, e.g. ``postgresql://user@host/gru_course`` (see README.md here).
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821  (nbgrader injects get_config into this file)

course_root = Path(os.environ.get("COURSE_ROOT", Path(__file__).resolve().parent.parent)).resolve()

c.CourseDirectory.course_id = "gru-course"
c.CourseDirectory.root = str(course_root)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.db_url = os.environ.get("COURSE_DB_URL", f"sqlite:///{course_root / 'grading' / 'gradebook.db'}")

# Student notebooks ask for the standard Python 3 kernel; the kernel runs in the course's environment.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Every cell gets at most this many seconds when grading (nbgrader's default is 30).
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "30"))
