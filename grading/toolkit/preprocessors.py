"""nbgrader plug-ins that ``grading/nbgrader_config.py`` installs, so that every ``nbgrader autograde`` and
``nbgrader generate_feedback`` of the course (the toolkit's, the tests', an instructor's own) behaves the same:

- ``SafeExecute`` replaces nbgrader's ``Execute``: the kernel runs under a memory cap, and a kernel that dies
  (``os._exit``, a crash) or ignores the timeout interrupt no longer aborts the notebook: the cell gets an error
  that says what happened, the cells after it are marked "not run" (so their checks score 0), and nbgrader goes
  on to save the grades.
- ``RedactHiddenTests`` runs in ``generate_feedback``: test cells lose their hidden part and failed checks keep
  only their error name and message, so feedback never shows hidden test code.
- ``TrustedExecute`` is the course grader's ``Execute`` (``make autograde``, ``COURSE_TRUSTED_CHECKS=1``): the
  kernel runs the learner's answer cells and the instructor's other cells, but no check cell: each check is judged
  in this process by ``checker.py``, which calls the learner's answers across the kernel's boundary, and the cell's
  output is written from its verdict alone. A plain ``nbgrader autograde`` runs the check cells in the kernel, as
  nbgrader always has (``SafeExecute``; the lesson's ``hidden_checks.py`` is put next to the notebook for it).
- The kernel runs in a bubblewrap sandbox (``sandbox.SandboxedKernelManager``), and each cell's output and the whole
  notebook's are capped (``output_limit``, ``output_total``: ``budget.py``).
"""

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import Integer

from grading.toolkit.budget import OutputBudget, cut_note_output, output_size
from grading.toolkit.sandbox import SandboxedKernelManager
from grading.toolkit.settings import Course

MEMCAP = Path(__file__).resolve().parent / "memcap.py"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Error names the toolkit writes into cells; the autograde summary and the feedback explain them.
KERNEL_DIED = "KernelDied"
KERNEL_UNRESPONSIVE = "KernelUnresponsive"
NOT_RUN = "NotRun"
DEFAULT_OUTPUT_LIMIT = 2 * 2**20  # bytes of output one cell may produce when graded (COURSE_OUTPUT_LIMIT)
FEEDBACK_MESSAGE_LIMIT = 500  # characters of a failed hidden check's message shown in feedback


class MemoryCappedKernelManager(AsyncKernelManager):
    """Starts the kernel through ``memcap.py``, which sets the memory cap and then becomes the kernel."""

    memory_limit = Integer(0, help="RLIMIT_DATA of the kernel in bytes; 0 means no cap").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        if self.memory_limit <= 0 or os.name != "posix":  # setrlimit is POSIX only
            return command
        return [sys.executable, str(MEMCAP), str(self.memory_limit), "--", *command]


