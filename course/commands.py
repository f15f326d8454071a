"""Running nbgrader's own commands the way an instructor does."""

import os
import subprocess
import sys
from pathlib import Path

from course.lessons import GRADING, REPO


def nbgrader(args, course_root=REPO, db_url=None):
    """Run an nbgrader command the way an instructor does: from ``grading/``, where its config lives."""
    bin_dir = Path(sys.executable).parent
    # nbgrader calls other tools of its environment (alembic) by name: put that environment first on PATH.
    env = dict(os.environ, COURSE_ROOT=str(course_root), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    if db_url:
        env["COURSE_DB_URL"] = db_url
    command = [str(bin_dir / "nbgrader"), *args]
    result = subprocess.run(command, cwd=GRADING, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result
