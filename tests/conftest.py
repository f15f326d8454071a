import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tools` and `tests` import as packages wherever pytest is started


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory, request):
    """A lesson test module's LESSON graded through nbgrader in a temporary course: its solution, its blank notebook
    and its AUTOGRADED students (tests/harness.py)."""
    from tests.harness import grade_variants

    lesson = request.module.LESSON
    return grade_variants(tmp_path_factory.mktemp(lesson), lesson, request.module.AUTOGRADED)


@pytest.fixture(scope="module")
def scores(graded_course, request):
    """``{student: {grade_id: (score, max_score)}}`` of ``graded_course``, from its gradebook."""
    return graded_course.scores(request.module.LESSON)
