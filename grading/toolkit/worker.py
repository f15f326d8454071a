"""Grade one submission in a scratch course of its own, with nbgrader's autograde run in this process.

A worker process (``serve``) imports nbgrader once and grades one submission after another: that saves the
couple of seconds nbgrader takes to import on every submission. Each submission gets a fresh scratch course
root: its lesson's source (a link to ``solutions/<lesson>``), a copy of the template gradebook (SQLite, only
this submission in it) and the student's files. Nothing a worker does touches the real gradebook; the main
process records the result (see ``autograde.py``).
"""

import io
import logging
import os
import re
import shutil
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nbformat

from grading.toolkit import diagnose, integrity, quotas
from grading.toolkit.gradebook import read_submission, sqlite_url
from grading.toolkit.safetext import clean
from grading.toolkit.settings import CONFIG_DIR

GRADED, NOT_GRADABLE, ERROR = "graded", "not-gradable", "error"


@dataclass
class Job:
    student: str
    lesson: str
    folder: str  # the submission: grading/submitted/<student>/<lesson>
    solutions: str  # the course's solutions/ (nbgrader's source)
    release: str  # the student version of the lesson notebook, to spot edited read-only cells
    template_db: str
    scratch: str
    cell_timeout: int
    kernel_memory: int
    fingerprint: str = ""
    threads: int = 0  # CPU threads for the kernel's torch/OpenMP (0: their default, one per core)


def result(job, status, reason, graded=None, autograded=None, started=None, log=""):
    return {
        "student": job.student, "lesson": job.lesson, "status": status, "reason": reason, "graded": graded,
        "autograded": str(autograded) if autograded else None, "fingerprint": job.fingerprint,
        "seconds": round(time.monotonic() - started, 2) if started else 0.0, "log": log[-4000:],
    }


def grade(job):
    started = time.monotonic()
    scratch = Path(job.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    refused = integrity.submission_problem(job.folder)  # links are refused before anything reads the folder
    if refused:
        return result(job, NOT_GRADABLE, refused, started=started)
    notebook_path, note = diagnose.find_notebook(job.folder, job.lesson)
    if notebook_path is None:
        return result(job, NOT_GRADABLE, note, started=started)
    refused = integrity.submission_problem(job.folder, notebook_path)
    if refused:
        return result(job, NOT_GRADABLE, refused, started=started)
    nb, problem = diagnose.read_notebook(notebook_path)
    if nb is None:
        return result(job, NOT_GRADABLE, problem, started=started)
    notes = [note] if note else []
    # Only the learner's answer cells are taken from the submission; every other cell is the instructor's.
    nb, assembly_notes = diagnose.assemble(nb, nbformat.read(job.release, as_version=4))
    notes += assembly_notes

    db = scratch / "grading" / "gradebook.db"
    prepare_scratch_course(job, nb, scratch, db)
    env = dict(COURSE_ROOT=str(scratch), COURSE_DB_URL=sqlite_url(db), COURSE_CELL_TIMEOUT=str(job.cell_timeout),
               COURSE_KERNEL_MEMORY=str(job.kernel_memory), COURSE_TRUSTED_CHECKS="1")
    if job.threads and "OMP_NUM_THREADS" not in os.environ:
        # JOBS kernels at once, each with a thread per core, would fight over the cores: share them out.
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(job.threads)
    returncode, log = run_nbgrader(["autograde", job.lesson, "--student", job.student, "--force"], **env)
    autograded = scratch / "grading" / "autograded" / job.student / job.lesson
    graded_nb = autograded / f"{job.lesson}.ipynb"
    if returncode != 0 or not graded_nb.is_file():
        return nbgrader_failed(job, log, returncode, started)

    graded_notebook = nbformat.read(str(graded_nb), as_version=4)
    problems, failed = diagnose.grading_problems(graded_notebook, job.cell_timeout, job.kernel_memory)
    graded = read_submission(sqlite_url(db), job.lesson, job.student)
    # nbgrader comments "No response." on answer cells left as released
    blank = [cell for nb in graded["notebooks"].values() for cell, comment in nb["comments"].items()
             if comment == "No response."]
    if blank:
        notes.append(f"not answered: {', '.join(blank)}")
    return result(job, GRADED, diagnose.reason(notes + problems, failed), graded, autograded, started, log)


# --- when nbgrader itself fails ---------------------------------------------------------------------------------

CRASH_PREFIX = "nbgrader crashed on this submission: "
EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): ?(.*)$")
GENERIC_ERRORS = ("Please see the", "There was an error processing")
_blank_notebook_grades = {}  # (lesson, template) -> does nbgrader grade the lesson's blank notebook here?


def nbgrader_failed(job, log, returncode, started):
    """The result when nbgrader could not grade a submission. Malformed nbgrader metadata in a notebook crashes
    nbgrader; that is the submission's fault, like any broken file: not gradable, with the reason, and the rest
    of the class is graded. Only when nbgrader cannot grade the lesson's blank notebook either is grading itself
    broken: status error (the command exits 1; the next run retries it)."""
    why = crash_reason(log, returncode)
    if grades_the_blank_notebook(job):
        return result(job, NOT_GRADABLE, CRASH_PREFIX + why, started=started, log=log)
    return result(job, ERROR, f"nbgrader could not grade it, nor the lesson's blank notebook: {why}",
                  started=started, log=log)


