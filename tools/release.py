"""Generate the student notebooks in ``notebooks/`` from ``solutions/`` with nbgrader, and refresh the README's
course map. ``make release`` runs this; tests run it into a temporary copy of the course and compare. It first
copies ``tools/course_checks.py`` into every lesson folder as ``course_checks.py``, so a change to the check library
reaches every lesson.

    python -m tools.release
"""

from pathlib import Path

from course.commands import nbgrader
from course.lessons import REPO, SOLUTIONS, course_map_table, lesson_names, with_course_map
from tools.learner_access import stamp_student_notebooks, update_readme_badges

CHECKS_FILE = REPO / "tools" / "course_checks.py"


def sync_check_cells(root=SOLUTIONS):
    """Copy ``tools/course_checks.py`` into every lesson folder under ``root`` as ``course_checks.py``; returns the
    lessons whose copy changed."""
    source, changed = CHECKS_FILE.read_text(), []
    for lesson in lesson_names(root):
        copy = Path(root) / lesson / "course_checks.py"
        if not copy.is_file() or copy.read_text() != source:
            copy.write_text(source)
            changed.append(lesson)
    return changed


def generate_student_notebooks(course_root=REPO, db_url=None):
    """``notebooks/<lesson>/`` for every lesson: solutions and hidden tests removed, outputs cleared."""
    for lesson in lesson_names(Path(course_root) / "solutions"):
        nbgrader(["generate_assignment", lesson, "--force"], course_root, db_url)
    # The "Open in Colab" badge and the Colab set-up cell go at the top of every student notebook.
    stamp_student_notebooks(course_root)


def update_readme_course_map(readme=REPO / "README.md"):
    readme.write_text(with_course_map(readme.read_text(), course_map_table()))


def main():
    synced = sync_check_cells()
    if synced:
        print(f"copied tools/course_checks.py into {', '.join(synced)}")
    generate_student_notebooks()
    update_readme_course_map()
    update_readme_badges()
    print(f"released {len(lesson_names())} lessons to notebooks/ and refreshed the README course map and badges")


if __name__ == "__main__":
    main()