def error_output(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SafeExecute(Execute):
    """nbgrader's ``Execute`` with a memory-capped kernel and a notebook that survives its kernel."""

    kernel_memory = Integer(0, help="memory cap of the grading kernel in bytes (0: none)").tag(config=True)
    output_limit = Integer(DEFAULT_OUTPUT_LIMIT, help="bytes of output per cell; the rest is cut (0: no cap)"
                           ).tag(config=True)
    output_total = Integer(8 * 2**20, help="bytes of output of the whole notebook; the rest is cut (0: no cap)"
                           ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.memory_limit = self.kernel_memory
        return km

    def preprocess(self, nb, resources=None, km=None):
        self._stopped_because = None  # set once the kernel is gone: why the remaining cells are not run
        self._budget = OutputBudget(self.output_limit, self.output_total)
        self.shutdown_kernel = "immediate"  # nothing to save in a grading kernel: don't wait for a clean exit
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped_because:
            cell.outputs = [error_output(NOT_RUN, f"not run: {self._stopped_because}")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs.append(error_output(
                KERNEL_DIED, "the kernel stopped while running this cell (os._exit, a crash, or it ran out of "
                             "memory); the cells after it were not run"))
            self._stopped_because = f"the kernel died in an earlier cell ({cell_label(cell, index)})"
        except CellTimeoutError:
            # The timeout interrupt did not bring the kernel back (the cell swallows KeyboardInterrupt, or is
            # stuck outside Python): it cannot run anything else, so stop it now rather than time out every cell.
            self.shutdown_kernel = "immediate"
            cell.outputs.append(error_output(
                KERNEL_UNRESPONSIVE, f"the cell ran longer than {self.timeout} s and did not stop when "
                                     f"interrupted; the cells after it were not run"))
            self._stopped_because = f"the kernel stopped responding in an earlier cell ({cell_label(cell, index)})"
        return cell, self.resources


    def output(self, outs, msg, display_id, cell_index):
        """Keeps at most ``output_limit`` bytes of a cell's output and ``output_total`` of the notebook's, then one
        note per cell (``budget.py``); errors always get through (they decide the grade), shortened."""
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            self._budget.shorten_error(content)
            return super().output(outs, msg, display_id, cell_index)
        note = self._budget.take(cell_index, output_size(content))
        if note is None:
            return super().output(outs, msg, display_id, cell_index)
        if note:
            outs.append(cut_note_output(note))
        return None


def cell_label(cell, index):
    """``ex0_1_gru_shapes`` for a graded or answer cell, ``cell 12`` for any other."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"


def trusted_checks():
    """True when the course's grader runs nbgrader (``COURSE_TRUSTED_CHECKS=1``): checks judged outside the kernel."""
    return os.environ.get("COURSE_TRUSTED_CHECKS", "") == "1"


def lesson_source(resources):
    """The instructor's folder of the lesson being graded (``solutions/<lesson>``)."""
    return Course.from_env().solutions / resources["nbgrader"]["assignment"]


def is_check_cell(cell):
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class InKernelExecute(SafeExecute):
    """A plain ``nbgrader autograde``: check cells run in the kernel, as nbgrader always has, so the kernel needs the
    lesson's hidden checks next to the notebook (they are never released; this is why only the course's grader,
    which judges checks outside the kernel, is proof against forged scores)."""

    def preprocess(self, nb, resources=None, km=None):
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        hidden = lesson_source(resources) / "hidden_checks.py"
        placed = folder / "hidden_checks.py"
        if hidden.is_file():
            shutil.copyfile(hidden, placed)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if hidden.is_file():
                placed.unlink(missing_ok=True)


class TrustedExecute(SafeExecute):
    """The course's grader: every check cell is judged in this process (``checker.py``); the kernel only serves the
    learner's answers to it, in a cell of the grader's own code whose output is dropped."""

    def preprocess(self, nb, resources=None, km=None):
        self._lesson = lesson_source(resources)
        self._private = tempfile.mkdtemp(prefix="gru-checks-")  # sockets, when the kernel is not sandboxed
        try:
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(self._private, ignore_errors=True)

    def _socket_folder(self):
        return getattr(self.km, "sandbox_dir", "") or self._private

    def preprocess_cell(self, cell, resources, index):
        if not is_check_cell(cell) or self._stopped_because:
            return super().preprocess_cell(cell, resources, index)
        from grading.toolkit import checker  # here: nbgrader's other commands load this file without PyTorch

        try:
            run = checker.CheckRun(self._lesson, cell_label(cell, index), self._socket_folder(), self.timeout)
        except Exception as error:  # the lesson's check modules could not load: a grader problem, said in the cell
            cell.outputs = [error_output("GraderError", f"the grader could not load this lesson's checks "
                                                        f"({type(error).__name__}: {error})")]
            return cell, resources
        if run.check is None:
            run.finish()
            cell.outputs = [error_output("GraderError", run.failure)]
            return cell, resources
        serve = new_code_cell(run.serve_code())
        run.start()
        super().preprocess_cell(serve, resources, index)
        self.nb.cells[index] = cell  # nbclient put the agent's cell in its place
        failure = run.finish()
        if self._stopped_because and failure is None:
            failure = f"the kernel stopped during the check: {self._stopped_because}"
        cell.execution_count = serve.get("execution_count")
        cell.outputs = ([new_output("stream", name="stdout", text=run.passed_line + "\n")] if failure is None
                        else [error_output("CheckFailed", failure)])
        return cell, resources


def autograde_preprocessors():
    """nbgrader's autograde steps with the course's ``Execute``: trusted checks, or in-kernel ones."""
    execute = TrustedExecute if trusted_checks() else InKernelExecute
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [execute if step is Execute else step for step in default]


class RedactHiddenTests(NbGraderPreprocessor):  # nbgrader's base: enabled by default, nbconvert's is not
    """Feedback without hidden tests: the hidden region of each test cell is cut out of its source, and a failed
    test's traceback keeps only frames from other cells (the student's own functions) plus ``Error: message``."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        hidden = hidden_lines(cell.source)
        if hidden:
            ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
            # What the learner's code printed while the hidden checks ran is not shown: only the failure.
            cell.outputs = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                if hidden:
                    output.evalue = shortened(ANSI.sub("", str(output.get("evalue", ""))), FEEDBACK_MESSAGE_LIMIT)
                output.traceback = redacted_traceback(output, cell.get("execution_count"), hidden)
        return cell, resources


def shortened(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_hidden_tests(source):
    """(visible, hidden): the lines of ``source`` outside and inside ``### BEGIN HIDDEN TESTS`` /
    ``### END HIDDEN TESTS`` (the marker lines themselves in neither)."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return visible, hidden


def hidden_lines(source):
    """The non-trivial lines of the hidden-test region, stripped."""
    return [line.strip() for line in split_hidden_tests(source)[1] if len(line.strip()) > 3]


def redacted_traceback(output, execution_count, hidden):
    own_frame = f"Cell In[{execution_count}]" if execution_count else None
    kept = []
    for entry in output.get("traceback", [])[:-1]:  # the last entry is "Error: message", added back below
        plain = ANSI.sub("", entry)
        if (own_frame and own_frame in plain) or any(line in plain for line in hidden):
            continue  # a frame of this test cell: it quotes the test's code
        kept.append(entry)
    return kept + [f"{output.ename}: {output.evalue}"]
