"""Generate the student notebooks in ``notebooks/`` from ``solutions/`` with nbgrader, and refresh the README's
course map. ``make release`` runs this; tests run it into a temporary copy of the course and compare.

    python -m tools.release
"""

from pathlib import Path

from course.commands import nbgrader
from course.lessons import REPO, course_map_table, lesson_names, with_course_map
from tools.learner_access import stamp_student_notebooks, update_readme_badges


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
