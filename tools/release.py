"""Generate the student notebooks in ``notebooks/`` from ``solutions/`` with nbgrader, and refresh the README's
course map. ``make release`` runs this; tests run it into a temporary copy of the course and compare. It first
copies ``tools/course_checks.py`` into every lesson folder as ``course_checks.py``, so a change to the check library
reaches every lesson.

    python -m tools.release            # self-paced: each lesson folder also gets working_versions.py
    python -m tools.release --class    # for a class: no working versions anywhere (make release CLASS=1)
"""

import sys
from pathlib import Path

from course.commands import nbgrader
from course.lessons import (
    REPO,
    SOLUTIONS,
    course_map_table,
    is_answer_cell,
    lesson_names,
    notebook_path,
    read,
    with_course_map,
)
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


WORKING_HEADER = '''"""The course's working versions of Lesson {number}'s exercises, for a self-paced learner who is
stuck.

The lesson loads one only when your own answer does not pass its visible checks yet (``yours_or_working``), so that
the rest of the lesson runs. Try each exercise first: reading this file before you have is reading the answers.
Made by ``make release`` from the lesson's solutions; a class's release (``make release CLASS=1``) has no such file.
"""
'''


def answer_code(source):
    """An answer cell's code without nbgrader's solution markers."""
    return "\n".join(line for line in source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line).strip()


def working_versions(nb, number):
    """The text of ``working_versions.py`` for a solutions notebook: the imports of its code cells, then every
    answer cell's code, in order."""
    imports, answers = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_answer_cell(cell):
            answers.append(answer_code(cell.source))
        else:
            imports += [line for line in cell.source.splitlines() if line.startswith(("import ", "from "))
                        and "lesson_checks" not in line and "hidden_checks" not in line and line not in imports]
    return WORKING_HEADER.format(number=number) + "\n" + "\n".join(imports) + "\n\n\n" + "\n\n\n".join(answers) + "\n"


def write_working_versions(course_root=REPO, for_class=False):
    """``working_versions.py`` next to every student notebook (none at all for a class's release)."""
    for lesson in lesson_names(Path(course_root) / "solutions"):
        target = Path(course_root) / "notebooks" / lesson / "working_versions.py"
        if for_class:
            target.unlink(missing_ok=True)
        else:
            nb = read(notebook_path(lesson, Path(course_root) / "solutions"))
            target.write_text(working_versions(nb, lesson[:2]))


def generate_student_notebooks(course_root=REPO, db_url=None, for_class=False):
    """``notebooks/<lesson>/`` for every lesson: solutions and hidden tests removed, outputs cleared; with the
    lesson's working versions for self-paced learners, unless ``for_class``."""
    for lesson in lesson_names(Path(course_root) / "solutions"):
        nbgrader(["generate_assignment", lesson, "--force"], course_root, db_url)
    write_working_versions(course_root, for_class)
    # The "Open in Colab" badge and the Colab set-up cell go at the top of every student notebook.
    stamp_student_notebooks(course_root)


def update_readme_course_map(readme=REPO / "README.md"):
    readme.write_text(with_course_map(readme.read_text(), course_map_table()))


def main(argv=None):
    for_class = "--class" in (sys.argv[1:] if argv is None else argv)
    synced = sync_check_cells()
    if synced:
        print(f"copied tools/course_checks.py into {', '.join(synced)}")
    generate_student_notebooks(for_class=for_class)
    update_readme_course_map()
    update_readme_badges()
    kind = "for a class (no working versions)" if for_class else "self-paced (with working versions)"
    print(f"released {len(lesson_names())} lessons to notebooks/, {kind}, and refreshed the README course map")


if __name__ == "__main__":
    main()
