import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tools` and `tests` import as packages wherever pytest is started


@pytest.fixture(scope="module")
def scores(tmp_path_factory, request):
    """A lesson test module's LESSON graded through nbgrader: its solution, its blank notebook and its AUTOGRADED
    students (tests/harness.py); ``{student: {grade_id: (score, max_score)}}``."""
    from tests.harness import grade_variants

    lesson = request.module.LESSON
    return grade_variants(tmp_path_factory.mktemp(lesson), lesson, request.module.AUTOGRADED)
