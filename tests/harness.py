"""Test harness: a temporary copy of the course, graded by the real nbgrader commands and gradebook.

Every test that grades works in its own course root (``COURSE_ROOT``), so the repository's ``grading/`` folder
and gradebook are never touched.
"""

import copy
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from course.commands import nbgrader as run_nbgrader
from course.lessons import REPO, SOLUTIONS, is_answer_cell, is_test_cell, nbgrader, notebook_path, read
from tests.check_cells import lesson_run, run_check_cells


@functools.cache
def empty_gradebook():
    """An empty SQLite gradebook, made once per test process: nbgrader stamps a new gradebook's schema version by
    running ``alembic`` in a subprocess (1.7 s), which each temporary course would otherwise pay."""
    import tempfile

    from grading.toolkit.gradebook import opened, sqlite_url

    path = Path(tempfile.mkdtemp(prefix="gru-empty-gradebook-")) / "gradebook.db"
    with opened(sqlite_url(path)):
        pass
    return path


class TempCourse:
    """A course root under ``root`` with the lessons ``lessons`` copied from ``solutions/`` and released."""

    def __init__(self, root, lessons):
        self.root = Path(root)
        self.lessons = list(lessons)
        self.db_url = f"sqlite:///{self.root / 'grading' / 'gradebook.db'}"
        (self.root / "grading").mkdir(parents=True)
        shutil.copyfile(empty_gradebook(), self.root / "grading" / "gradebook.db")
        for lesson in self.lessons:
            shutil.copytree(SOLUTIONS / lesson, self.root / "solutions" / lesson)
        for lesson in self.lessons:
            self.nbgrader("generate_assignment", lesson, "--force")

    def nbgrader(self, *args):
        return run_nbgrader(list(args), self.root, self.db_url)

    def source(self, lesson):
        return read(notebook_path(lesson, self.root / "solutions"))

    def student_version(self, lesson):
        return read(notebook_path(lesson, self.root / "notebooks"))

    def submit(self, student, lesson, nb):
        """Place ``nb`` as ``student``'s submission of ``lesson``."""
        path = notebook_path(lesson, self.root / "grading" / "submitted" / student)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))

    def autograde(self, lesson, jobs=2):
        """Grade every submission of ``lesson`` with the course's grader (``make autograde``: checks judged in the
        grader's process, outside the kernel); returns the finished process."""
        env = dict(os.environ, COURSE_ROOT=str(self.root), COURSE_DB_URL=self.db_url)
        done = subprocess.run([sys.executable, "-m", "grading.toolkit", "autograde", "--lesson", lesson, "--force",
                               "--jobs", str(jobs)], cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"autograde failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def autograde_in_kernel(self, lesson):
        """A plain ``nbgrader autograde`` (check cells run in the kernel, as nbgrader always has)."""
        return self.nbgrader("autograde", lesson, "--force")

    def scores(self, lesson):
        """``{student: {grade_id: (score, max_score)}}`` read from the gradebook database."""
        result = {}
        with Gradebook(self.db_url) as gradebook:
            assignment = gradebook.find_assignment(lesson)
            for submission in assignment.submissions:
                grades = {}
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        grades[grade.name] = (grade.score, grade.max_score)
                result[submission.student.id] = grades
        return result


def with_answers(nb, answers):
    """A copy of ``nb`` whose answer cells, by grade id, hold the code in ``answers``."""
    nb = copy.deepcopy(nb)
    missing = set(answers)
    for cell in nb.cells:
        grade_id = nbgrader(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
            missing.discard(grade_id)
    if missing:
        raise KeyError(f"no cells with grade ids {sorted(missing)}")
    return nb


def grade_variants(root, lesson, submissions):
    """Grade, in one run of the course's grader, the solution ("solution"), the untouched student notebook ("blank")
    and ``submissions`` ({student: {grade_id: answer source}}), each the lesson's solution with those answer cells
    swapped in; returns the graded :class:`TempCourse`."""
    course = TempCourse(root, [lesson])
    course.submit("solution", lesson, course.source(lesson))
    course.submit("blank", lesson, course.student_version(lesson))
    for student, answers in submissions.items():
        course.submit(student, lesson, with_answers(course.source(lesson), answers))
    course.autograde(lesson)
    return course


def points(scores, student, grade_id):
    """The score one student got on one graded cell."""
    return scores[student][grade_id][0]


class LessonTests:
    """What every lesson's fair-grading module checks. Each tests/test_lesson_NN.py subclasses it (as ``class
    TestLesson(LessonTests)``, which pytest collects) and names its LESSON, its ALTERNATIVE answers ({answer grade id:
    source}, correct but written differently) and its AUTOGRADED students ({student: answers}). The `scores` fixture
    of tests/conftest.py grades the solution, the blank notebook and the AUTOGRADED students through nbgrader into a
    gradebook; everything else runs through the check cells in-process (tests/check_cells.py), and the last test here
    shows that the two ways of running the checks agree."""

    def test_solution_full_marks_blank_zero(self, scores, request):
        lesson = request.module.LESSON
        assert set(scores) == {"solution", "blank", *request.module.AUTOGRADED}
        assert scores["solution"], f"{lesson}: no graded cells in the gradebook"
        for grade_id, (score, max_score) in scores["solution"].items():
            assert max_score > 0 and score == max_score, f"{lesson}/{grade_id}: solution scored {score}/{max_score}"
        for grade_id, (score, max_score) in scores["blank"].items():
            assert score == 0, f"{lesson}/{grade_id}: the untouched notebook scored {score}/{max_score}"

    def test_teaching_cells_run_in_the_blank_notebook(self, graded_course, request):
        """A learner can run every teaching cell of the untouched student notebook: in the blank submission's
        autograded copy (graded as a class's release is, without working versions) a teaching cell fails only where
        it uses an exercise the learner has not done yet (the stub's NotImplementedError, after ``yours_or_working``
        kept the learner's own)."""
        lesson = request.module.LESSON
        graded = read(notebook_path(lesson, graded_course.root / "grading" / "autograded" / "blank"))
        assert graded.cells, f"{lesson}: the blank notebook was not autograded"
        errors, unfinished = [], False
        for index, cell in enumerate(graded.cells):
            if cell.cell_type != "code" or is_answer_cell(cell) or is_test_cell(cell):
                continue
            for output in (o for o in cell.outputs if o.output_type == "error"):
                # an unfinished answer used by the lesson raises; what the cells after it needed is then missing
                allowed = output.ename == "NotImplementedError" or unfinished
                unfinished = unfinished or output.ename == "NotImplementedError"
                if not allowed:
                    errors.append((index, output.ename, output.evalue))
        assert not errors, f"{lesson}: teaching cells failed without the answers: {errors}"
        uses_answers = any("yours_or_working(" in c.source for c in graded.cells if c.cell_type == "code")
        stubbed = [index for index, cell in enumerate(graded.cells) if cell.cell_type == "code"
                   and not (is_answer_cell(cell) or is_test_cell(cell))
                   and any(o.output_type == "error" for o in cell.outputs)]
        assert uses_answers or not stubbed, f"{lesson}: teaching cells {stubbed} use an answer without yours_or_working"

    def test_the_working_versions_pass_their_visible_checks(self, request):
        """What a stuck self-paced learner gets from working_versions.py (made by ``make release`` from the solution
        cells) passes every visible check, in the lesson's folder, as ``yours_or_working`` runs it."""
        lesson = request.module.LESSON
        failures = working_version_failures(lesson)
        assert not failures, f"{lesson}: working versions fail their visible checks: {failures}"

    def test_alternative_answers_pass_every_check(self, request):
        """The ALTERNATIVE answers, correct but written differently from the reference, pass every check."""
        lesson = request.module.LESSON
        results = run_check_cells(lesson, request.module.ALTERNATIVE)
        assert set(results) == set(lesson_run(lesson).exercise_of), f"{lesson}: ALTERNATIVE leaves out exercises"
        failed = {grade_id: error for grade_id, error in results.items() if error is not None}
        assert not failed, f"{lesson}: correct answers written differently failed {failed}"

    def test_the_mistaken_student_scores_0_on_every_hidden_check(self, scores, request):
        """AUTOGRADED holds a student (named "mistakes...") with a plausible mistake in every exercise."""
        (student,) = [name for name in request.module.AUTOGRADED if name.startswith("mistakes")]
        hidden = {grade_id: score for grade_id, (score, _) in scores[student].items() if grade_id.endswith("_hidden")}
        assert hidden and not any(hidden.values()), f"{request.module.LESSON}: {student} scored {hidden}"

    def test_autograde_agrees_with_the_in_process_checks(self, scores, request):
        lesson = request.module.LESSON
        for student, answers in request.module.AUTOGRADED.items():
            for grade_id, error in run_check_cells(lesson, answers).items():
                score, max_score = scores[student][grade_id]
                assert score == (max_score if error is None else 0), \
                    f"{student}/{grade_id}: autograde gave {score}/{max_score}, in-process the check said {error}"


def working_version_failures(lesson):
    """{visible check: error} for the lesson's working versions (from its solutions notebook) run through its visible
    checks in-process, in the lesson's folder."""
    import contextlib
    import io

    from grading.toolkit.checker import checks_of
    from tests.check_cells import in_lesson_folder
    from tools.release import working_versions

    folder = SOLUTIONS / lesson
    run = lesson_run(lesson)  # the names the lesson's cells define, which yours_or_working lends the working versions
    namespace = {**run.saved[max(run.saved, key=run.order.index)], "__name__": "working_versions"}
    failures = {}
    with in_lesson_folder(folder):
        exec(compile(working_versions(read(notebook_path(lesson)), lesson[:2]), "working_versions.py", "exec"),
             namespace)
        for grade_id, check in sorted(checks_of(folder).items()):
            if not grade_id.endswith("_visible"):
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    check(*[namespace[name] for name in check.answers])
            except Exception as failure:
                failures[grade_id] = f"{type(failure).__name__}: {failure}"
    return failures
