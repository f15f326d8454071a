"""Autograde round trip through nbgrader and its gradebook: the solution scores full marks on every graded cell,
the untouched student notebook scores zero, and grading it does not crash."""

import pytest

from course.lessons import lesson_names
from tests.harness import TempCourse


@pytest.mark.parametrize("lesson", lesson_names())
def test_solution_full_marks_blank_zero(tmp_path, lesson):
    course = TempCourse(tmp_path, [lesson])
    course.submit("solution", lesson, course.source(lesson))
    course.submit("blank", lesson, course.student_version(lesson))
    course.autograde(lesson)

    scores = course.scores(lesson)
    assert set(scores) == {"solution", "blank"}
    assert scores["solution"], f"{lesson}: no graded cells in the gradebook"
    for grade_id, (score, max_score) in scores["solution"].items():
        assert max_score > 0 and score == max_score, f"{lesson}/{grade_id}: solution scored {score}/{max_score}"
    for grade_id, (score, max_score) in scores["blank"].items():
        assert score == 0, f"{lesson}/{grade_id}: the untouched notebook scored {score}/{max_score}"
