"""A lesson's check cells run in-process on answers other than the reference ones, as the grading kernel would run
them, without a kernel or nbgrader for every variant.

The solutions notebook runs once per test process, top to bottom, in the lesson's folder with ``NBGRADER_EXECUTION``
set (as under autograde: the short training runs), and the namespace is saved just before each answer cell. A
variant of an exercise starts from a copy of the namespace saved before its answer cell (tensors and models copied
too: variants do not see each other) and runs the replaced answers of earlier exercises; then, as the kernel would,
every cell from the exercise's answer cell (replaced) to its last check cell: an answer that fails leaves its names
undefined, a teaching cell in between sees the variant. A check cell passes when it raises nothing (nbgrader's
rule); the error message is kept, so tests can read what a learner is told.
"""

import contextlib
import copy
import functools
import io
import os
import sys
from unittest import mock

import matplotlib
from matplotlib import pyplot

from course.lessons import nbgrader, notebook_path, read


@functools.cache
def lesson_run(lesson):
    """The :class:`LessonRun` of ``lesson``, made once per process."""
    return LessonRun(lesson)


def run_check_cells(lesson, answers, checks=None):
    """``{grade_id: None if the check cell passed, else "ErrorName: message"}``; see :meth:`LessonRun.run`. The
    same variant is run once per process (several tests read its results)."""
    key = tuple(sorted(answers.items())), None if checks is None else tuple(checks)
    return dict(cached_run(lesson, *key))


@functools.cache
def cached_run(lesson, answers, checks):
    return lesson_run(lesson).run(dict(answers), None if checks is None else list(checks))


# Modules every lesson folder has under the same names: each lesson gets its own (one process runs several lessons).
LESSON_MODULES = ("course_checks", "lesson_checks", "hidden_checks", "working_versions")
_modules_of = {}  # lesson folder -> {name: module imported while in it}


@contextlib.contextmanager
def in_lesson_folder(folder):
    """As the kernel runs a notebook: in its folder, which is on sys.path (the lesson's own modules import, and are
    this lesson's, not another's), output not shown, figures not drawn on screen."""
    matplotlib.use("Agg")
    previous = os.getcwd()  # contextlib.chdir is Python 3.11+, and the course supports 3.10
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    saved = {name: sys.modules.pop(name) for name in LESSON_MODULES if name in sys.modules}
    sys.modules.update(_modules_of.get(str(folder), {}))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        _modules_of[str(folder)] = {name: sys.modules.pop(name) for name in LESSON_MODULES if name in sys.modules}
        sys.modules.update(saved)
        sys.path.remove(str(folder))
        os.chdir(previous)
        pyplot.close("all")


def error_of(source, name, namespace):
    """None if ``source`` runs in ``namespace`` without raising, else "ErrorName: message"."""
    try:
        exec(compile(source, name, "exec"), namespace)
    except Exception as failure:
        return f"{type(failure).__name__}: {failure}"
    return None


def fresh_copy(namespace):
    """A copy of ``namespace`` whose tensors, models and containers are copied too (objects shared between names
    stay shared), so that a variant that changes them in place leaves them as they were for the next one. Modules,
    and whatever cannot be copied, are shared."""
    memo, copied = {}, {}
    for name, value in namespace.items():
        try:
            copied[name] = copy.deepcopy(value, memo)
        except Exception:
            copied[name] = value
    return copied


class LessonRun:
    """The solutions notebook of one lesson, run once, with its exercises: answer cells and their check cells."""

    def __init__(self, lesson):
        self.lesson = lesson
        path = notebook_path(lesson)
        self.folder = path.parent
        self.cells = [c for c in read(path).cells if c.cell_type == "code"]
        self.source = {nbgrader(c)["grade_id"]: c.source for c in self.cells if nbgrader(c).get("grade_id")}
        self.order = [nbgrader(c).get("grade_id") for c in self.cells]
        self.exercise_of = {}  # check cell -> the answer cell before it
        answer = None
        for cell in self.cells:
            meta = nbgrader(cell)
            if meta.get("solution"):
                answer = meta["grade_id"]
            elif meta.get("grade"):
                self.exercise_of[meta["grade_id"]] = answer
        self.exercises = set(self.exercise_of.values()) - {None}  # answer cells that have check cells
        self.saved = self.run_reference()

    def run_reference(self):
        """Run every code cell; return ``{answer grade id: namespace saved just before that answer cell}``."""
        namespace, saved = {"__name__": "__main__"}, {}
        with mock.patch.dict(os.environ, NBGRADER_EXECUTION="autograde"), in_lesson_folder(self.folder):
            for cell in self.cells:
                grade_id = nbgrader(cell).get("grade_id", "<cell>")
                if grade_id in self.exercises:  # a copy: later cells may change its models and tensors in place
                    saved[grade_id] = fresh_copy(namespace)
                error = error_of(cell.source, grade_id, namespace)
                if error:
                    raise AssertionError(f"{self.lesson}: the solutions notebook fails in cell {grade_id!r} "
                                         f"({cell.source[:60]!r}): {error}")
        return saved

    def checks_of(self, answer_id):
        return [check for check in self.order if self.exercise_of.get(check) == answer_id]

    def run(self, answers, checks=None):
        """Run ``checks`` (grade ids of check cells; default: those of every exercise in ``answers``) with the
        answer cells named in ``answers`` ({grade_id: source}) replaced."""
        unknown = set(answers) - set(self.saved)
        if unknown:
            raise KeyError(f"{self.lesson} has no answer cells {sorted(unknown)} with check cells")
        if checks is None:
            checks = [check for answer_id in answers for check in self.checks_of(answer_id)]
        by_exercise = {}
        for check in checks:
            by_exercise.setdefault(self.exercise_of[check], []).append(check)
        results = {}
        for answer_id, exercise_checks in by_exercise.items():
            namespace = fresh_copy(self.saved[answer_id])
            first = self.order.index(answer_id)
            last = max(self.order.index(check) for check in self.checks_of(answer_id))
            with in_lesson_folder(self.folder):
                for earlier in self.order[:first]:
                    if earlier in answers:
                        error_of(answers[earlier], earlier, namespace)
                for position in range(first, last + 1):
                    grade_id = self.order[position]
                    error = error_of(answers.get(grade_id, self.cells[position].source), grade_id or "<cell>",
                                     namespace)
                    if grade_id in exercise_checks:
                        results[grade_id] = error
        return results
