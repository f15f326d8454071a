"""The student notebooks in notebooks/ are exactly what `make release` generates from solutions/."""

import pytest

from course.lessons import NOTEBOOKS, REPO, SOLUTIONS, course_map_table, lesson_names, read, with_course_map
from tests.harness import TempCourse
from tools.learner_access import COLAB_CELL_ID, stamp_student_notebooks
from tools.release import write_working_versions

LESSONS = lesson_names()


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    course = TempCourse(tmp_path_factory.mktemp("release"), LESSONS)
    write_working_versions(course.root)  # `make release` adds the working versions and the Colab badge and set-up
    stamp_student_notebooks(course.root)  # cell after nbgrader
    return course


def files_under(folder):
    """Files a release writes; Jupyter's checkpoints and Python's bytecode caches (git-ignored) are not part of it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not {".ipynb_checkpoints", "__pycache__"} & set(p.parts))


def test_every_lesson_is_released():
    assert LESSONS, "no lessons found in solutions/"
    assert lesson_names(NOTEBOOKS) == LESSONS


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_is_regenerated_exactly(fresh_release, lesson):
    released = fresh_release.root / "notebooks" / lesson
    committed = NOTEBOOKS / lesson
    assert files_under(committed) == files_under(released), f"{lesson}: files differ from a fresh release"
    for name in files_under(committed):
        if name.endswith(".ipynb"):
            assert read(committed / name) == read(released / name), (
                f"notebooks/{lesson}/{name} differs from what `make release` generates: run `make release`")
        else:
            assert (committed / name).read_bytes() == (released / name).read_bytes(), f"{lesson}/{name} differs"


def test_readme_course_map_is_current():
    readme = (REPO / "README.md").read_text()
    assert with_course_map(readme, course_map_table(SOLUTIONS)) == readme, (
        "README.md's course map is out of date: run `make release`")


def test_a_release_for_a_class_has_no_working_versions(fresh_release):
    """`make release CLASS=1`: the lessons' working versions (their exercises' answers) are not shipped at all, and
    the Colab set-up cell does not list them."""
    write_working_versions(fresh_release.root, for_class=True)
    stamp_student_notebooks(fresh_release.root)
    released = fresh_release.root / "notebooks"
    assert not list(released.rglob("working_versions.py"))
    for lesson in LESSONS:
        (colab,) = [c for c in read(released / lesson / f"{lesson}.ipynb").cells if c.get("id") == COLAB_CELL_ID]
        assert "working_versions" not in colab.source
    assert all((NOTEBOOKS / lesson / "working_versions.py").is_file() for lesson in LESSONS)  # self-paced: there