def crash_reason(log, returncode):
    """The last exception (``KeyError: 'grade_id'``) or error line of nbgrader's log, cleaned and shortened."""
    lines = log.splitlines()
    exceptions = [m for m in map(EXCEPTION_LINE.match, lines) if m]
    if exceptions:
        name, message = exceptions[-1].groups()
        why = f"{name.rsplit('.', 1)[-1]}: {message}".rstrip(": ")
    else:
        errors = [line.split("ERROR]", 1)[-1] for line in lines
                  if "ERROR" in line and not any(g in line for g in GENERIC_ERRORS)]
        why = errors[-1] if errors else f"exit code {returncode}"
    return clean(why).strip()[:300]


def grades_the_blank_notebook(job):
    """True when nbgrader, set up as for ``job``, grades the lesson's released notebook (once per worker)."""
    key = (job.lesson, job.template_db)
    if key not in _blank_notebook_grades:
        _blank_notebook_grades[key] = _grade_blank(job)
    return _blank_notebook_grades[key]


def _grade_blank(job):
    release = Path(job.release)
    if not release.is_file():
        return False
    control = replace(job, student="gru-blank-control", folder=str(release.parent), scratch=job.scratch + "-blank")
    scratch = Path(control.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    db = scratch / "grading" / "gradebook.db"
    try:
        prepare_scratch_course(control, nbformat.read(str(release), as_version=4), scratch, db)
        code, _ = run_nbgrader(["autograde", job.lesson, "--student", control.student, "--force"],
                               COURSE_ROOT=str(scratch), COURSE_DB_URL=sqlite_url(db),
                               COURSE_CELL_TIMEOUT=str(job.cell_timeout), COURSE_KERNEL_MEMORY=str(job.kernel_memory),
                               COURSE_TRUSTED_CHECKS="1")
        return code == 0 and (scratch / "grading" / "autograded" / control.student / job.lesson).is_dir()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def prepare_scratch_course(job, nb, scratch, db):
    (scratch / "solutions").mkdir(parents=True)
    # nbgrader copies the lesson's data files from the source folder; a link is enough, nothing is written there.
    # The grading kernel never sees the scratch course (sandbox.py): it gets read-only copies of the data files.
    (scratch / "solutions" / job.lesson).symlink_to(Path(job.solutions) / job.lesson, target_is_directory=True)
    db.parent.mkdir(parents=True)
    shutil.copyfile(job.template_db, db)
    # The notebook alone: a student's other files never reach the kernel (nbgrader adds the lesson's own files).
    target = scratch / "grading" / "submitted" / job.student / job.lesson
    target.mkdir(parents=True)
    nbformat.write(nb, str(target / f"{job.lesson}.ipynb"))
    for name in ("timestamp.txt", "submission_secret.txt"):  # nbgrader's exchange: lateness, releasing feedback
        kept = Path(job.folder) / name
        if kept.is_file() and not kept.is_symlink():
            shutil.copyfile(kept, target / name)


def run_nbgrader(args, **env):
    """``nbgrader ARGS`` in this process, from grading/ (where the config is), with ``env`` set meanwhile:
    (exit code, log). The same way nbgrader's own test-suite runs it."""
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    saved = os.environ.copy()
    os.environ.update(env)
    buffer = io.StringIO()
    app = NbGraderApp.instance()
    try:
        app.initialize(args)
        app.init_logging(logging.StreamHandler, [buffer], color=False, subapps=True)
        app.start()
        code = 0
    except NoStart:  # how a jupyter application with subcommands says it finished
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except Exception:
        buffer.write(traceback.format_exc())
        code = 1
    finally:
        app.reset()
        os.environ.clear()
        os.environ.update(saved)
    return code, buffer.getvalue()


def warm_up():
    """Load nbgrader, the course's preprocessors and the check library (PyTorch) now, while the main process
    prepares the gradebook, rather than in the first submission's time."""
    from nbgrader.apps import NbGraderApp  # noqa: F401

    from grading.toolkit import checker

    checker.load_check_library()


def serve(connection, log_path, ipc_root=None):
    """Worker process: receive ``Job``s as dicts, send back results, until ``None`` or the pipe closes."""
    if ipc_root:  # first, while this process has one thread: a mount namespace covers only the calling thread
        quotas.enter_private_ipc(ipc_root)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's job: it stops the workers
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # nbgrader's and the kernels' chatter goes to the log, not the instructor's terminal
    os.dup2(log, 2)
    os.chdir(CONFIG_DIR)
    warm_up()
    grade_until_told_to_stop(connection, ipc_root)
    # Every result is sent and every kernel shut down: skip the interpreter's slow teardown (PyTorch's modules).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def grade_until_told_to_stop(connection, ipc_root):
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job = Job(**message)
        try:
            answer = grade(job)
        except Exception:
            answer = result(job, ERROR, "the toolkit failed: " + traceback.format_exc().strip().splitlines()[-1],
                            log=traceback.format_exc())
        quotas.sweep_ipc_root(ipc_root)  # what a kernel that died left behind
        quotas.remove_cgroups(os.getpid())
        try:
            connection.send(answer)
        except (BrokenPipeError, OSError):
            return


def as_message(job):
    return asdict(job)
