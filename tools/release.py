"""Generate the student notebooks in ``notebooks/`` from ``solutions/`` with nbgrader, and refresh the README's
course map. ``make release`` runs this; tests run it into a temporary copy of the course and compare.

    python -m tools.release
"""

import os
import subprocess
import sys
from pathlib import Path

from tools.learner_access import stamp_student_notebooks, update_readme_badges
from tools.lessons import GRADING, REPO, course_map_table, lesson_names, with_course_map


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


def generate_student_notebooks(course_root=REPO, db_url=None):
    """``notebooks/<lesson>/`` for every lesson: solutions and hidden tests removed, outputs cleared."""
    for lesson in lesson_names(Path(course_root) / "solutions"):
        nbgrader(["generate_assignment", lesson, "--force"], course_root, db_url)
    # The "Open in Colab" badge and the Colab set-up cell go at the top of every student notebook.
    stamp_student_notebooks(course_root)


def update_readme_course_map(readme=REPO / "README.md"):
    readme.write_text(with_course_map(readme.read_text(), course_map_table()))


def main():
    generate_student_notebooks()
    update_readme_course_map()
    update_readme_badges()
    print(f"released {len(lesson_names())} lessons to notebooks/ and refreshed the README course map and badges")


if __name__ == "__main__":
    main()
