"""The trusted checker: every check cell of a graded notebook is judged here, in the grader's process.

``TrustedExecute`` (``preprocessors.py``) runs a submission's cells in the sandboxed kernel, except its check cells:
for each of them it has the kernel start the course's agent and calls ``run_check`` here, which finds the cell's
check in the lesson's ``lesson_checks.py`` / ``hidden_checks.py`` (loaded from the instructor's folder, never from
the kernel's) and runs it against the learner's answers over the agent's socket (``remote.py``). The cell's output
is written from the result alone: the pass line, or a ``CheckFailed`` error with the check's message.
"""

import importlib.util
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from grading.toolkit import remote

TOOLS = Path(__file__).resolve().parents[2] / "tools"
MODULES = ("lesson_checks", "hidden_checks")  # a lesson's check modules, in the order they load
_loaded = {}  # lesson folder -> {module name: module}
_lock = threading.Lock()


def load_check_library():
    """The check library, imported from tools/ as ``course_checks`` (the lessons' copies are the same file)."""
    if "course_checks" not in sys.modules:
        if str(TOOLS) not in sys.path:
            sys.path.append(str(TOOLS))
        import course_checks  # noqa: F401
    return sys.modules["course_checks"]


@contextmanager
def _installed(modules, folder=None):
    """The lesson's modules under their own names while its checks run: what a check pickles for the kernel names
    ``lesson_checks``, which the kernel imports from its own folder. The lesson's folder is on ``sys.path`` too (its
    checks may import a module of the lesson's)."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    sys.modules.update(modules)
    if folder:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder and folder in sys.path:
            sys.path.remove(folder)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def lesson_modules(folder):
    """{name: module} of a lesson's check modules, loaded once per process from the instructor's `folder`."""
    folder = str(Path(folder).resolve())
    with _lock:
        if folder not in _loaded:
            load_check_library()
            modules = {}
            with _installed({}, folder):
                for name in MODULES:
                    path = Path(folder) / f"{name}.py"
                    if not path.is_file():
                        continue
                    spec = importlib.util.spec_from_file_location(name, path)
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[name] = module
                    spec.loader.exec_module(module)
                    modules[name] = module
            _loaded[folder] = modules
        return _loaded[folder]


def checks_of(folder):
    """{grade id: Check} of the lesson in `folder`."""
    # By the class's name: a test process may hold several copies of the library (one per lesson folder).
    return {value.grade_id: value for module in lesson_modules(folder).values()
            for value in vars(module).values() if type(value).__name__ == "Check" and hasattr(value, "grade_id")}


class CheckRun:
    """One check cell, judged on a thread of the grader while the kernel serves the agent."""

    def __init__(self, folder, grade_id, socket_folder, seconds):
        self.folder, self.grade_id = folder, grade_id
        self.deadline = time.monotonic() + max(1.0, seconds - 1.0)  # stop before the cell's own timeout
        self.listener = remote.Listener(socket_folder)
        self.check = checks_of(folder).get(grade_id)
        self.failure = "the grader has no check for this cell" if self.check is None else None
        self.thread = threading.Thread(target=self._judge, daemon=True)

    def serve_code(self):
        return self.listener.serve_code()

    def start(self):
        if self.check is not None:
            self.thread.start()

    def _judge(self):
        connection = None
        try:
            connection = self.listener.accept(self.deadline)
            with _installed(lesson_modules(self.folder), str(Path(self.folder).resolve())):
                self.failure = remote.judge(self.check, connection, self.deadline)
        except remote.CheckerLost as lost:
            self.failure = f"the check could not finish: {lost}"
        except Exception as error:  # a bug of the grader's: the check fails, with a message, and grading goes on
            self.failure = f"the grader could not run this check ({type(error).__name__}: {error})"
        finally:
            if connection is not None:
                connection.close()  # the agent's loop ends, and with it the kernel's cell
            self.listener.close()

    def finish(self):
        """None if the check passed, else the message. Called once the kernel's cell is over: an agent that never
        connected will not, so the judging thread stops waiting for it."""
        self.listener.stop_waiting()
        if self.thread.ident is not None:
            self.thread.join(max(0.0, self.deadline - time.monotonic()) + 5)
        else:
            self.listener.close()
        if self.thread.is_alive():
            return "the check did not finish in time"
        return self.failure

    @property
    def passed_line(self):
        return self.check.passed_line
